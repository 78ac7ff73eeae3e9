"""Image-quality metrics of a completed image against its ground truth (thesis §2.8).

All on ``(B, 3, H, W)`` tensors in ``[0, 1]``, averaged over the batch. PSNR and SSIM come from
kornia; SSIM uses an 11×11 Gaussian window (σ 1.5), the usual setting.

L1, PSNR and SSIM reward the blurry mean of what a hole might hold. The perceptual measures
judge structure and sharpness: LPIPS (learned; :mod:`tttkit.evaluation.lpips_metric`) and two
weight-free ones from ``piq`` that nothing here trains on (:func:`weight_free_metrics`):
HaarPSI (Reisenhofer et al. 2018; 1 = identical) and GMSD (Xue et al. 2014, the deviation of
gradient-magnitude similarity; 0 = identical).
"""

from __future__ import annotations

import kornia.metrics
import torch
from torch import Tensor

#: Metrics where a lower value is better (the rest are higher-is-better).
LOWER_IS_BETTER = frozenset({"l1", "l1_hole", "lpips", "lpips_alt", "gmsd"})
#: The smallest side HaarPSI's three Haar scales and GMSD's downsampling take.
MIN_PERCEPTUAL_SIDE = 32


@torch.no_grad()
def image_metrics(
    completed: Tensor, target: Tensor, hole: Tensor | None = None
) -> dict[str, float]:
    """L1, PSNR (dB) and SSIM of ``completed`` against ``target``; L1 inside ``hole`` if given.

    Args:
        completed: the inpainted image, ``(B, 3, H, W)`` or ``(3, H, W)``.
        target: the ground truth, same shape.
        hole: ``(B, 1, H, W)`` or ``(1, H, W)`` mask of the filled pixels (1 = hole).
    """
    if completed.dim() == 3:
        completed, target = completed[None], target[None]
        hole = hole[None] if hole is not None else None
    completed, target = completed.float().clamp(0, 1), target.float()
    out = {
        "l1": float((completed - target).abs().mean()),
        "psnr": float(kornia.metrics.psnr(completed, target, max_val=1.0)),
        "ssim": float(kornia.metrics.ssim(completed, target, window_size=11).mean()),
    }
    if hole is not None:
        area = hole.float().sum() * completed.shape[1]
        diff = ((completed - target).abs() * hole).sum()
        out["l1_hole"] = float(diff / area) if area > 0 else 0.0
    return out


@torch.no_grad()
def weight_free_metrics(completed: Tensor, target: Tensor) -> list[dict[str, float]]:
    """HaarPSI (↑) and GMSD (↓) of each image of a batch; ``[]`` below 32 px a side.

    Weight-free perceptual measures (``piq``): nothing in tttkit trains on them, so they judge
    a network trained with a VGG perceptual loss without its own trunk's bias.
    """
    import piq

    if completed.dim() == 3:
        completed, target = completed[None], target[None]
    if min(completed.shape[-2:]) < MIN_PERCEPTUAL_SIDE:
        return []
    first, second = completed.float().clamp(0, 1), target.float().clamp(0, 1)
    haarpsi = piq.haarpsi(first, second, data_range=1.0, reduction="none")
    gmsd = piq.gmsd(first, second, data_range=1.0, reduction="none")
    return [
        {"haarpsi": float(h), "gmsd": float(g)}
        for h, g in zip(haarpsi.tolist(), gmsd.tolist(), strict=True)
    ]
