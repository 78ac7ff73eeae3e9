"""Reading and writing images and masks: the only module that touches image files.

Images are returned as ``(3, H, W)`` float32 RGB in ``[0, 1]``; masks as ``(1, H, W)`` float32
with ``1`` at the holes (white, or any value above half the range in the file = hole). Every
error names the file and says what to do.

Reading is safe with any file a person may drop on it (``docs/limits.md``):

* only regular files are opened (a pipe or device would block or never end);
* the size is read from the header and checked against a pixel limit before any decoding
  (:func:`pixel_limit`: ``max_pixels``, else ``TTTKIT_MAX_PIXELS``, else
  :data:`DEFAULT_MAX_PIXELS`), so a decompression bomb costs nothing;
* a truncated or corrupt file is an error, never a half-grey picture;
* the EXIF orientation is applied, so pixels are where every viewer shows them;
* float images must be finite (a NaN pixel would become a black fill).

Decoding is Pillow's (header, orientation, truncation); float TIFFs with several channels,
which Pillow cannot represent, are decoded by OpenCV after the same header check. Writes are
atomic: a file is complete or absent; :func:`check_output_file` checks an output before work.
"""

from __future__ import annotations

import os
import stat
import tempfile
import warnings
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from tttkit.errors import InputError

#: File suffixes treated as images when a folder is searched, and accepted for outputs.
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")
#: The largest photo read by default, in pixels (a 108-megapixel phone photo fits).
DEFAULT_MAX_PIXELS = 120_000_000
#: Environment variable that changes the pixel limit (``--max-pixels`` changes it per command).
ENV_MAX_PIXELS = "TTTKIT_MAX_PIXELS"

_EXIF_ORIENTATION = 0x0112
_TIFF_MAGIC = (b"II*\x00", b"MM\x00*")


def pixel_limit(max_pixels: int | None = None) -> int:
    """The pixel limit in force: ``max_pixels``, else ``$TTTKIT_MAX_PIXELS``, else the default."""
    if max_pixels is None:
        text = os.environ.get(ENV_MAX_PIXELS, "").strip()
        if not text:
            return DEFAULT_MAX_PIXELS
        try:
            max_pixels = int(text)
        except ValueError:
            raise InputError(f"{ENV_MAX_PIXELS}={text!r} is not a whole number of pixels") from None
    if max_pixels < 1:
        raise InputError(f"the pixel limit (--max-pixels) must be positive, got {max_pixels}")
    return max_pixels


def _check_file(path: Path, what: str) -> None:
    try:
        info = path.stat()
    except (FileNotFoundError, NotADirectoryError):
        raise InputError(f"{what} {path} does not exist") from None
    except OSError as exc:
        raise InputError(f"{what} {path} cannot be read: {exc.strerror}") from None
    if stat.S_ISDIR(info.st_mode):
        raise InputError(f"{what} {path} is a directory, not an image file")
    if not stat.S_ISREG(info.st_mode):
        raise InputError(
            f"{what} {path} is not a regular file (a pipe, device or socket): save it to a file"
        )
    if info.st_size == 0:
        raise InputError(f"{what} {path} is an empty file")


def _check_pixels(path: Path, what: str, width: int, height: int, limit: int) -> None:
    if width < 1 or height < 1:
        raise InputError(f"{what} {path} claims an empty size ({width}×{height})")
    if width * height > limit:
        raise InputError(
            f"{what} {path} is {width}×{height} = {width * height / 1e6:.1f} megapixels, over "
            f"the limit of {limit / 1e6:g} megapixels; raise it with --max-pixels (or "
            f"{ENV_MAX_PIXELS}) if you mean it (docs/limits.md)"
        )


