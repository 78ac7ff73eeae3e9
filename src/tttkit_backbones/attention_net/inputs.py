"""The generator's 11-channel input, and the Sobel/Canny maps the structure loss reuses.

Channel layout (Yang et al.'s ``build_inpaint_net``, in their order):

=====  =====================================================================================
0–2    RGB in ``[-1, 1]`` with holes zeroed (or holding a fill computed from the known pixels)
3      edge map: Canny edges 0, elsewhere 1, holes 1 (their ``(1 - edge) * (1 - mask) + mask``)
4      mask, 1 = hole
5–10   Sobel gradients, d/dy and d/dx per RGB channel (R_dy, R_dx, G_dy, …), holes zeroed
=====  =====================================================================================

Every channel is computed from the image *after* its holes are zeroed. Yang et al. computed edges
and gradients on the complete training image and masked them afterwards; that lets hole content
leak into a band around each hole (one pixel for Sobel, several for the σ = 1.5 Canny). At test
time the hole content is filler, and during test-time training the hidden finetuning region is
the very ground truth being learned, so here the input depends on the known pixels only: a
backbone call is invariant to whatever the caller put inside the holes.
"""

from __future__ import annotations

import torch
from torch import Tensor

# The operators live in the core so losses share them; re-exported for this backbone's users.
from tttkit.imageops import (
    CANNY_HIGH,
    CANNY_LOW,
    DEFAULT_EDGE_SIGMA,
    GRAY_WEIGHTS,
    canny_edges,
    gaussian_kernel_size,
    sobel_gradients,
    to_gray,
)

INPUT_CHANNELS = 11


def build_input(
    image: Tensor,
    mask: Tensor,
    edge_sigma: float = DEFAULT_EDGE_SIGMA,
    fill: Tensor | None = None,
) -> Tensor:
    """Assemble the generator's 11-channel input.

    Args:
        image: ``(B, 3, H, W)`` RGB in ``[-1, 1]``; the content of hole pixels is ignored.
        mask: ``(B, 1, H, W)``, 1 = hole, 0 = known.
        edge_sigma: Gaussian σ of the Canny detector.
        fill: ``(B, 3, H, W)`` values for the hole pixels of the RGB channels (zeros if
            ``None``); it must depend on the known pixels only, to keep the invariance above.

    Returns:
        ``(B, 11, H, W)``: masked image, edge map, mask, masked Sobel gradients (module docstring).
    """
    if image.shape[1] != 3 or mask.shape[1] != 1 or image.shape[-2:] != mask.shape[-2:]:
        raise ValueError(
            f"expected image (B, 3, H, W) and mask (B, 1, H, W), got {tuple(image.shape)} "
            f"and {tuple(mask.shape)}"
        )
    mask = mask.to(image.dtype)
    known = 1.0 - mask
    masked = image * known
    edges = canny_edges((masked + 1.0) / 2.0, edge_sigma)
    edge_map = (1.0 - edges) * known + mask
    gradients = sobel_gradients(masked) * known
    rgb = masked if fill is None else masked + fill * mask
    return torch.cat((rgb, edge_map, mask, gradients), dim=1)


__all__ = [
    "CANNY_HIGH",
    "CANNY_LOW",
    "DEFAULT_EDGE_SIGMA",
    "GRAY_WEIGHTS",
    "INPUT_CHANNELS",
    "build_input",
    "canny_edges",
    "gaussian_kernel_size",
    "sobel_gradients",
    "to_gray",
]
