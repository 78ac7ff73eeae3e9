"""Evaluation-mask kinds: the simulated user masks ``tttkit masks --kind NAME`` draws.

``thesis`` (the default) is the thesis's §4.1 protocol: brush strokes of thesis Algorithm 1 until
the mask's area lands near a per-image target (:mod:`tttkit.evaluation.masks`).

``lama-thin``, ``lama-medium`` and ``lama-thick`` are the random masks LaMa (Suvorov et al.,
WACV 2022; github.com/advimman/lama) evaluates with, written here from its description in
``saicinpainting/training/data/masks.py`` (the irregular-stroke and box generators, and the
mixture choosing one of them per mask), ``bin/gen_mask_dataset.py`` (masks hiding more than
``max_tamper_area`` = 50 % are dropped) and the parameters of
``configs/data_gen/random_{thin,medium,thick}_{256,512}.yaml``:

* **strokes**: ``n`` strokes, ``n`` uniform in ``[min_times, max_times + 1]`` (LaMa's stroke
  generator passes ``max_times + 1`` on as its upper bound). A stroke starts at a uniform pixel
  and has 1–5 straight segments; each segment turns to the angle ``0.01 + k`` radians,
  ``k`` uniform in ``[0, max_angle)``, mirrored to ``2π − angle`` on even-numbered strokes; it is
  ``10 + [0, max_len)`` pixels long and ``5 + [0, max_width)`` pixels wide (OpenCV's thick
  line), and its end is clipped to the frame.
* **boxes** (medium and thick only, chosen for a mask with probability 0.3 / (1 + 0.3), as LaMa
  normalises ``box_proba`` 0.3 against ``irregular_proba`` 1): ``[min_times, max_times]``
  axis-aligned rectangles whose sides are uniform in ``[bbox_min_size, bbox_max_size]``
  (capped to the frame less twice the margin), placed uniformly at least ``margin`` pixels from
  the border.
* **filter**: a mask hiding more than half the image is drawn again. LaMa draws 5 candidates
  per image, drops those over 50 % and keeps one of the rest at random, which gives the same
  distribution; it skips an image whose 5 candidates all fail (1.6 % of images with the thick
  512 masks, 0.6 % with thick 256, measured), where a mask is drawn again here, so every image
  is evaluated.

LaMa has 256 and 512 versions of each (Places at 512, CelebA-HQ at 256 in its README); a kind
uses the set of the nearer size (256 up to 362 pixels, the geometric mean, 512 above), draws at
that size and scales the mask to the requested one (area averaging then a 0.5 threshold when
shrinking, nearest neighbours when enlarging), so a mask covers the same share of the image at
any size and is exactly LaMa's at 256 and 512.

Left out: LaMa's segmentation masks (``segm_proba`` is 0 in every evaluation config, and they
need a Detectron2 panoptic model) and its ``squares`` generator (also 0). LaMa draws on the
image resized to a shorter side of 256/512 and then crops a square containing the mask's far
edge; here masks are drawn on the square directly, which is what LaMa does for a square image.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import partial

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from tttkit.errors import InputError, MaskSamplingError
from tttkit.evaluation.settings import DEFAULT_COVERAGE, DEFAULT_SPREAD
from tttkit.plugins import hookimpl

from .finetune_masks import FreeFormMasks, numpy_rng

# -- the thesis's masks (§4.1) --------------------------------------------------------------------

#: Half-width of the band a thesis mask's area must land in around its own target.
TOLERANCE = 0.01


class ThesisMasks:
    """The thesis's simulated user masks: free-form strokes around a per-image coverage target.

    Each mask's target is uniform in ``coverage ± spread`` (clipped to 2 %–85 %), and strokes of
    thesis Algorithm 1 are drawn until the area lies within ±1 point of it, so masks vary in
    size like a user's while their mean stays near ``coverage``.

    Args:
        coverage: mean fraction of the image hidden over many images (the thesis's is 28.86 %).
        spread: half-width of the uniform spread of per-image targets.
    """

    def __init__(self, coverage: float = DEFAULT_COVERAGE, spread: float = DEFAULT_SPREAD) -> None:
        if not 0.0 < coverage < 0.9:
            raise InputError(f"--coverage must lie in (0, 0.9), got {coverage}")
        self.coverage, self.spread = coverage, spread

    def __call__(self, size: int, generator: torch.Generator) -> Tensor:
        offset = (float(torch.rand((), generator=generator)) * 2 - 1) * self.spread
        target = min(max(self.coverage + offset, 0.02 + TOLERANCE), 0.85)
        strokes = FreeFormMasks(alpha=target - TOLERANCE, beta=target + TOLERANCE, max_tries=1000)
        empty = torch.zeros(1, 1, size, size)
        return strokes(empty, empty, generator)[0]


# -- LaMa's masks ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Strokes:
    """LaMa's ``irregular_kwargs`` (pixels; angles in whole radians)."""

    min_times: int
    max_times: int
    max_width: int
    max_angle: int
    max_len: int


@dataclass(frozen=True)
class Boxes:
    """LaMa's ``box_kwargs`` (pixels)."""

    margin: int
    min_size: int
    max_size: int
    min_times: int
    max_times: int


@dataclass(frozen=True)
class LamaConfig:
    """One of LaMa's ``configs/data_gen/random_<width>_<size>.yaml``."""

    strokes: Strokes
    boxes: Boxes | None = None


#: LaMa's parameters by (width, size): ``configs/data_gen/random_<width>_<size>.yaml``.
LAMA_CONFIGS: dict[tuple[str, int], LamaConfig] = {
    ("thin", 256): LamaConfig(Strokes(4, 50, 10, 4, 40)),
    ("thin", 512): LamaConfig(Strokes(4, 70, 20, 4, 100)),
    ("medium", 256): LamaConfig(Strokes(4, 5, 50, 4, 100), Boxes(0, 10, 50, 1, 5)),
    ("medium", 512): LamaConfig(Strokes(4, 10, 100, 4, 200), Boxes(0, 30, 150, 1, 5)),
    ("thick", 256): LamaConfig(Strokes(1, 5, 100, 4, 200), Boxes(10, 30, 150, 1, 3)),
    ("thick", 512): LamaConfig(Strokes(1, 5, 250, 4, 450), Boxes(10, 30, 300, 1, 4)),
}
#: Sizes LaMa has parameters for.
LAMA_SIZES = (256, 512)
#: Chance that a medium or thick mask is boxes rather than strokes (box_proba 0.3 against
#: irregular_proba 1, normalised).
BOX_SHARE = 0.3 / 1.3
#: LaMa's ``max_tamper_area``: masks hiding more of the image are drawn again.
MAX_COVERAGE = 0.5
#: Masks drawn before giving up (a thick mask is refused about 4 times in 10).
MAX_TRIES = 1000


def lama_size(size: int) -> int:
    """The LaMa size whose parameters a ``size``² mask uses: the nearer one on a log scale."""
    small, large = LAMA_SIZES
    return small if size <= math.sqrt(small * large) else large


def draw_strokes(canvas: np.ndarray, rng: np.random.Generator, p: Strokes) -> None:
    """Add LaMa's irregular strokes to ``canvas`` (``uint8``, modified in place)."""
    height, width = canvas.shape
    # LaMa's stroke generator hands max_times + 1 on as its inclusive upper bound
    for stroke in range(int(rng.integers(p.min_times, p.max_times + 2))):
        x, y = int(rng.integers(width)), int(rng.integers(height))
        for _ in range(int(rng.integers(1, 6))):
            angle = 0.01 + int(rng.integers(p.max_angle))
            if stroke % 2 == 0:
                angle = 2 * math.pi - angle
            length = 10 + int(rng.integers(p.max_len))
            brush = 5 + int(rng.integers(p.max_width))
            end_x = min(max(int(x + length * math.sin(angle)), 0), width)
            end_y = min(max(int(y + length * math.cos(angle)), 0), height)
            cv2.line(canvas, (x, y), (end_x, end_y), 1, brush)
            x, y = end_x, end_y


def draw_boxes(canvas: np.ndarray, rng: np.random.Generator, p: Boxes) -> None:
    """Add LaMa's random rectangles to ``canvas`` (``uint8``, modified in place)."""
    height, width = canvas.shape
    # sides up to max_size inclusive (LaMa's box generator adds 1 to its exclusive bound), and
    # below the frame less the margins (that cap stays exclusive)
    largest = min(p.max_size, height - 2 * p.margin - 1, width - 2 * p.margin - 1)
    for _ in range(int(rng.integers(p.min_times, p.max_times + 1))):
        box_w = int(rng.integers(p.min_size, largest + 1))
        box_h = int(rng.integers(p.min_size, largest + 1))
        left = int(rng.integers(p.margin, width - p.margin - box_w + 1))
        top = int(rng.integers(p.margin, height - p.margin - box_h + 1))
        canvas[top : top + box_h, left : left + box_w] = 1


def resize_mask(mask: Tensor, size: int) -> Tensor:
    """A ``(1, s, s)`` 0/1 mask at ``size``²: area averaging and a 0.5 threshold when shrinking
    (the hidden share survives), nearest neighbours when enlarging."""
    if mask.shape[-1] == size:
        return mask
    mode = "area" if mask.shape[-1] > size else "nearest"
    return (F.interpolate(mask[None], size=(size, size), mode=mode)[0] >= 0.5).float()


class LamaMasks:
    """LaMa's random evaluation masks of one width (see the module docstring).

    Args:
        width: ``thin``, ``medium`` or ``thick``.
    """

    def __init__(self, width: str) -> None:
        if (width, 256) not in LAMA_CONFIGS:
            raise ValueError(f"LaMa masks are thin, medium or thick, not {width!r}")
        self.width = width

    def __call__(self, size: int, generator: torch.Generator) -> Tensor:
        native = lama_size(size)
        config = LAMA_CONFIGS[(self.width, native)]
        rng = numpy_rng(generator)
        canvas = np.zeros((native, native), np.uint8)
        for _ in range(MAX_TRIES):
            canvas[:] = 0
            if config.boxes is not None and rng.random() < BOX_SHARE:
                draw_boxes(canvas, rng, config.boxes)
            else:
                draw_strokes(canvas, rng, config.strokes)
            if canvas.mean() > MAX_COVERAGE:
                continue
            mask = resize_mask(torch.from_numpy(canvas.astype(np.float32))[None], size)
            if mask.any():  # a few thin strokes can vanish when shrunk to a tiny size
                return mask
        raise MaskSamplingError(
            f"no lama-{self.width} mask of {size}×{size} hiding between 0 and "
            f"{MAX_COVERAGE:.0%} of the image in {MAX_TRIES} draws"
        )


@hookimpl
def tttkit_register_eval_masks(register) -> None:  # type: ignore[no-untyped-def]
    """The thesis's evaluation masks and LaMa's."""
    register(
        "thesis",
        ThesisMasks,
        description="thesis §4.1: free-form strokes, mean coverage --coverage (the default)",
    )
    for width, what in (
        ("thin", "many narrow strokes"),
        ("medium", "a few wide strokes, or small boxes"),
        ("thick", "1–6 very wide strokes, or large boxes"),
    ):
        register(
            f"lama-{width}",
            partial(LamaMasks, width),
            description=f"LaMa's random_{width}_256/512 masks: {what}; at most 50% hidden",
        )
