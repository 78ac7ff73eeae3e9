"""Bringing photos and masks to the evaluation's working size.

Images are center-cropped to a square and resized to ``size``×``size`` — area averaging when
shrinking, bicubic when enlarging — so every strategy sees exactly the same pixels. Masks are
square (``tttkit masks`` makes them at the working size; any square size is resized) or the size
of their photo, in which case they are cropped like it first.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch.nn.functional as F
from torch import Tensor

from tttkit.engine.loop import MAX_HOLE_FRACTION
from tttkit.evaluation.layout import sha256_file, with_suffix
from tttkit.io import InputError, read_image, read_mask

#: How images are brought to the working size (recorded in ``run.json``).
PREPROCESS = "center crop to a square, resize to size×size (area if shrinking, bicubic if not)"


def prepare_image(image: Tensor, size: int) -> Tensor:
    """Center-crop ``(3, H, W)`` to a square and resize it to ``size``×``size``."""
    height, width = image.shape[-2:]
    side = min(height, width)
    top, left = (height - side) // 2, (width - side) // 2
    crop = image[:, top : top + side, left : left + side]
    if side == size:
        return crop.contiguous()
    mode = "area" if side > size else "bicubic"
    resized = F.interpolate(crop[None], size=(size, size), mode=mode)[0]
    return resized.clamp(0, 1)


def prepare_mask(mask: Tensor, image_size: tuple[int, int], size: int, path: Path) -> Tensor:
    """Bring a ``(1, h, w)`` mask to ``size``×``size`` (see the module docstring).

    A pixel is a hole when at least half of the pixels it is averaged from are holes, so the
    hidden fraction survives resizing.
    """
    height, width = mask.shape[-2:]
    if height != width:
        if (height, width) != tuple(image_size):
            raise InputError(
                f"mask {path} is {width}×{height}: masks must be square (any size) or the size "
                f"of their image ({image_size[1]}×{image_size[0]})"
            )
        side = min(height, width)
        top, left = (height - side) // 2, (width - side) // 2
        mask = mask[:, top : top + side, left : left + side]
    if mask.shape[-1] != size:
        mode = "area" if mask.shape[-1] > size else "nearest"
        mask = F.interpolate(mask[None].float(), size=(size, size), mode=mode)[0]
    return (mask >= 0.5).float()


def check_mask(mask: Tensor, path: Path) -> None:
    """Refuse masks the engine cannot use, before any work is done."""
    fraction = float(mask.mean())
    if fraction == 0.0:
        raise InputError(f"mask {path} has no holes: nothing would be evaluated")
    if fraction > MAX_HOLE_FRACTION:
        raise InputError(
            f"mask {path} covers {fraction:.0%} of the image (at most {MAX_HOLE_FRACTION:.0%})"
        )


def check_square_mask(masks: Path, key: str, size: int) -> None:
    """Check the mask of ``key`` without reading its photo (square masks only; others are
    checked when their pair runs, as cropping them needs the photo's size)."""
    path = masks / with_suffix(key, ".png")
    mask = read_mask(path)
    if mask.shape[-1] == mask.shape[-2]:
        check_mask(prepare_mask(mask, tuple(mask.shape[-2:]), size, path), path)


@dataclass
class Inputs:
    """One image as evaluated.

    Attributes:
        key: the image's key.
        image: ``(3, size, size)`` ground truth.
        mask: ``(1, size, size)``, 1 at the holes.
        image_sha256: hash of the photo file (a resumed run checks it has not changed).
        mask_sha256: hash of the mask file.
    """

    key: str
    image: Tensor
    mask: Tensor
    image_sha256: str
    mask_sha256: str


def load_inputs(images: Path, masks: Path, key: str, size: int) -> Inputs:
    """Read, crop and resize one photo and its mask."""
    image_path, mask_path = images / key, masks / with_suffix(key, ".png")
    original = read_image(image_path)
    mask = prepare_mask(read_mask(mask_path), tuple(original.shape[-2:]), size, mask_path)
    check_mask(mask, mask_path)
    return Inputs(
        key, prepare_image(original, size), mask, sha256_file(image_path), sha256_file(mask_path)
    )
