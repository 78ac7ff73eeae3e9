"""From per-image records to the numbers of the thesis's figures and tables (chapter 4).

* A strategy's **score** at step t is the mean of a per-image metric over its images (or, for a
  set metric such as FID, the score of the whole set at step t).
* Its **% improvement** at step t is measured against its step-0 score, the raw backbone's
  output: ``(new − old) / old`` for higher-is-better metrics (PSNR, SSIM) and
  ``(old − new) / old`` for lower-is-better ones (L1, L1 in the holes, FID), times 100 — so
  positive is always better. As in the thesis this is the improvement *of the mean*, not the
  mean of per-image improvements (those are the histograms, Fig. 4.15).
* Reference rows have only step 0; their improvement is measured against the ``none`` row (the
  raw backbone) on the same images, so they rank on the same scale as the TTT strategies.
* A run that stopped early (a strategy with ``early_stop``) keeps its last output: its last
  evaluation counts for every later step (:func:`carry_forward`), so every point of a curve
  averages the same images.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tttkit.evaluation.references import NONE
from tttkit.evaluation.results import Record
from tttkit.metrics import LOWER_IS_BETTER

#: Per-image metrics, in table order (a run has LPIPS under one of its two names, or neither).
IMAGE_METRICS: tuple[str, ...] = (
    "l1", "psnr", "ssim", "l1_hole", "lpips", "lpips_alt", "haarpsi", "gmsd",
)  # fmt: skip
#: Display names.
LABELS: dict[str, str] = {
    "l1": "L1", "psnr": "PSNR", "ssim": "SSIM", "l1_hole": "L1 (holes)", "lpips": "LPIPS",
    "lpips_alt": "LPIPS-alt", "haarpsi": "HaarPSI", "gmsd": "GMSD",
}  # fmt: skip


def lower_is_better(metric: str) -> bool:
    """Whether a smaller value of ``metric`` is better (L1s and every FID variant)."""
    return metric in LOWER_IS_BETTER or metric.upper().startswith("FID")


def label(metric: str) -> str:
    """Display name of a metric."""
    return LABELS.get(metric, metric)


def improvement(old: float, new: float, metric: str) -> float:
    """% improvement from ``old`` to ``new`` (positive = better); NaN when undefined."""
    if not (math.isfinite(old) and math.isfinite(new)) or old == 0:
        return math.nan
    change = (old - new) / old if lower_is_better(metric) else (new - old) / old
    return 100.0 * change


@dataclass
class Curve:
    """One strategy's scores over its evaluation steps.

    Attributes:
        strategy: the row's name.
        kind: ``"ttt"`` or ``"reference"``.
        steps: evaluation steps, ascending (``[0]`` for references).
        values: ``metric → score per step``.
        images: ``metric → number of images per step`` (for FID: of the set).
        base: ``metric → the score improvements are measured against``.
    """

    strategy: str
    kind: str
    steps: list[int]
    values: dict[str, list[float]] = field(default_factory=dict)
    images: dict[str, list[int]] = field(default_factory=dict)
    base: dict[str, float] = field(default_factory=dict)

    @property
    def last_step(self) -> int:
        """The last evaluation step."""
        return self.steps[-1]

    def improvements(self, metric: str) -> list[float]:
        """% improvement over the base at every step."""
        base = self.base.get(metric, math.nan)
        return [improvement(base, v, metric) for v in self.values.get(metric, [])]

    def last(self, metric: str) -> float:
        """Score at the last step (NaN if missing)."""
        values = self.values.get(metric) or [math.nan]
        return values[-1]


def carry_forward(evaluated: Sequence[int], steps: Sequence[int]) -> list[int]:
    """For each of ``steps``, the index in ``evaluated`` (ascending) of the latest step ≤ it."""
    indices, current = [], 0
    for step in steps:
        while current + 1 < len(evaluated) and evaluated[current + 1] <= step:
            current += 1
        indices.append(current)
    return indices


def _step_means(
    records: Sequence[Record], metric: str, steps: Sequence[int]
) -> dict[int, list[float]]:
    by_step: dict[int, list[float]] = {}
    for record in records:
        evaluations = record["evaluations"]
        indices = carry_forward([e["step"] for e in evaluations], steps)
        for step, index in zip(steps, indices, strict=True):
            if metric in evaluations[index]:
                by_step.setdefault(step, []).append(float(evaluations[index][metric]))
    return by_step


def build_curves(
    records: Sequence[Record],
    set_metrics: Mapping[str, Any] | None = None,
    order: Sequence[str] | None = None,
) -> dict[str, Curve]:
    """Curves of every strategy in ``records`` (ordered by ``order``, then by name)."""
    by_row: dict[str, list[Record]] = {}
    for record in records:
        by_row.setdefault(record["strategy"], []).append(record)
    names = [n for n in (order or []) if n in by_row] + sorted(set(by_row) - set(order or []))
    none_step0 = {r["image"]: r["evaluations"][0] for r in by_row.get(NONE, []) if r["evaluations"]}
    set_metric = set_metrics.get("metric") if set_metrics else None
    curves: dict[str, Curve] = {}
    for name in names:
        rows = by_row[name]
        kind = rows[0].get("kind", "ttt")
        steps = sorted({e["step"] for r in rows for e in r["evaluations"]})
        curve = Curve(name, kind, steps)
        for metric in IMAGE_METRICS:
            by_step = _step_means(rows, metric, steps)
            curve.values[metric] = [float(np.mean(by_step.get(s, [math.nan]))) for s in steps]
            curve.images[metric] = [len(by_step.get(s, [])) for s in steps]
            if kind == "reference" and name != NONE:
                # the raw backbone on this row's images
                base = [
                    none_step0[r["image"]][metric]
                    for r in rows
                    if metric in none_step0.get(r["image"], {})
                ]
                curve.base[metric] = float(np.mean(base)) if base else math.nan
            else:
                curve.base[metric] = curve.values[metric][0]
        if set_metric:
            values = set_metrics["values"].get(name, {})  # type: ignore[index]
            counts = set_metrics["images"].get(name, {})  # type: ignore[index]
            curve.values[set_metric] = [values.get(str(s), math.nan) for s in steps]
            curve.images[set_metric] = [counts.get(str(s), 0) for s in steps]
            if kind == "reference" and name != NONE:
                none_fid = set_metrics["values"].get(NONE, {})  # type: ignore[index]
                curve.base[set_metric] = none_fid.get("0", math.nan)
            else:
                curve.base[set_metric] = curve.values[set_metric][0]
        curves[name] = curve
    return curves


def metrics_of(curves: Mapping[str, Curve]) -> list[str]:
    """The metrics present, per-image ones first, then set metrics."""
    present: list[str] = []
    for curve in curves.values():
        for metric in curve.values:
            if metric not in present and any(math.isfinite(v) for v in curve.values[metric]):
                present.append(metric)
    return [m for m in IMAGE_METRICS if m in present] + [m for m in present if m not in LABELS]


@dataclass(frozen=True)
class Ranked:
    """One cell of a ranking table: a strategy's standing on one metric at its last step."""

    rank: int
    strategy: str
    kind: str
    last_step: int
    images: int
    base: float
    value: float
    improvement: float


def ranking(curves: Mapping[str, Curve], metric: str) -> list[Ranked]:
    """Strategies by % improvement at their last step, best first (thesis Table 4.1)."""
    rows = []
    for curve in curves.values():
        if metric not in curve.values:
            continue
        gain = curve.improvements(metric)[-1]
        images = curve.images[metric][-1]
        rows.append((curve, gain, images))
    rows.sort(key=lambda item: -item[1] if math.isfinite(item[1]) else math.inf)  # NaN last
    return [
        Ranked(i + 1, c.strategy, c.kind, c.last_step, n, c.base[metric], c.last(metric), g)
        for i, (c, g, n) in enumerate(rows)
    ]


def per_image_improvements(records: Sequence[Record], strategy: str, metric: str) -> np.ndarray:
    """% improvement of each image from step 0 to the last step (for the histograms)."""
    gains = []
    for record in records:
        evaluations = record["evaluations"]
        if record["strategy"] != strategy or len(evaluations) < 2:
            continue
        first, last = evaluations[0].get(metric), evaluations[-1].get(metric)
        if first is not None and last is not None:
            gains.append(improvement(float(first), float(last), metric))
    array = np.asarray(gains, dtype=np.float64)
    return array[np.isfinite(array)]
