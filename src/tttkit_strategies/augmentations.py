"""The random augmentations of thesis §4.3, as registered augmentation components.

Each class is its own factory: its constructor keywords are the augmentation's parameters (with the
thesis's values as defaults) and an instance is an :class:`tttkit.components.Augmentation`.

Conventions shared by all of them (see :class:`tttkit.components.View`):

* Every random parameter is drawn from the ``torch.Generator`` passed in (never the global RNG), on
  the generator's device, and only then moved to the image's device — so one seed reproduces a run
  whether the generator lives on the CPU or on the GPU.
* *Intensity* augmentations (``geometric = False``) change only the image; masks stay bit-identical.
* *Geometric* augmentations (``geometric = True``) move the image, ``user_mask``, ``finetune_mask``
  (when not ``None``) and ``empty`` together, through the public helpers a plugin's geometric
  augmentation uses too: :meth:`View.map_pixels <tttkit.components.View.map_pixels>` for exact
  pixel permutations (flips, quarter turns, shifts) and :meth:`View.warp
  <tttkit.components.View.warp>` for affine warps (masks resampled with nearest neighbours so they
  stay 0/1; vacated pixels marked ``empty``, both masks and the image zeroed there — the pipeline
  executor then fills them as configured, thesis §4.3.2).

Decisions where the thesis is silent (also stated on each class):

* ``crop``: the window keeps the image's aspect ratio, ``scale`` (0.5) of each side — 128×128 for
  the thesis's 256×256 — or an absolute ``size``; acceptance is checked on the masks as returned.
* ``gaussian-blur``: kornia needs odd kernels, so the kernel size is drawn among the odd sizes of
  the range (5 or 7 for the thesis's [5, 8]); an even fixed size is rejected.
* ``shear``: shear factors uniform in ±0.2 on each axis, applied about the image centre.
* ``rotate`` / ``shear``: the image is resampled bilinearly (``interpolation`` may select nearest).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from kornia.filters import gaussian_blur2d
from kornia.geometry.transform import get_rotation_matrix2d
from torch import Tensor

from tttkit.components import View
from tttkit.plugins import hookimpl

__all__ = [
    "HorizontalFlip",
    "RandomBrightness",
    "RandomCrop",
    "RandomGaussianBlur",
    "RandomGaussianNoise",
    "RandomRotation",
    "RandomShear",
    "RandomTranslation",
    "VerticalFlip",
    "tttkit_register_augmentations",
]

# -- sampling from the caller's generator ------------------------------------------------------


def _uniform(generator: torch.Generator, low: float, high: float) -> float:
    """A float uniform in ``[low, high)``, drawn from ``generator``."""
    u = torch.rand((), generator=generator, device=generator.device).item()
    return low + (high - low) * u


def _randint(generator: torch.Generator, low: int, high: int) -> int:
    """An integer uniform in ``[low, high]`` (both included), drawn from ``generator``."""
    return int(torch.randint(low, high + 1, (), generator=generator, device=generator.device))


def _as_range(value: float | Sequence[float], name: str) -> tuple[float, float]:
    """``(low, high)`` from a pair, or ``(v, v)`` from a single number (a fixed value)."""
    if isinstance(value, (int, float)):
        return float(value), float(value)
    if len(value) != 2:
        raise ValueError(f"{name} must be a number or a [low, high] pair, got {value!r}")
    low, high = float(value[0]), float(value[1])
    if low > high:
        raise ValueError(f"{name}: low {low} exceeds high {high}")
    return low, high


def _symmetric_range(value: float | Sequence[float], name: str) -> tuple[float, float]:
    """``(-v, v)`` from a single number, or a ``(low, high)`` pair as given."""
    if isinstance(value, (int, float)):
        return -abs(float(value)), abs(float(value))
    return _as_range(value, name)


def _check_interpolation(interpolation: str) -> str:
    if interpolation not in ("bilinear", "nearest"):
        raise ValueError(f"interpolation must be 'bilinear' or 'nearest', got {interpolation!r}")
    return interpolation


# -- intensity augmentations ------------------------------------------------------------------


class RandomBrightness:
    """Random brightness (thesis §4.3.1): scale all pixel values by a factor, then clip to [0, 1].

    Args:
        factor: ``[low, high]`` range the factor is drawn from uniformly (thesis: 0.7–1.3), or a
            single fixed factor.
    """

    geometric: bool = False

    def __init__(self, factor: float | Sequence[float] = (0.7, 1.3)) -> None:
        self.factor = _as_range(factor, "factor")
        if self.factor[0] < 0:
            raise ValueError(f"factor must be non-negative, got {factor!r}")

    def __call__(self, view: View, generator: torch.Generator) -> View:
        factor = _uniform(generator, *self.factor)
        return view.with_(image=(view.image * factor).clamp(0.0, 1.0))


class RandomGaussianBlur:
    """Random Gaussian blur (thesis §4.3.1; fixed k 5, σ 2 in combination A, §4.6.1).

    The kernel is isotropic (same size and σ on both axes), with reflect padding at the borders.
    kornia's :func:`~kornia.filters.gaussian_blur2d` only takes odd kernel sizes (an even kernel
    has no centre tap and would shift the image by half a pixel), so the size is drawn uniformly
    among the *odd* integers of the range: 5 or 7 for the thesis's [5, 8].

    Args:
        kernel_size: ``[low, high]`` range (inclusive) of the kernel size, or one fixed odd size.
        sigma: ``[low, high]`` range σ is drawn from uniformly (thesis: 3–6), or a fixed σ.
    """

    geometric: bool = False

    def __init__(
        self,
        kernel_size: int | Sequence[int] = (5, 8),
        sigma: float | Sequence[float] = (3.0, 6.0),
    ) -> None:
        if isinstance(kernel_size, int):
            sizes = [kernel_size] if kernel_size % 2 == 1 else []
        else:
            if len(kernel_size) != 2:
                raise ValueError(f"kernel_size must be an int or a [low, high] pair: {kernel_size}")
            low, high = int(kernel_size[0]), int(kernel_size[1])
            sizes = [k for k in range(low, high + 1) if k % 2 == 1]
        if not sizes or sizes[0] < 1:
            raise ValueError(f"kernel_size {kernel_size!r} must be or contain a positive odd size")
        self.kernel_sizes = tuple(sizes)
        self.sigma = _as_range(sigma, "sigma")
        if self.sigma[0] <= 0:
            raise ValueError(f"sigma must be positive, got {sigma!r}")

    def __call__(self, view: View, generator: torch.Generator) -> View:
        k = self.kernel_sizes[_randint(generator, 0, len(self.kernel_sizes) - 1)]
        s = _uniform(generator, *self.sigma)
        blurred = gaussian_blur2d(view.image, (k, k), (s, s), border_type="reflect")
        return view.with_(image=blurred.clamp(0.0, 1.0))


class RandomGaussianNoise:
    """Random Gaussian noise (thesis §4.3.1): add N(mean, std²) per pixel and channel, then clip.

    Args:
        std: standard deviation of the noise (thesis: 0.2).
        mean: mean of the noise (thesis: 0).
    """

    geometric: bool = False

    def __init__(self, std: float = 0.2, mean: float = 0.0) -> None:
        if std < 0:
            raise ValueError(f"std must be non-negative, got {std}")
        self.std, self.mean = float(std), float(mean)

    def __call__(self, view: View, generator: torch.Generator) -> View:
        image = view.image
        noise = torch.randn(image.shape, generator=generator, device=generator.device)
        noise = noise.to(device=image.device, dtype=image.dtype)
        return view.with_(image=(image + self.mean + self.std * noise).clamp(0.0, 1.0))


# -- geometric augmentations ------------------------------------------------------------------


class RandomCrop:
    """Random crop (thesis §4.3.1): zoom on a random window, upscaled back with nearest neighbours.

    The window keeps the image's aspect ratio: ``scale`` of each side (0.5 gives the thesis's
    128×128 window on a 256×256 image), unless ``size`` fixes it in pixels. The same window is
    applied to the image and all masks, and the crop is kept only when, on the returned masks, the
    finetuning mask alone (outside the user mask) covers more than ``min_finetune`` and the union
    of finetuning and user masks less than ``max_hidden``; otherwise a new window is drawn, up to
    ``max_tries`` times, after which the augmentation gives up (returns ``None``). Without a
    finetuning mask (it is drawn after augmentation) only the user-mask bound is checked.

    Args:
        scale: window side as a fraction of the image side, in (0, 1].
        size: window ``height`` (square) or ``[height, width]`` in pixels; overrides ``scale``.
        min_finetune: the finetuning mask must cover more than this fraction of the crop.
        max_hidden: finetuning ∪ user mask must cover less than this fraction of the crop.
        max_tries: windows drawn before giving up.
    """

    geometric: bool = True

    def __init__(
        self,
        scale: float = 0.5,
        size: int | Sequence[int] | None = None,
        min_finetune: float = 0.1,
        max_hidden: float = 0.65,
        max_tries: int = 50,
    ) -> None:
        if not 0 < scale <= 1:
            raise ValueError(f"scale must lie in (0, 1], got {scale}")
        if size is not None and not isinstance(size, int) and len(size) != 2:
            raise ValueError(f"size must be an int or a [height, width] pair, got {size!r}")
        if max_tries < 1:
            raise ValueError(f"max_tries must be at least 1, got {max_tries}")
        self.scale = float(scale)
        self.size: int | tuple[int, int] | None = (
            size if size is None or isinstance(size, int) else (int(size[0]), int(size[1]))
        )
        self.min_finetune, self.max_hidden = float(min_finetune), float(max_hidden)
        self.max_tries = int(max_tries)

    def window(self, height: int, width: int) -> tuple[int, int]:
        """The crop window ``(h, w)`` for an image of ``height`` × ``width``."""
        if self.size is None:
            h, w = round(self.scale * height), round(self.scale * width)
        elif isinstance(self.size, int):
            h = w = self.size
        else:
            h, w = self.size
        return max(1, min(h, height)), max(1, min(w, width))

    def accepts(self, user_mask: Tensor, finetune_mask: Tensor | None) -> bool:
        """Whether masks (as they come out of a crop) satisfy the thesis's acceptance rule."""
        if finetune_mask is None:
            return user_mask.float().mean().item() < self.max_hidden
        alone = (finetune_mask * (1 - user_mask)).float().mean().item()
        hidden = torch.maximum(finetune_mask, user_mask).float().mean().item()
        return alone > self.min_finetune and hidden < self.max_hidden

    def __call__(self, view: View, generator: torch.Generator) -> View | None:
        _, _, height, width = view.image.shape
        h, w = self.window(height, width)

        def zoom(x: Tensor, top: int, left: int) -> Tensor:
            # nearest-exact keeps the sampling centred for non-integer zoom factors; every output
            # pixel copies one source pixel, so masks stay binary.
            window = x[..., top : top + h, left : left + w]
            return F.interpolate(window, size=(height, width), mode="nearest-exact")

        for _ in range(self.max_tries):
            top = _randint(generator, 0, height - h)
            left = _randint(generator, 0, width - w)
            # Check the masks first: the image is only zoomed once a window is accepted.
            user = zoom(view.user_mask, top, left)
            fine = None if view.finetune_mask is None else zoom(view.finetune_mask, top, left)
            if not self.accepts(user, fine):
                continue
            empty = zoom(view.empty, top, left)
            content = 1 - empty
            return View(
                image=zoom(view.image, top, left) * content.to(view.image.dtype),
                user_mask=user * content,
                finetune_mask=None if fine is None else fine * content,
                empty=empty,
            )
        return None


