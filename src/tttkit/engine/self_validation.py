"""Self-validation: a held-out piece of the user's own image that tells whether TTT helps.

Without ground truth no one knows whether finetuning improved the fill of the user's holes U
(thesis §4.7.2: for some images it does not). A validation area V is carved from the known
context, shaped like U (U moved, flipped or turned) and kept away from it. During the run V is
treated exactly like U — placeholder content, never a training target, never a finetuning mask —
so its true pixels stay unseen; at every evaluation step the network fills U ∪ V and its error
on V scores that step. The step-0 score is the raw network's.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from tttkit.components import MaskSamplingError
from tttkit.config import SELECTIONS
from tttkit.imageops import dilate, shift_without_wrap


def validation_area(
    user_mask: Tensor,
    generator: torch.Generator,
    *,
    margin: int,
    max_fraction: float = 0.1,
    copies: int = 1,
    tries: int = 64,
) -> Tensor:
    """Draw V for a user mask ``(1, 1, H, W)``: moved copies of U in the known region.

    Each copy is flipped/turned at random and translated so that it does not come within
    ``2·margin`` pixels of U or of the copies before it. ``copies`` copies share ``max_fraction``
    of the image: if U is larger than its share, a copy is cut to a window of about that area
    around its centre, so V never eats most of the context. Several copies spread V over more
    of the image's content, which steadies its score. A copy that finds no room away from U and
    the copies before it is left out (V then has fewer copies).

    Raises:
        MaskSamplingError: no placement keeps V away from U (the known region is too small).
    """
    if copies < 1:
        raise ValueError(f"copies must be at least 1, got {copies}")
    shape = _shrink(user_mask, max_fraction / copies)
    area = torch.zeros_like(user_mask)
    for _ in range(copies):
        keep_out = dilate(torch.maximum(user_mask, area), 2 * max(margin, 1))
        placed = _place(shape, keep_out, generator, tries)
        if placed is None:
            break
        area = torch.maximum(area, placed)
    if area.sum() == 0:
        raise MaskSamplingError("no room for a validation area away from the holes")
    return area


def _place(
    shape: Tensor, keep_out: Tensor, generator: torch.Generator, tries: int
) -> Tensor | None:
    """``shape`` flipped and moved at random outside ``keep_out``: the first placement keeping
    half its area, else the largest one found (``None`` if none keeps any)."""
    height, width = shape.shape[-2:]
    best, best_area = None, 0.0
    for _ in range(tries):
        candidate = shape
        flips = torch.rand(2, generator=generator)
        if flips[0] < 0.5:
            candidate = candidate.flip(-1)
        if flips[1] < 0.5:
            candidate = candidate.flip(-2)
        dy = int(torch.randint(-height + 1, height, (1,), generator=generator))
        dx = int(torch.randint(-width + 1, width, (1,), generator=generator))
        candidate = shift_without_wrap(candidate, dy, dx) * (1 - keep_out)
        area = float(candidate.sum())
        if area >= 0.5 * float(shape.sum()):
            return candidate
        if area > best_area:
            best, best_area = candidate, area
    return best


def _shrink(mask: Tensor, max_fraction: float) -> Tensor:
    """Keep at most ``max_fraction`` of the image of ``mask``: a window around its centroid."""
    height, width = mask.shape[-2:]
    if float(mask.mean()) <= max_fraction:
        return mask
    ys, xs = torch.nonzero(mask[0, 0], as_tuple=True)
    cy, cx = int(ys.float().mean()), int(xs.float().mean())
    scale = (max_fraction / float(mask.mean())) ** 0.5
    while True:  # the mask may fill its window more densely than on average: shrink until small
        half_h, half_w = max(1, int(height * scale / 2)), max(1, int(width * scale / 2))
        window = torch.zeros_like(mask)
        window[..., max(0, cy - half_h) : cy + half_h, max(0, cx - half_w) : cx + half_w] = 1
        shrunk = mask * window
        if float(shrunk.mean()) <= max_fraction or half_h == half_w == 1:
            return shrunk if shrunk.sum() > 0 else window
        scale *= 0.8


def validation_score(completed: Tensor, image: Tensor, area: Tensor) -> float:
    """Mean absolute error of ``completed`` against ``image`` on ``area`` (lower is better)."""
    pixels = float(area.sum()) * image.shape[1]
    return float(((completed - image).abs() * area).sum()) / max(pixels, 1.0)


class Selector:
    """Keeps the output to return, by rule, while a run reports its evaluations.

    Args:
        rule: ``"best"`` (lowest validation score, step 0 included), ``"last"`` or ``"raw"``.
        patience: stop after this many evaluations without a better score (0: never).
    """

    def __init__(self, rule: str, patience: int = 0) -> None:
        if rule not in SELECTIONS:
            raise ValueError(f"select must be one of {', '.join(SELECTIONS)}, got {rule!r}")
        self.rule, self.patience = rule, patience
        self.scores: list[tuple[int, float]] = []
        self.outputs: dict[str, tuple[int, Tensor]] = {}
        self._best_score = float("inf")
        self._since_best = 0

    def observe(self, step: int, completed: Tensor, score: float | None) -> None:
        """Record the completed image of an evaluation step and its validation score."""
        if step == 0:
            self.outputs["raw"] = (0, completed)
        self.outputs["last"] = (step, completed)
        if score is None:
            return
        self.scores.append((step, score))
        if score < self._best_score:
            self._best_score, self._since_best = score, 0
            self.outputs["best"] = (step, completed)
        else:
            self._since_best += 1

    def should_stop(self) -> bool:
        """Whether the validation score has stopped improving for ``patience`` evaluations."""
        return self.patience > 0 and self._since_best >= self.patience

    def chosen(self) -> tuple[int, Tensor]:
        """``(step, completed image)`` the rule picks."""
        return self.outputs.get(self.rule, self.outputs["last"])

    def report(self, stopped_at: int | None) -> Selection:
        """The decision so far."""
        return Selection(
            rule=self.rule,
            chosen_step=self.chosen()[0],
            validation=tuple(self.scores),
            stopped_early_at=stopped_at,
        )


@dataclass(frozen=True)
class Refit:
    """The second run of a refit strategy (``StrategySpec.refit``).

    Attributes:
        steps: how many steps it trained: the step the held-out run chose.
        held_out_evaluations: the held-out run's evaluations, ``{"step": …, **metrics}`` each
            (metrics only with a ground truth).
    """

    steps: int
    held_out_evaluations: tuple[dict[str, float], ...] = ()


@dataclass(frozen=True)
class Selection:
    """How a run's output was chosen (``Result.selection``).

    Attributes:
        rule: ``"best"``, ``"last"`` or ``"raw"`` (:data:`SELECTIONS`); ``"last"`` also when no
            validation area could be held out.
        chosen_step: the evaluation step whose fill was returned (0: the raw network).
        validation: ``(step, score)`` at every evaluation, lower is better; empty when no
            area was held out.
        stopped_early_at: the step at which early stopping ended the run (``None``: it ran to
            the end).
        refit: the rerun on the whole known region, for a refit strategy that chose a step > 0.
        diverged_at: the step at which the loss or the fill stopped being finite (the raw fill
            is then returned).
    """

    rule: str
    chosen_step: int
    validation: tuple[tuple[int, float], ...] = ()
    stopped_early_at: int | None = None
    refit: Refit | None = None
    diverged_at: int | None = None

    def replace(self, **changes: Any) -> Selection:
        """A copy with ``changes``."""
        return dataclasses.replace(self, **changes)

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly form; ``refit`` and ``diverged_at`` appear only when they happened."""
        out: dict[str, Any] = {
            "rule": self.rule,
            "chosen_step": self.chosen_step,
            "validation": [[step, score] for step, score in self.validation],
            "stopped_early_at": self.stopped_early_at,
        }
        if self.refit is not None:
            out["refit"] = {
                "steps": self.refit.steps,
                "held_out_evaluations": [dict(e) for e in self.refit.held_out_evaluations],
            }
        if self.diverged_at is not None:
            out["diverged_at"] = self.diverged_at
        return out
