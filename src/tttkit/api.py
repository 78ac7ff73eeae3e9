"""The library entry point: :func:`adapt` resolves names to objects and runs the engine."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from tttkit.backbone import Backbone
from tttkit.checkpoint import load_backbone, load_weights, read_metadata
from tttkit.config import StrategySpec
from tttkit.engine import Result, finetune, resolve_device
from tttkit.io import InputError, read_image, read_mask
from tttkit.plugins import PluginHost, get_host
from tttkit.strategy import get_strategy, override

#: The backbone used when neither the caller nor the strategy names one.
DEFAULT_BACKBONE = "attention-net-compact"
#: The strategy used when the caller names none: the thesis's optimal settings sized for a CPU
#: (``tttkit strategies show default``); ``optimal`` is the thesis's own recipe.
DEFAULT_STRATEGY = "default"

OVERRIDE_KEYS = (
    "steps", "lr", "batch_size", "finetune_mask", "filler", "augment", "freeze", "select",
    "early_stop", "sets",
)  # fmt: skip


def resolve_strategy(
    strategy: StrategySpec | str, overrides: dict[str, Any], host: PluginHost
) -> StrategySpec:
    """A strategy by name or spec, with overrides (see :func:`tttkit.strategy.override`)."""
    unknown = sorted(set(overrides) - set(OVERRIDE_KEYS))
    if unknown:
        raise TypeError(f"unknown override(s) {unknown}; valid: {', '.join(OVERRIDE_KEYS)}")
    spec = get_strategy(strategy, host) if isinstance(strategy, str) else strategy
    return override(spec, host=host, **overrides)


def resolve_backbone(
    backbone: Backbone | str | None,
    weights: str | Path | None,
    spec: StrategySpec,
    host: PluginHost,
) -> tuple[str, Backbone]:
    """The network to finetune, with its weights, and its registered name.

    Order: a :class:`Backbone` object as given (``weights`` loaded into it if any); a checkpoint
    written by tttkit rebuilds its own backbone; otherwise the named backbone (or the strategy's,
    or :data:`DEFAULT_BACKBONE`) with ``weights``, or the weights its plugin ships. Without
    weights only a strategy that reinitializes (zero-shot) may run.
    """
    if isinstance(backbone, Backbone):
        if weights is not None:
            load_weights(backbone, weights)
        return type(backbone).__name__, backbone
    is_safetensors = weights is not None and Path(weights).suffix == ".safetensors"
    if is_safetensors and "tttkit.backbone" in read_metadata(weights):  # type: ignore[arg-type]
        return load_backbone(weights, name=backbone)  # type: ignore[arg-type]
    name = backbone or spec.backbone or DEFAULT_BACKBONE
    entry = host.registry("backbones").entry(name)
    net: Backbone = entry.obj()
    bundled = entry.extra.get("weights")
    if weights is None and bundled is not None and Path(bundled).is_file():
        weights = bundled
    if weights is not None:
        load_weights(net, weights, name)
    elif not spec.reinitialize:
        raise InputError(
            f"no weights for backbone {name!r}: pass --weights FILE (a checkpoint from "
            "`tttkit pretrain` or your own), or run a zero-shot strategy"
        )
    return name, net


def _perceptual_network(
    spec: StrategySpec, weights: str | Path | None, device: torch.device
) -> nn.Module | None:
    if spec.losses.perceptual <= 0:
        return None
    from tttkit.perceptual import load_feature_network

    return load_feature_network(weights, device=device)


def adapt(
    image: Tensor | str | Path,
    mask: Tensor | str | Path,
    *,
    backbone: Backbone | str | None = None,
    weights: str | Path | None = None,
    strategy: StrategySpec | str = DEFAULT_STRATEGY,
    ground_truth: Tensor | str | Path | None = None,
    seed: int = 0,
    device: str | torch.device = "cpu",
    perceptual_weights: str | Path | None = None,
    show_progress: bool = False,
    label: str | None = None,
    host: PluginHost | None = None,
    **overrides: Any,
) -> Result:
    """Test-time train a backbone on one image and fill its holes.

    Args:
        image: ``(3, H, W)`` RGB in ``[0, 1]``, or an image file.
        mask: ``(1, H, W)``/``(H, W)`` with 1 at the holes, or a mask file (white = hole).
        backbone: a :class:`Backbone`, a registered name, or ``None`` for the default.
        weights: checkpoint to load (``.safetensors`` from tttkit, or a state dict).
        strategy: a registered strategy name or a :class:`StrategySpec`.
        ground_truth: the complete image (tensor or file), to record metrics.
        seed: seeds every random choice; the same seed gives the same result.
        device: ``"cpu"``, ``"cuda"``, or ``"auto"``.
        perceptual_weights: VGG features file for the perceptual loss (see
            :func:`tttkit.perceptual.load_feature_network` for the search order).
        show_progress: draw the progress bar.
        label: name of the run for observers (default: the image file name).
        host: plugin host (default: the process-wide one).
        **overrides: ``steps``, ``lr``, ``batch_size``, ``finetune_mask``, ``filler``,
            ``augment``, ``freeze``, ``select``, ``early_stop``, ``sets`` — as the CLI flags of
            the same names.

    Returns:
        a :class:`tttkit.engine.Result` with the raw and finetuned completions.
    """
    host = host or get_host()
    if label is None:
        label = Path(image).name if isinstance(image, (str, Path)) else "image"
    if isinstance(image, (str, Path)):
        image = read_image(image)
    if isinstance(mask, (str, Path)):
        mask = read_mask(mask, size=tuple(image.shape[-2:]))
    if isinstance(ground_truth, (str, Path)):
        ground_truth = read_image(ground_truth)
    spec = resolve_strategy(strategy, overrides, host)
    _, net = resolve_backbone(backbone, weights, spec, host)
    resolved = resolve_device(device)
    height, width = image.shape[-2:]
    scale = net.conventions.working_size / min(height, width)
    if scale < 1.0:  # larger than the network's working size: run small, paste the fill back
        size = (max(1, round(height * scale)), max(1, round(width * scale)))
        mask = mask.reshape(1, height, width).float()
        small_mask = (F.interpolate(mask[None], size=size, mode="area")[0] > 0).float()
        small = [
            None if t is None else F.interpolate(t[None], size=size, mode="area")[0]
            for t in (image, ground_truth)
        ]
    else:
        small, small_mask = [image, ground_truth], mask
    result = finetune(
        net,
        small[0],  # type: ignore[arg-type]
        small_mask,
        spec,
        ground_truth=small[1],
        seed=seed,
        device=resolved,
        perceptual=_perceptual_network(spec, perceptual_weights, resolved),
        show_progress=show_progress,
        label=label,
        host=host,
    )
    if scale < 1.0 and result.history:
        result.raw = paste_upscaled(result.raw, image, mask)
        result.finetuned = paste_upscaled(result.finetuned, image, mask)
        result.notices.append(
            f"ran at {size[1]}×{size[0]}, the backbone's working size, and pasted the upscaled "
            "fill into the holes (metrics are at that size)"
        )
    return result


def paste_upscaled(small: Tensor, image: Tensor, mask: Tensor) -> Tensor:
    """Upscale a completion (bicubic) and paste it into ``image`` at the ``mask`` holes only."""
    up = F.interpolate(small[None], size=image.shape[-2:], mode="bicubic", align_corners=False)
    hole = mask.reshape(1, *image.shape[-2:]).to(image.dtype)
    return image * (1 - hole) + up[0].clamp(0, 1) * hole