class HorizontalFlip:
    """Left-right flip (thesis §4.3.2): mirror across the vertical centre line. No parameters."""

    geometric: bool = True

    def __call__(self, view: View, generator: torch.Generator) -> View:
        return view.map_pixels(lambda x: torch.flip(x, dims=(-1,)))


class VerticalFlip:
    """Up-down flip (used with the left-right flip in combination A, thesis §4.6.1)."""

    geometric: bool = True

    def __call__(self, view: View, generator: torch.Generator) -> View:
        return view.map_pixels(lambda x: torch.flip(x, dims=(-2,)))


class RandomTranslation:
    """Random translation (thesis §4.3.2) by whole pixels, vacated pixels keeping their original.

    Shifts ``v_x`` and ``v_y`` are integers drawn uniformly from ``[-max_shift, max_shift]``
    (0 included). The pixels the shift vacates keep the *original* view's content — image and
    masks alike ("two replicas of the same image stacked"), so the translation never leaves a
    pixel empty. A positive ``v_x`` moves content right, a positive ``v_y`` down.

    Args:
        max_shift: largest shift in pixels on each axis (thesis: 12).
    """

    geometric: bool = True

    def __init__(self, max_shift: int = 12) -> None:
        if max_shift < 0:
            raise ValueError(f"max_shift must be non-negative, got {max_shift}")
        self.max_shift = int(max_shift)

    def translate(self, view: View, dy: int, dx: int) -> View:
        """Shift ``view`` by ``dy`` rows down and ``dx`` columns right (deterministic)."""
        _, _, h, w = view.image.shape
        if abs(dy) >= h or abs(dx) >= w:
            return view  # everything would be vacated, i.e. keep the original

        def shift(x: Tensor) -> Tensor:
            out = x.clone()  # vacated pixels keep the original values
            out[..., max(dy, 0) : h + min(dy, 0), max(dx, 0) : w + min(dx, 0)] = x[
                ..., max(-dy, 0) : h + min(-dy, 0), max(-dx, 0) : w + min(-dx, 0)
            ]
            return out

        return view.map_pixels(shift)

    def __call__(self, view: View, generator: torch.Generator) -> View:
        _, _, h, w = view.image.shape
        # Beyond the frame a shift would move nothing in; cap it to what the image can show.
        dx = _randint(generator, -min(self.max_shift, w - 1), min(self.max_shift, w - 1))
        dy = _randint(generator, -min(self.max_shift, h - 1), min(self.max_shift, h - 1))
        return self.translate(view, dy=dy, dx=dx)


