"""Figures of a report (matplotlib, Agg backend): curves, histograms, visual grids.

* curves — % improvement over the step-0 score against the finetuning step, one line per
  strategy, one panel per metric (thesis Fig. 4.2–4.12);
* histograms — per-image % improvement at the last step, one panel per per-image metric
  (Fig. 4.15); the 1% most extreme values on each side are clipped into the end bins, as the
  thesis clips its outliers;
* grids — masked input / raw backbone / finetuned / original for chosen images.

Figures are drawn on matplotlib's Agg canvas directly, without pyplot, so making a report never
changes the backend or the global state of a program that imports tttkit.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from tttkit.evaluation.aggregate import IMAGE_METRICS, Curve, label, per_image_improvements
from tttkit.evaluation.results import Record


def _figure(width: float, height: float) -> Figure:
    figure = Figure(figsize=(width, height))
    FigureCanvasAgg(figure)
    return figure


def _panels(count: int) -> tuple[Figure, list[Axes]]:
    columns = min(3, max(1, count))
    rows = math.ceil(max(1, count) / columns)
    figure = _figure(5 * columns, 3.6 * rows)
    axes = figure.subplots(rows, columns, squeeze=False)
    flat = list(axes.ravel())
    for extra in flat[count:]:
        extra.axis("off")
    return figure, flat[:count]


def plot_curves(curves: Mapping[str, Curve], metrics: Sequence[str], path: Path) -> None:
    """% improvement vs step for every TTT strategy, one panel per metric."""
    ttt = [c for c in curves.values() if c.kind == "ttt"]
    figure, axes = _panels(len(metrics))
    for ax, metric in zip(axes, metrics, strict=True):
        for curve in ttt:
            if metric in curve.values:
                ax.plot(
                    curve.steps,
                    curve.improvements(metric),
                    marker="." if len(curve.steps) < 40 else None,
                    label=curve.strategy,
                )
        ax.axhline(0.0, color="0.6", linewidth=0.8)
        ax.set_title(label(metric))
        ax.set_xlabel("finetuning step")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel("improvement over step 0 (%)")
        ax.grid(alpha=0.3)
    if ttt and axes:
        handles, names = axes[0].get_legend_handles_labels()
        figure.legend(handles, names, loc="lower center", ncol=min(6, len(names)), frameon=False)
    figure.tight_layout(rect=(0, 0.06 if ttt else 0, 1, 1))
    figure.savefig(path, dpi=110)


def plot_histograms(
    records: Sequence[Record], strategies: Sequence[str], metrics: Sequence[str], path: Path
) -> None:
    """Per-image improvement at the last step (horizontal histograms, Fig. 4.15)."""
    metrics = [m for m in metrics if m in IMAGE_METRICS]
    figure, axes = _panels(len(metrics))
    for ax, metric in zip(axes, metrics, strict=True):
        gains = {s: per_image_improvements(records, s, metric) for s in strategies}
        pooled = np.concatenate([g for g in gains.values() if g.size] or [np.zeros(0)])
        if pooled.size:
            low, high = (
                np.percentile(pooled, [1, 99])
                if pooled.size >= 20
                else (pooled.min(), pooled.max())
            )
            if low == high:
                low, high = low - 1, high + 1
            bins = np.linspace(low, high, 31)
            for strategy, values in gains.items():
                if values.size:
                    ax.hist(
                        np.clip(values, low, high),
                        bins=bins,
                        orientation="horizontal",
                        histtype="step",
                        linewidth=1.5,
                        label=f"{strategy} (n={values.size})",
                    )
            ax.legend(fontsize="small")
        ax.axhline(0.0, color="0.6", linewidth=0.8)
        ax.set_title(label(metric))
        ax.set_xlabel("images")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel("improvement at the last step (%)")
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def _read_rgb(path: Path) -> np.ndarray:
    from tttkit.io import read_image

    return read_image(path).numpy().transpose(1, 2, 0)


def plot_grid(
    rows: Sequence[tuple[str, str]],
    strategy: str,
    paths: Mapping[str, Mapping[str, Path]],
    path: Path,
) -> None:
    """Masked input / raw / finetuned / original, one row per image.

    Args:
        rows: ``(image key, row caption)`` in display order.
        strategy: the finetuned strategy shown.
        paths: ``key → {"original", "mask", "raw", "finetuned"} → file``.
        path: the PNG to write.
    """
    columns = ("masked input", "raw backbone", strategy, "original")
    figure = _figure(9, 2.35 * len(rows))
    axes = figure.subplots(len(rows), 4, squeeze=False)
    for r, (key, caption) in enumerate(rows):
        files = paths[key]
        original = _read_rgb(files["original"])
        hole = _read_rgb(files["mask"])[..., :1] > 0.5
        masked = np.where(hole, 1.0, original)  # holes shown white
        images = (masked, _read_rgb(files["raw"]), _read_rgb(files["finetuned"]), original)
        for c, image in enumerate(images):
            ax = axes[r][c]
            ax.imshow(np.clip(image, 0, 1), interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(columns[c], fontsize="small")
        axes[r][0].set_ylabel(caption, fontsize="x-small")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