def _orient(data: np.ndarray, orientation: int) -> np.ndarray:
    """Apply an EXIF orientation (1–8) to ``(H, W[, C])`` pixels, as viewers display them."""
    flipped = {2: data[:, ::-1], 3: data[::-1, ::-1], 4: data[::-1]}
    if orientation in flipped:
        return flipped[orientation]
    if orientation in (5, 6, 7, 8):
        transposed = data.swapaxes(0, 1)  # orientation 5
        return {
            5: transposed,
            6: transposed[:, ::-1],
            7: transposed[::-1, ::-1],
            8: transposed[::-1],
        }[orientation]
    return data


def _pillow_pixels(image: object, path: Path, what: str) -> np.ndarray:
    """The decoded pixels of a loaded Pillow image: 8-bit, 16-bit or float, RGB order."""
    mode: str = image.mode  # type: ignore[attr-defined]
    if mode.startswith("I;16"):
        return np.asarray(image).astype(np.uint16)
    if mode == "I":
        data = np.asarray(image)
        if data.size and (data.min() < 0 or data.max() > 65535):
            raise InputError(f"{what} {path} has 32-bit pixel values outside 0…65535")
        return data.astype(np.uint16)
    if mode == "F":
        return np.asarray(image, dtype=np.float32)
    if mode in ("1", "L", "LA", "La"):
        return np.asarray(image.convert("L"))  # type: ignore[attr-defined]
    return np.asarray(image.convert("RGB"))  # type: ignore[attr-defined]


def _tiff_header(path: Path) -> tuple[int, int, int] | None:
    """Width, height and orientation from a TIFF's first directory (``None``: not a TIFF)."""
    from PIL import TiffImagePlugin

    with path.open("rb") as handle:
        head = handle.read(8)
        if head[:4] not in _TIFF_MAGIC:
            return None
        directory = TiffImagePlugin.ImageFileDirectory_v2(head)
        handle.seek(directory.next)
        directory.load(handle)
    return int(directory[256]), int(directory[257]), int(directory.get(274, 1))


def _opencv_tiff(path: Path, what: str, limit: int) -> tuple[np.ndarray, int]:
    """A TIFF Pillow cannot represent (e.g. float RGB), checked from its header first."""
    import cv2

    try:
        header = _tiff_header(path)
    except Exception:  # a malformed directory: Pillow's parser raises many types
        header = None
    if header is None:
        raise InputError(
            f"{what} {path} is not an image tttkit can read "
            f"({', '.join(s.lstrip('.').upper() for s in IMAGE_SUFFIXES)})"
        )
    width, height, orientation = header
    _check_pixels(path, what, width, height, limit)
    try:
        data = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    except cv2.error:
        data = None
    if data is None:
        raise InputError(f"{what} {path} is a TIFF that cannot be decoded (corrupt or truncated)")
    if data.ndim == 3:
        data = data[:, :, 2::-1] if data.shape[2] >= 3 else data[:, :, 0]
    return data, orientation


def _decode(path: Path, what: str, max_pixels: int | None) -> np.ndarray:
    """Pixels of an image file as ``(H, W)`` or ``(H, W, 3)``, upright, in the file's depth."""
    from PIL import Image, UnidentifiedImageError

    limit = pixel_limit(max_pixels)
    _check_file(path, what)
    previous = Image.MAX_IMAGE_PIXELS
    try:
        # Ours replaces Pillow's bomb check: the same header, an exact limit, and advice.
        Image.MAX_IMAGE_PIXELS = None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            try:
                with Image.open(path) as image:
                    _check_pixels(path, what, image.width, image.height, limit)
                    orientation = int(image.getexif().get(_EXIF_ORIENTATION, 1) or 1)
                    image.load()
                    data = _pillow_pixels(image, path, what)
            except UnidentifiedImageError:
                data, orientation = _opencv_tiff(path, what, limit)
    except InputError:
        raise
    except PermissionError:
        raise InputError(f"{what} {path} cannot be read: permission denied") from None
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, KeyError) as exc:
        detail = str(exc) or type(exc).__name__
        kind = "truncated" if "truncated" in detail else "corrupt"
        raise InputError(f"{what} {path} is {kind} or not an image: {detail}") from None
    finally:
        Image.MAX_IMAGE_PIXELS = previous
    return _orient(data, orientation)