class RandomRotation:
    """Random rotation about the image centre (thesis §4.3.2), counter-clockwise as displayed.

    The angle is drawn uniformly from ``angles`` (degrees). 0 returns the view unchanged (it still
    counts as applied, as in the thesis). 180° always, and 90°/270° on square images, are exact
    pixel permutations (:func:`torch.rot90`) that leave nothing empty. Other angles warp with an
    affine matrix about the centre; pixels rotated in from outside the frame become empty.

    Args:
        angles: candidate angles in degrees; thesis: {0, 90, 180, 270}, or {30, 60, …, 330}.
        interpolation: resampling of the image for non-exact angles, ``"bilinear"`` or
            ``"nearest"`` (masks always use nearest).
    """

    geometric: bool = True

    def __init__(
        self,
        angles: Sequence[float] = (0, 90, 180, 270),
        interpolation: str = "bilinear",
    ) -> None:
        if isinstance(angles, (int, float)) or len(angles) == 0:
            raise ValueError(f"angles must be a non-empty list of degrees, got {angles!r}")
        self.angles = tuple(float(a) for a in angles)
        self.interpolation = _check_interpolation(interpolation)

    def rotate(self, view: View, angle: float) -> View:
        """Rotate ``view`` by ``angle`` degrees (deterministic)."""
        angle = angle % 360.0
        _, _, h, w = view.image.shape
        quarter = angle / 90.0
        if quarter == int(quarter) and (h == w or angle in (0.0, 180.0)):
            k = int(quarter)
            if k == 0:
                return view
            return view.map_pixels(lambda x: torch.rot90(x, k, dims=(-2, -1)))
        center = torch.tensor([[(w - 1) / 2, (h - 1) / 2]], dtype=torch.float64)
        matrix = get_rotation_matrix2d(
            center,
            torch.tensor([angle], dtype=torch.float64),
            torch.ones(1, 2, dtype=torch.float64),
        )[0]
        if quarter == int(quarter):
            # cos 90° computes as ~1e-17, not 0: snap so quarter turns sample whole pixels exactly.
            matrix = matrix.round(decimals=9)
        return view.warp(matrix, self.interpolation)

    def __call__(self, view: View, generator: torch.Generator) -> View:
        angle = self.angles[_randint(generator, 0, len(self.angles) - 1)]
        return self.rotate(view, angle)


