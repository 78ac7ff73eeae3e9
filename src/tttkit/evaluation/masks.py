"""Simulated user masks for evaluation: one mask per image, fixed once (``tttkit masks``).

The kind of mask is a registered *evaluation-mask kind* (``tttkit list eval-masks``; plugins add
theirs with ``tttkit_register_eval_masks``). The default, ``thesis``, is thesis §4.1: the thesis
draws one random mask per image at the start and reuses it in every experiment; its masks hide
28.86% of the image on average. Each mask is drawn with the brush strokes of thesis Algorithm 1
(:class:`tttkit_strategies.finetune_masks.FreeFormMasks`) until its area lies within ±1 point of
a per-image target, and the targets are spread uniformly over ``coverage ± spread``, so masks
vary in size like a user's while their mean stays near ``coverage`` (measured: within about one
point over a few dozen images). ``lama-thin``, ``lama-medium`` and ``lama-thick`` are the masks
LaMa evaluates with (:mod:`tttkit_strategies.eval_masks`).

Each mask depends only on the run seed, the image key, the size, the kind and its settings —
never on the image's content or on which other images exist — so adding photos to a folder
leaves the existing masks unchanged.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from tttkit.components import EvalMaskKind
from tttkit.errors import PluginContractError
from tttkit.evaluation.layout import (
    check_outside,
    check_unique_stems,
    derive_seed,
    image_key,
    with_suffix,
)
from tttkit.evaluation.settings import DEFAULT_COVERAGE, DEFAULT_SPREAD
from tttkit.io import InputError, atomic_write_bytes, write_image
from tttkit.plugins import PluginHost, get_host
from tttkit.registry import close_matches, factory_parameters

#: Mean share of the image the thesis's evaluation masks hide (§4.1).
THESIS_COVERAGE = 0.2886
# DEFAULT_COVERAGE (the thesis's, rounded) and DEFAULT_SPREAD (half-width of the uniform spread of
# per-image targets) are shared with the command line.
#: The file listing how the masks of a folder were made.
MANIFEST = "masks.json"
#: The kind ``tttkit masks`` draws unless told otherwise: the thesis's.
DEFAULT_KIND = "thesis"


def mask_kind(
    kind: str, params: Mapping[str, Any] | None = None, host: PluginHost | None = None
) -> EvalMaskKind:
    """The registered evaluation-mask kind ``kind`` built with ``params``.

    Errors name the command-line option: ``--kind`` for an unknown kind (with the closest
    names), ``--coverage`` and the like for a setting the kind does not take.
    """
    registry = (host or get_host()).registry("eval-masks")
    if kind not in registry:
        suggestions = close_matches(kind, registry.names())
        hint = (
            f" — did you mean {suggestions[0]!r}?"
            if suggestions
            else f" (kinds: {', '.join(registry.names())})"
        )
        raise InputError(f"--kind {kind}: unknown evaluation-mask kind{hint}")
    factory = registry.get(kind)
    accepted = factory_parameters(factory)
    for name in params or {}:
        if name not in accepted:
            takes = f"it takes {', '.join(accepted)}" if accepted else "it has no settings"
            option = "--" + name.replace("_", "-")
            raise InputError(f"{option} does not apply to --kind {kind} ({takes})")
    return factory(**dict(params or {}))  # type: ignore[no-any-return]


def draw_mask(kind: str, shape: EvalMaskKind, key: str, seed: int, size: int) -> Tensor:
    """The mask of image ``key``: ``(1, size, size)``, 1 at the holes, drawn by ``shape`` (the
    kind ``kind`` built by :func:`mask_kind`) from a generator seeded by the run seed and the
    key (and the kind's name, for kinds other than the thesis's, whose masks keep the seeds they
    had before kinds existed)."""
    names = ("user-mask", key) if kind == DEFAULT_KIND else ("user-mask", kind, key)
    generator = torch.Generator().manual_seed(derive_seed(seed, *names))
    with get_host().naming_failures():  # a plugin's exception names the plugin
        mask = shape(size, generator)
    if (
        not isinstance(mask, Tensor)
        or tuple(mask.shape) != (1, size, size)
        or not bool(((mask == 0) | (mask == 1)).all())
        or not bool(mask.any())
    ):
        got = tuple(mask.shape) if isinstance(mask, Tensor) else type(mask).__name__
        raise PluginContractError(
            f"evaluation-mask kind {kind!r} must return a (1, {size}, {size}) tensor of 0/1 "
            f"with at least one hole; got {got}"
        )
    return mask.float()


def simulate_mask(
    key: str,
    seed: int,
    size: int,
    coverage: float = DEFAULT_COVERAGE,
    spread: float = DEFAULT_SPREAD,
) -> Tensor:
    """The thesis's simulated user mask of image ``key``: ``(1, size, size)``, 1 at the holes.

    Args:
        key: the image's key (its path relative to the images folder).
        seed: the run seed.
        size: side of the square mask (the evaluation's working size).
        coverage: mean fraction of the image hidden over many images.
        spread: per-image targets are uniform in ``coverage ± spread`` (clipped to 2%–85%).
    """
    shape = mask_kind(DEFAULT_KIND, {"coverage": coverage, "spread": spread})
    return draw_mask(DEFAULT_KIND, shape, key, seed, size)


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
    coverage: float | None = None,
    spread: float | None = None,
    kind: str = DEFAULT_KIND,
) -> MaskSet:
    """Write one PNG mask per image to ``out`` (``<key stem>.png``, white = hole) and a manifest.

    Args:
        images: image files, all under ``root``.
        root: the images folder (keys are relative to it).
        out: the masks folder (created).
        seed: the run seed.
        size: mask side in pixels.
        coverage: mean hidden fraction (kinds that take one; ``None``: the kind's default).
        spread: spread of per-image targets (likewise).
        kind: the registered evaluation-mask kind (``tttkit list eval-masks``).
    """
    settings = {"coverage": coverage, "spread": spread}
    params = {name: value for name, value in settings.items() if value is not None}
    shape = mask_kind(kind, params)  # an unknown kind or setting fails before any file is written
    check_outside(out, root, "--out")
    keys = [image_key(p, root) for p in images]
    check_unique_stems(keys, root)
    paths, coverages = [], []
    for key in keys:
        mask = draw_mask(kind, shape, key, seed, size)
        path = out / with_suffix(key, ".png")
        write_image(path, mask)
        paths.append(path)
        coverages.append(float(mask.mean()))
    listed = {with_suffix(k, ".png"): round(c, 6) for k, c in zip(keys, coverages, strict=True)}
    recorded = {name: getattr(shape, name) for name in settings if hasattr(shape, name)}
    manifest = {"seed": seed, "size": size, "kind": kind, **recorded, "masks": listed}
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(out / MANIFEST, (json.dumps(manifest, indent=2) + "\n").encode())
    return MaskSet(paths, coverages)
