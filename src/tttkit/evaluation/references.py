"""Reference rows of every evaluation: where test-time training stands.

* ``none`` — the pretrained backbone without finetuning (the step-0 output of every TTT run).
* ``opencv-telea`` — Telea's fast-marching inpainting (``cv2.INPAINT_TELEA``).
* ``opencv-ns`` — Bertalmío et al.'s Navier–Stokes inpainting (``cv2.INPAINT_NS``).

The OpenCV methods get an inpainting radius of :data:`OPENCV_RADIUS` pixels — the value of
OpenCV's own examples; each hole pixel is filled from known pixels within that radius. They
work on 8-bit images, so their outputs are quantised to 1/255 (as is any saved PNG).
"""

from __future__ import annotations

import cv2
import numpy as np
import torch
from torch import Tensor

#: Name of the raw-backbone row.
NONE = "none"
#: OpenCV rows and their ``cv2.inpaint`` flags.
OPENCV_METHODS: dict[str, int] = {
    "opencv-telea": cv2.INPAINT_TELEA,
    "opencv-ns": cv2.INPAINT_NS,
}
#: Every reference row, in table order.
REFERENCES: tuple[str, ...] = (NONE, *OPENCV_METHODS)
#: Inpainting radius of the OpenCV methods, in pixels.
OPENCV_RADIUS = 3


def opencv_inpaint(image: Tensor, mask: Tensor, method: str, radius: int = OPENCV_RADIUS) -> Tensor:
    """Fill the holes of ``image`` (``(3, H, W)`` in ``[0, 1]``) with a classical method.

    Args:
        image: RGB in ``[0, 1]``; hole pixels are ignored.
        mask: ``(1, H, W)``, 1 at the holes.
        method: ``"opencv-telea"`` or ``"opencv-ns"``.
        radius: neighbourhood radius in pixels.

    Returns:
        The completed image ``(3, H, W)``: known pixels unchanged, holes filled.
    """
    hole = mask.reshape(image.shape[-2:]).cpu().numpy() > 0.5
    rgb = image.detach().cpu().clamp(0, 1).numpy().transpose(1, 2, 0) * 255 + 0.5
    rgb = rgb.astype(np.uint8)
    rgb[hole] = 0  # the methods must not see the ground truth
    filled = cv2.inpaint(rgb, hole.astype(np.uint8) * 255, radius, OPENCV_METHODS[method])
    result = torch.from_numpy(filled.transpose(2, 0, 1).astype(np.float32) / 255.0)
    keep = torch.from_numpy(~hole)[None].expand_as(result)
    return torch.where(keep, image.detach().cpu().float(), result)
