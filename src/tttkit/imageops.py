"""Image operators shared by backbones, losses and strategies: Sobel gradients, grayscale,
Canny edges, and binary-mask morphology and translation.

They follow Yang et al.'s structure-inpainting code (TensorFlow ``tf.image.sobel_edges`` and
skimage's Canny), built on kornia so they run batched on any device.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from kornia.filters import canny, filter2d, get_spatial_gradient_kernel2d
from torch import Tensor

if TYPE_CHECKING:
    import numpy as np

# skimage.color.rgb2gray weights, which Yang et al.'s data loader uses before skimage's Canny.
GRAY_WEIGHTS = (0.2125, 0.7154, 0.0721)
# skimage.feature.canny defaults for float images; kornia compares the same unnormalised Sobel
# magnitude against them, so the two detectors agree on an image in [0, 1].
CANNY_LOW = 0.1
CANNY_HIGH = 0.2
DEFAULT_EDGE_SIGMA = 1.5


def sobel_gradients(image: Tensor) -> Tensor:
    """Unnormalised 3×3 Sobel gradients of every channel, like ``tf.image.sobel_edges``.

    Args:
        image: ``(B, C, H, W)`` in any range (the operator is linear: gradients of a ``[-1, 1]``
            image are twice those of the same image in ``[0, 1]``).

    Returns:
        ``(B, 2C, H, W)`` ordered ``c0_dy, c0_dx, c1_dy, c1_dx, …``; kernels ``[1, 2, 1]``
        across and ``[-1, 0, 1]`` along the axis (a unit step gives 4), reflect-padded borders.
    """
    kernels = get_spatial_gradient_kernel2d("sobel", 1).to(image)  # (2, 3, 3): d/dx, d/dy
    dy = filter2d(image, kernels[1:2], border_type="reflect")
    dx = filter2d(image, kernels[0:1], border_type="reflect")
    batch, channels, height, width = image.shape
    return torch.stack((dy, dx), dim=2).reshape(batch, 2 * channels, height, width)


def to_gray(image: Tensor) -> Tensor:
    """``(B, 3, H, W)`` RGB → ``(B, 1, H, W)`` luminance with skimage's weights (same range)."""
    weights = image.new_tensor(GRAY_WEIGHTS).view(1, 3, 1, 1)
    return (image * weights).sum(dim=1, keepdim=True)


def gaussian_kernel_size(sigma: float) -> int:
    """Odd kernel size covering ±4σ, the truncation scipy (and so skimage) uses."""
    return 2 * max(int(4 * sigma + 0.5), 1) + 1


@torch.no_grad()
def canny_edges(image: Tensor, sigma: float = DEFAULT_EDGE_SIGMA) -> Tensor:
    """Canny edges of an RGB image in ``[0, 1]``: ``(B, 1, H, W)`` with 1 on edges, else 0.

    Grayscale with skimage's weights, Gaussian σ (kernel truncated at 4σ like scipy), thresholds
    0.1/0.2 on the unnormalised Sobel magnitude, hysteresis — skimage's ``feature.canny`` as Yang et
    al. call it (their ``SIGMA: 1.5``). Not differentiable (thresholds), hence ``no_grad``.
    """
    size = gaussian_kernel_size(sigma)
    # On the CPU, kornia's hysteresis (a 3×3 round per pixel of chain length, each with a
    # device-wide "changed?" test) is most of the cost; one connected-components pass gives the
    # same edges (tests/core/test_imageops.py checks them against kornia's).
    track_on_cpu = image.device.type == "cpu"
    _, edges = canny(
        to_gray(image),
        low_threshold=CANNY_LOW,
        high_threshold=CANNY_HIGH,
        kernel_size=(size, size),
        sigma=(sigma, sigma),
        hysteresis=not track_on_cpu,
    )
    if track_on_cpu:
        edges = track_edges(edges)
    return edges.to(image.dtype)


def track_edges(edges: Tensor) -> Tensor:
    """Canny's hysteresis on ``(B, 1, H, W)`` maps of weak (0.5) and strong (1) edge pixels.

    Keeps every weak pixel joined to a strong one through a chain of 8-neighbours: the pixels of
    each 8-connected component of weak ∪ strong that holds a strong pixel. This is the fixed
    point kornia's ``canny(hysteresis=True)`` reaches by repeated rounds, found in one pass.
    Returns 0/1 in ``edges``' dtype.
    """
    import cv2
    import numpy as np

    maps = edges.detach().float().cpu().numpy()
    tracked = np.zeros(maps.shape, dtype=np.float32)
    for index, edge_map in enumerate(maps[:, 0]):
        count, labels = cv2.connectedComponents((edge_map > 0).astype(np.uint8), connectivity=8)
        keep = np.zeros(count, dtype=bool)
        keep[labels[edge_map == 1]] = True
        keep[0] = False  # the background component
        tracked[index, 0] = keep[labels]
    return torch.from_numpy(tracked).to(device=edges.device, dtype=edges.dtype)