class RandomShear:
    """Random shear about the image centre (thesis §4.3.2), matrix ``[[1, sh_x], [sh_y, 1]]``.

    The thesis gives the matrix but no range: we draw ``sh_x`` and ``sh_y`` independently and
    uniformly from ±0.2 (a pixel 100 px below the centre moves at most 20 px sideways), large
    enough to be visible and small enough to keep most of the image in frame. Both factors act at
    once, as in the thesis's matrix, about the centre so that content stays centred. Pixels
    sheared in from outside the frame become empty.

    Args:
        shear_x: ``sh_x`` range ``[low, high]``, or ``s`` meaning ``[-s, s]``.
        shear_y: ``sh_y`` range, likewise.
        interpolation: resampling of the image, ``"bilinear"`` or ``"nearest"``.
    """

    geometric: bool = True

    def __init__(
        self,
        shear_x: float | Sequence[float] = 0.2,
        shear_y: float | Sequence[float] = 0.2,
        interpolation: str = "bilinear",
    ) -> None:
        self.shear_x = _symmetric_range(shear_x, "shear_x")
        self.shear_y = _symmetric_range(shear_y, "shear_y")
        self.interpolation = _check_interpolation(interpolation)

    def shear(self, view: View, sh_x: float, sh_y: float) -> View | None:
        """Shear ``view`` by the given factors (deterministic); ``None`` if not invertible."""
        if math.isclose(sh_x * sh_y, 1.0):
            return None  # singular matrix: the whole image would collapse onto a line
        _, _, h, w = view.image.shape
        cx, cy = (w - 1) / 2, (h - 1) / 2
        # x' = x + sh_x (y - cy), y' = y + sh_y (x - cx): the thesis's matrix, about the centre.
        matrix = torch.tensor([[1.0, sh_x, -sh_x * cy], [sh_y, 1.0, -sh_y * cx]])
        return view.warp(matrix, self.interpolation)

    def __call__(self, view: View, generator: torch.Generator) -> View | None:
        sh_x = _uniform(generator, *self.shear_x)
        sh_y = _uniform(generator, *self.shear_y)
        return self.shear(view, sh_x, sh_y)


