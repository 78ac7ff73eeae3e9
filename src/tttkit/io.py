"""Reading and writing images and masks: the only module that touches image files.

Images are returned as ``(3, H, W)`` float32 RGB in ``[0, 1]``; masks as ``(1, H, W)`` float32
with ``1`` at the holes (white or any value above half the range in the file = hole). Every
error names the file. Writes are atomic: a file is complete or absent.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import Tensor

#: File suffixes treated as images when a folder is searched.
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")


class InputError(ValueError):
    """A user-supplied file or option is unusable; the message names it."""


def _read(path: str | Path, what: str) -> np.ndarray:
    path = Path(path)
    if not path.exists():
        raise InputError(f"{what} {path} does not exist")
    if path.is_dir():
        raise InputError(f"{what} {path} is a directory, not an image file")
    data = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if data is None:
        raise InputError(f"{what} {path} is not an image OpenCV can read")
    return data


def _to_unit(data: np.ndarray) -> np.ndarray:
    if data.dtype == np.uint8:
        return data.astype(np.float32) / 255.0
    if data.dtype == np.uint16:
        return data.astype(np.float32) / 65535.0
    return np.clip(data.astype(np.float32), 0.0, 1.0)


def read_image(path: str | Path) -> Tensor:
    """Read an RGB image (grey is replicated, alpha dropped) as ``(3, H, W)`` in ``[0, 1]``."""
    data = _to_unit(_read(path, "image"))
    if data.ndim == 2:
        data = np.repeat(data[:, :, None], 3, axis=2)
    elif data.shape[2] == 4:
        data = data[:, :, :3]
    data = data[:, :, ::-1]  # OpenCV stores BGR
    return torch.from_numpy(np.ascontiguousarray(data.transpose(2, 0, 1)))


def read_mask(path: str | Path, size: tuple[int, int] | None = None) -> Tensor:
    """Read a mask as ``(1, H, W)`` with 1 at the holes; check it is ``size`` = (H, W) if given."""
    data = _to_unit(_read(path, "mask"))
    if data.ndim == 3:
        data = data[:, :, :3].max(axis=2)
    mask = torch.from_numpy((data > 0.5).astype(np.float32))[None]
    if size is not None and tuple(mask.shape[-2:]) != tuple(size):
        raise InputError(
            f"mask {path} is {mask.shape[-1]}×{mask.shape[-2]} but the image is {size[1]}×{size[0]}"
        )
    return mask


def write_image(path: str | Path, image: Tensor) -> None:
    """Write ``(3, H, W)`` (RGB, ``[0, 1]``) or ``(1, H, W)`` to ``path`` atomically (8-bit)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    array = (image.detach().float().clamp(0, 1).cpu().numpy() * 255.0 + 0.5).astype(np.uint8)
    array = array[0] if array.shape[0] == 1 else array.transpose(1, 2, 0)[:, :, ::-1]
    suffix = path.suffix or ".png"
    try:
        ok, encoded = cv2.imencode(suffix, np.ascontiguousarray(array))
    except cv2.error:
        ok = False
    if not ok:
        raise InputError(f"cannot encode {path}: unsupported image format {suffix!r}")
    atomic_write_bytes(path, encoded.tobytes())


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600 files; use the usual mode
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