def dilate(mask: Tensor, radius: int) -> Tensor:
    """Binary dilation of ``(B, 1, H, W)`` masks by a square of side ``2·radius + 1``.

    A max-pool is exactly a square dilation of a binary mask, and far faster than a general
    morphology kernel.
    """
    if radius <= 0:
        return mask
    return torch.nn.functional.max_pool2d(
        mask, kernel_size=2 * radius + 1, stride=1, padding=radius
    )


def shift_without_wrap(x: Tensor, dy: int, dx: int) -> Tensor:
    """Translate ``x`` by ``(dy, dx)`` pixels, filling vacated pixels with zeros."""
    height, width = x.shape[-2:]
    out = torch.zeros_like(x)
    src_y = slice(max(0, -dy), min(height, height - dy))
    dst_y = slice(max(0, dy), min(height, height + dy))
    src_x = slice(max(0, -dx), min(width, width - dx))
    dst_x = slice(max(0, dx), min(width, width + dx))
    out[..., dst_y, dst_x] = x[..., src_y, src_x]
    return out


def smooth_fill(image: Tensor, mask: Tensor, relaxations: int = 16) -> Tensor:
    """Fill holes with a smooth (nearly harmonic) interpolation of the known pixels.

    A multigrid membrane fill: known pixels are averaged down an image pyramid with their
    validity as weight; then, from the coarsest level up, each level's holes start from the
    bilinear upsampling of the coarser filled level and are relaxed towards the average of their
    four neighbours (``relaxations`` Jacobi sweeps per level). The result approaches the harmonic
    fill (Laplace's equation with the known pixels as boundary, OpenCV's Navier-Stokes fill
    without its isophote term) at the cost of a few small convolutions per level. Known pixels
    are returned unchanged.

    Args:
        image: ``(B, C, H, W)``.
        mask: ``(B, 1, H, W)``, 1 = hole.
        relaxations: Jacobi sweeps per pyramid level.
    """
    functional = torch.nn.functional
    # bf16/fp16 elementwise work is slower than fp32 on CPUs and loses the small relaxation steps
    work = image.float() if image.dtype in (torch.bfloat16, torch.float16) else image
    holes = mask.to(work.dtype)
    known = 1.0 - holes
    values, weights, masks = [work * known], [known], [holes > 0]
    while min(values[-1].shape[-2:]) > 1:
        values.append(functional.avg_pool2d(values[-1], 2, ceil_mode=True))
        weights.append(functional.avg_pool2d(weights[-1], 2, ceil_mode=True))
        masks.append(weights[-1] == 0)
    # Cells with no known pixel at the coarsest level (an all-hole image) become zero.
    filled = values[-1] / weights[-1].clamp_min(1e-12)
    for value, weight, inside in zip(
        reversed(values[:-1]), reversed(weights[:-1]), reversed(masks[:-1]), strict=True
    ):
        coarse = functional.interpolate(
            filled, size=value.shape[-2:], mode="bilinear", align_corners=False
        )
        filled = torch.where(inside, coarse, value / weight.clamp_min(1e-12))
        for _ in range(relaxations):
            # the four-neighbour mean from shifted views: 4–7× faster than a depthwise conv on CPU
            padded = functional.pad(filled, (1, 1, 1, 1), mode="replicate")
            average = (
                padded[..., :-2, 1:-1]
                + padded[..., 2:, 1:-1]
                + padded[..., 1:-1, :-2]
                + padded[..., 1:-1, 2:]
            ) * 0.25
            filled = torch.where(inside, average, filled)
    return (work * known + filled * holes).to(image.dtype)


def as_unit(image: Tensor) -> Tensor:
    """Float pixels in ``[0, 1]``: uint8 is divided by 255, float returned as is."""
    return image.float().div_(255.0) if image.dtype == torch.uint8 else image


def to_dtype(image: Tensor, dtype: torch.dtype) -> Tensor:
    """``[0, 1]`` float pixels in ``dtype``: uint8 rounds to the nearest of 0…255."""
    if dtype == torch.uint8:
        return image.float().mul(255.0).round_().clamp_(0.0, 255.0).to(torch.uint8)
    return image.to(dtype)


def center_crop_resize(image: Tensor, height: int, width: int) -> Tensor:
    """Center-crop ``(3, h, w)`` to the aspect of ``height × width``, then resize (area)."""
    h, w = image.shape[-2:]
    scale = min(h / height, w / width)
    crop_h, crop_w = round(height * scale), round(width * scale)
    top, left = (h - crop_h) // 2, (w - crop_w) // 2
    crop = image[:, top : top + crop_h, left : left + crop_w]
    return F.interpolate(crop[None], size=(height, width), mode="area")[0]


def area_shrunk(pixels: Tensor, factor: float) -> np.ndarray:
    """``(3, H, W)`` uint8 pixels as an ``(h, w, 3)`` array shrunk by ``factor`` (≤ 1; at least
    one pixel a side) with area averaging: OpenCV on the uint8 values, so a large photo never
    gets a float copy."""
    import cv2

    picture = pixels.permute(1, 2, 0).contiguous().numpy()
    if factor >= 1.0:
        return picture
    height, width = pixels.shape[-2:]
    size = (max(1, round(width * factor)), max(1, round(height * factor)))
    return cv2.resize(picture, size, interpolation=cv2.INTER_AREA)