#: The value of white for each integer depth.
_WHITE = {np.dtype(np.uint8): 255, np.dtype(np.uint16): 65535}


def _check_finite(data: np.ndarray, path: Path, what: str) -> None:
    if data.dtype.kind == "f" and not np.isfinite(data).all():
        raise InputError(
            f"{what} {path} has pixel values that are not finite (NaN or infinity); "
            "replace them before filling"
        )


def _to_tensor(data: np.ndarray, dtype: torch.dtype) -> Tensor:
    """``(H, W[, C])`` pixels → ``(C, H, W)``: float32 in ``[0, 1]`` or uint8, with no
    full-size temporary beyond the result (a 24-megapixel photo is 288 MB as float32)."""
    white = _WHITE.get(data.dtype)
    if dtype == torch.uint8 and data.dtype != np.uint8:  # 16-bit or float → 8-bit, rounded
        scaled = data.astype(np.float32) * (255.0 / white if white else 255.0)
        data = np.clip(scaled + 0.5, 0, 255).astype(np.uint8)
        white = 255
    if not (data.flags.writeable and data.flags.c_contiguous):  # Pillow's buffer; a flip
        data = np.array(data, order="C")
    pixels = torch.from_numpy(data)
    pixels = pixels[:, :, None] if pixels.dim() == 2 else pixels
    out = torch.empty((pixels.shape[2], *pixels.shape[:2]), dtype=dtype)
    out.copy_(pixels.permute(2, 0, 1))
    if dtype == torch.uint8:
        return out
    return out.mul_(1.0 / white) if white is not None else out.clamp_(0.0, 1.0)


def read_image(
    path: str | Path, *, max_pixels: int | None = None, dtype: torch.dtype = torch.float32
) -> Tensor:
    """Read an RGB image (grey is replicated, alpha dropped) as ``(3, H, W)`` in ``[0, 1]``.

    Args:
        path: an image file (PNG, JPEG, TIFF, BMP, WebP, …).
        max_pixels: the pixel limit (see :func:`pixel_limit`).
        dtype: ``torch.float32`` (``[0, 1]``) or ``torch.uint8`` (``0…255``, a quarter of the
            memory: how the command line holds a large photo).

    Raises:
        InputError: the file is missing, not a regular file, over the limit, truncated,
            corrupt, or has non-finite pixels.
    """
    path = Path(path)
    data = _decode(path, "image", max_pixels)
    _check_finite(data, path, "image")
    if dtype not in (torch.float32, torch.uint8):
        raise ValueError(f"read_image: dtype must be torch.float32 or torch.uint8, got {dtype}")
    image = _to_tensor(data, dtype)
    return image.expand(3, -1, -1).contiguous() if image.shape[0] == 1 else image


def read_mask(
    path: str | Path, size: tuple[int, int] | None = None, *, max_pixels: int | None = None
) -> Tensor:
    """Read a mask as ``(1, H, W)`` with 1 at the holes; check it is ``size`` = (H, W) if given.

    A hole is any pixel above half the file's range (> 127 of 255, > 32767 of 65535); colour
    masks use their brightest channel. A mask with no such pixel but some non-black ones (a 0/1
    mask, say) is an error that says so, rather than an empty mask.
    """
    path = Path(path)
    data = _decode(path, "mask", max_pixels)
    _check_finite(data, path, "mask")
    if data.ndim == 3:
        data = data.max(axis=2)
    white = _WHITE.get(data.dtype, 1.0)
    holes = data > white / 2
    if not holes.any() and data.max() > 0:
        raise InputError(
            f"mask {path} marks no hole: holes must be white (above half the range: more than "
            f"{white // 2 if white > 1 else 0.5} of {white}), but its brightest pixel is "
            f"{data.max()} of {white}. Scale a 0/1 mask to 0/{white}; a mask with no hole is "
            "all black"
        )
    mask = torch.from_numpy(holes).to(torch.float32)[None]
    if size is not None and tuple(mask.shape[-2:]) != tuple(size):
        raise InputError(
            f"mask {path} is {mask.shape[-1]}×{mask.shape[-2]} but the image is {size[1]}×{size[0]}"
        )
    return mask