# -- registration -----------------------------------------------------------------------------


@hookimpl
def tttkit_register_augmentations(register: Callable[..., None]) -> None:
    """Register the augmentations of thesis §4.3."""
    register(
        "crop",
        RandomCrop,
        description="zoom on a random window (half of each side), nearest upscaling; "
        "kept only if F alone >10% and F∪U <65% of the crop (§4.3.1)",
    )
    register("brightness", RandomBrightness, description="scale by U(0.7, 1.3), clip (§4.3.1)")
    register(
        "gaussian-blur",
        RandomGaussianBlur,
        description="Gaussian blur, odd kernel in [5, 8], σ in [3, 6] (§4.3.1)",
    )
    register("gaussian-noise", RandomGaussianNoise, description="add N(0, 0.2²), clip (§4.3.1)")
    register("hflip", HorizontalFlip, description="left-right flip (§4.3.2)")
    register("vflip", VerticalFlip, description="up-down flip (§4.6.1)")
    register(
        "translate",
        RandomTranslation,
        description="shift by up to ±12 px per axis; vacated pixels keep the original (§4.3.2)",
    )
    register(
        "rotate",
        RandomRotation,
        description="rotate about the centre by an angle from {0, 90, 180, 270} (§4.3.2)",
    )
    register(
        "shear",
        RandomShear,
        description="shear about the centre, factors uniform in ±0.2 per axis (§4.3.2)",
    )
