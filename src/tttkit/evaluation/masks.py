"""Simulated user masks for evaluation (thesis §4.1): one free-form mask per image, fixed once.

The thesis draws one random mask per image at the start and reuses it in every experiment; its
masks hide 28.86% of the image on average. Here each mask is drawn with the brush strokes of
thesis Algorithm 1 (:class:`tttkit_strategies.finetune_masks.FreeFormMasks`) until its area lies
within ±1 point of a per-image target, and the targets are spread uniformly over
``coverage ± spread``, so masks vary in size like a user's while their mean stays near
``coverage`` (measured: within about one point over a few dozen images).

Each mask depends only on the run seed, the image key, the size and the coverage settings —
never on the image's content or on which other images exist — so adding photos to a folder
leaves the existing masks unchanged.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from tttkit.components import free_form_masks
from tttkit.evaluation.layout import (
    check_outside,
    check_unique_stems,
    derive_seed,
    image_key,
    with_suffix,
)
from tttkit.evaluation.settings import DEFAULT_COVERAGE, DEFAULT_SPREAD
from tttkit.io import InputError, atomic_write_bytes, write_image

#: Mean share of the image the thesis's evaluation masks hide (§4.1).
THESIS_COVERAGE = 0.2886
# DEFAULT_COVERAGE (the thesis's, rounded) and DEFAULT_SPREAD (half-width of the uniform spread of
# per-image targets) are shared with the command line.
#: Half-width of the band a mask's area must land in around its own target.
TOLERANCE = 0.01
#: The file listing how the masks of a folder were made.
MANIFEST = "masks.json"


def simulate_mask(
    key: str,
    seed: int,
    size: int,
    coverage: float = DEFAULT_COVERAGE,
    spread: float = DEFAULT_SPREAD,
) -> Tensor:
    """The simulated user mask of image ``key``: ``(1, size, size)``, 1 at the holes.

    Args:
        key: the image's key (its path relative to the images folder).
        seed: the run seed.
        size: side of the square mask (the evaluation's working size).
        coverage: mean fraction of the image hidden over many images.
        spread: per-image targets are uniform in ``coverage ± spread`` (clipped to 2%–85%).
    """
    if not 0.0 < coverage < 0.9:
        raise InputError(f"--coverage must lie in (0, 0.9), got {coverage}")
    generator = torch.Generator().manual_seed(derive_seed(seed, "user-mask", key))
    offset = (float(torch.rand((), generator=generator)) * 2 - 1) * spread
    target = min(max(coverage + offset, 0.02 + TOLERANCE), 0.85)
    strokes = free_form_masks(alpha=target - TOLERANCE, beta=target + TOLERANCE, max_tries=1000)
    empty = torch.zeros(1, 1, size, size)
    return strokes(empty, empty, generator)[0]


@dataclass(frozen=True)
class MaskSet:
    """What :func:`make_masks` wrote."""

    paths: list[Path]
    coverages: list[float]

    @property
    def mean_coverage(self) -> float:
        """Mean hidden fraction over the masks."""
        return sum(self.coverages) / max(1, len(self.coverages))


def make_masks(
    images: Sequence[Path],
    root: Path,
    out: Path,
    seed: int,
    size: int,
    coverage: float = DEFAULT_COVERAGE,
    spread: float = DEFAULT_SPREAD,
) -> MaskSet:
    """Write one PNG mask per image to ``out`` (``<key stem>.png``, white = hole) and a manifest.

    Args:
        images: image files, all under ``root``.
        root: the images folder (keys are relative to it).
        out: the masks folder (created).
        seed: the run seed.
        size: mask side in pixels.
        coverage: mean hidden fraction.
        spread: spread of per-image targets.
    """
    check_outside(out, root, "--out")
    keys = [image_key(p, root) for p in images]
    check_unique_stems(keys, root)
    paths, coverages = [], []
    for key in keys:
        mask = simulate_mask(key, seed, size, coverage, spread)
        path = out / with_suffix(key, ".png")
        write_image(path, mask)
        paths.append(path)
        coverages.append(float(mask.mean()))
    listed = {with_suffix(k, ".png"): round(c, 6) for k, c in zip(keys, coverages, strict=True)}
    manifest = {"seed": seed, "size": size, "coverage": coverage, "spread": spread, "masks": listed}
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(out / MANIFEST, (json.dumps(manifest, indent=2) + "\n").encode())
    return MaskSet(paths, coverages)