# -- outputs --------------------------------------------------------------------------------


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def check_output_folder(folder: str | Path, option: str, shown: str | Path | None = None) -> None:
    """Check that files can be written in ``folder`` (made later if missing), before any work.

    Raises:
        InputError: naming ``option``: ``folder`` or an ancestor is a file, or the nearest
            existing ancestor is not writable.
    """
    folder = Path(folder)
    shown = shown if shown is not None else folder
    ancestor = folder
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if ancestor.exists() and not ancestor.is_dir():
        raise InputError(f"{option} {shown}: {ancestor} is a file, not a folder")
    try:  # a real probe: permissions, read-only file systems and /proc alike
        fd, probe = tempfile.mkstemp(dir=ancestor, prefix=".tttkit-probe-")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise InputError(f"{option} {shown}: cannot write in {ancestor} ({exc.strerror})") from None


def check_output_file(
    path: str | Path,
    option: str,
    *,
    inputs: Iterable[tuple[str, str | Path | None]] = (),
    suffixes: Iterable[str] = IMAGE_SUFFIXES,
) -> Path:
    """Check an output file before any work: format, not a folder, writable, not an input.

    Args:
        path: where the output will be written.
        option: the option that named it (``--out``), for the message.
        inputs: ``(option, path)`` of files the run reads; writing over one is refused.
        suffixes: the accepted file suffixes.
    """
    path = Path(path)
    suffixes = tuple(suffixes)
    if path.is_dir():
        raise InputError(f"{option} {path} is a directory; give a file name")
    if path.suffix.lower() not in suffixes:
        raise InputError(
            f"{option} {path}: unsupported format {path.suffix or '(no suffix)'!r} "
            f"(use {', '.join(suffixes)})"
        )
    if path.exists() and not path.is_file():
        raise InputError(f"{option} {path} is not a regular file")
    for other_option, other in inputs:
        if other is not None and (_same_file(path, Path(other)) or path == Path(other)):
            raise InputError(
                f"{option} {path} is the same file as {other_option}: it would overwrite an input"
            )
    check_output_folder(path.parent, option, path)
    return path


def write_image(path: str | Path, image: Tensor) -> None:
    """Write ``(3, H, W)`` (RGB, ``[0, 1]``) or ``(1, H, W)`` to ``path`` atomically (8-bit)."""
    import cv2

    path = Path(path)
    suffix = path.suffix or ".png"
    try:
        ok, encoded = cv2.imencode(suffix, _to_8bit(image))
    except cv2.error:
        ok = False
    if not ok:
        raise InputError(f"cannot encode {path}: unsupported image format {suffix!r}")
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, encoded.tobytes())


def _to_8bit(image: Tensor, band: int = 256) -> np.ndarray:
    """``(C, H, W)`` in ``[0, 1]`` → OpenCV's ``(H, W)`` or ``(H, W, 3)`` BGR uint8, a band of
    rows at a time (no full-size float temporary)."""
    image = image.detach()
    channels, height, width = image.shape
    out = np.empty((height, width, channels), np.uint8)
    for top in range(0, height, band):
        rows = image[:, top : top + band].cpu()
        if rows.dtype != torch.uint8:
            # mul (not mul_): ``rows`` may be the caller's own tensor
            rows = rows.float().mul(255.0).add_(0.5).clamp_(0.0, 255.0).to(torch.uint8)
        out[top : top + band] = rows.permute(1, 2, 0).numpy()
    return out[:, :, 0] if channels == 1 else np.ascontiguousarray(out[:, :, ::-1])


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
