"""``tttkit report``: the figures and tables of thesis chapter 4 for one evaluation run.

Writes into the output folder (default ``RUN/report``):

* ``curves.png`` — % improvement over step 0 vs step, one panel per metric;
* ``histograms.png`` — per-image improvement at the last step;
* ``grid-<strategy>.png`` — masked input / raw / finetuned / original;
* ``ranking.md`` and ``ranking.csv`` — per metric, strategies best first (Table 4.1);
* ``scores.csv`` — every score at every step;
* ``report.md`` and ``report.html`` (self-contained: the PNGs are embedded as base64).
"""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tttkit.evaluation import figures, tables
from tttkit.evaluation.aggregate import (
    Curve,
    build_curves,
    label,
    metrics_of,
    per_image_improvements,
)
from tttkit.evaluation.layout import RunLayout
from tttkit.evaluation.references import NONE
from tttkit.evaluation.results import Record, load_records, sort_records
from tttkit.evaluation.set_metrics import load_set_metrics
from tttkit.evaluation.settings import DEFAULT_GRID_COUNT
from tttkit.io import InputError, atomic_write_bytes


@dataclass
class Report:
    """What :func:`write_report` produced.

    Attributes:
        files: every file written, by file name (``"report.html"``, ``"grid-default.png"`` …).
        curves: the aggregated scores.
        metrics: metrics in table order.
        ranking_markdown: the ranking table as Markdown.
        notes: remarks worth showing the reader (noisy FID, missing rows…).
    """

    files: dict[str, Path]
    curves: dict[str, Curve]
    metrics: list[str]
    ranking_markdown: str
    notes: list[str] = field(default_factory=list)


def load_run(run: Path) -> tuple[dict[str, Any], list[Record]]:
    """``run.json`` and the records of an evaluation run."""
    layout = RunLayout(run)
    if not layout.settings.is_file():
        raise InputError(f"{run} is not an evaluation run (no run.json); see `tttkit eval`")
    settings = layout.read_settings()
    records = sort_records(load_records(layout), settings.get("order"))
    if not records:
        raise InputError(f"{run} has no finished results yet")
    return settings, records


def _grid_choice(
    records: Sequence[Record], strategy: str, chosen: Sequence[str], count: int, metric: str
) -> list[tuple[str, str]]:
    """``(image, caption)`` rows: the chosen images, else the ``count`` best and worst."""
    gains = {}
    for record in records:
        if record["strategy"] == strategy and len(record["evaluations"]) >= 2:
            one = per_image_improvements([record], strategy, metric)
            gains[record["image"]] = float(one[0]) if one.size else float("nan")
    if chosen:
        unknown = [k for k in chosen if k not in gains]
        if unknown:
            raise InputError(f"--grid-image {unknown[0]}: no results for it with {strategy}")
        keys = list(chosen)
    else:
        ordered = sorted((k for k in gains if math.isfinite(gains[k])), key=lambda k: -gains[k])
        best = ordered[:count]
        worst = [k for k in ordered[::-1][:count] if k not in best][::-1]
        keys = best + worst
    return [
        (k, f"{k}\n{label(metric)} {tables.fmt_gain(gains.get(k, float('nan')))}") for k in keys
    ]


def _embed(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode()
    return f'<img alt="{html.escape(path.name)}" src="data:image/png;base64,{data}">'


def write_report(
    run: Path,
    out: Path | None = None,
    *,
    grid_images: Sequence[str] = (),
    grid_count: int = DEFAULT_GRID_COUNT,
    grid_metric: str = "l1",
) -> Report:
    """Write every figure and table of ``run`` into ``out`` (default ``run/report``)."""
    layout = RunLayout(run)
    settings, records = load_run(run)
    fid = settings.get("fid") or {}
    set_metrics = load_set_metrics(layout, records, fid.get("metric"))
    curves = build_curves(records, set_metrics, settings.get("order"))
    metrics = metrics_of(curves)
    if grid_metric not in metrics:
        raise InputError(f"--grid-metric {grid_metric}: not one of {', '.join(metrics)}")
    ttt = [c.strategy for c in curves.values() if c.kind == "ttt"]
    # Chosen before anything is written: an unknown --grid-image leaves no partial report.
    choices = {s: _grid_choice(records, s, grid_images, grid_count, grid_metric) for s in ttt}
    out = out or run / "report"
    out.mkdir(parents=True, exist_ok=True)
    files: dict[str, Path] = {}

    def text(name: str, content: str) -> None:
        atomic_write_bytes(out / name, content.encode())
        files[name] = out / name

    ranking_md = tables.markdown_table(
        tables.ranking_header(metrics), tables.ranking_rows(curves, metrics)
    )
    scores_md = tables.markdown_table(
        tables.score_header(metrics), tables.score_rows(curves, metrics)
    )
    text("ranking.md", ranking_md)
    text("ranking.csv", tables.ranking_csv(curves, metrics))
    text("scores.csv", tables.curves_csv(curves))

    files["curves.png"] = out / "curves.png"
    figures.plot_curves(curves, metrics, files["curves.png"])
    files["histograms.png"] = out / "histograms.png"
    figures.plot_histograms(records, ttt, metrics, files["histograms.png"])
    grids: dict[str, Path] = {}
    for strategy in ttt:
        rows = choices[strategy]
        paths = {
            key: {
                "original": layout.original(key), "mask": layout.mask(key),
                "raw": layout.output(NONE, key), "finetuned": layout.output(strategy, key),
            }
            for key, _ in rows
        }  # fmt: skip
        rows = [(k, c) for k, c in rows if all(p.is_file() for p in paths[k].values())]
        if rows:
            grid = out / f"grid-{strategy}.png"
            figures.plot_grid(rows, strategy, paths, grid)
            files[grid.name] = grids[strategy] = grid

    notes = _notes(settings, records)
    text("report.md", _markdown(settings, records, ranking_md, scores_md, files, notes))
    text("report.html", _html(settings, records, curves, metrics, files, grids, notes))
    return Report(files, curves, metrics, ranking_md, notes)


def _notes(settings: dict[str, Any], records: Sequence[Record]) -> list[str]:
    notes = [
        "Improvement is over each strategy's step-0 score (the raw backbone); lower-is-better "
        "metrics use (old − new) / old. Reference rows (in italics) are compared with the raw "
        "backbone (`none`) on the same images.",
    ]
    fid = settings.get("fid")
    if fid is None:
        notes.append("No set metric: neither Inception-v3 nor VGG weights were available.")
    else:
        images = len({r["image"] for r in records})
        if fid["metric"] != "FID":
            notes.append(
                f"{fid['metric']} is a Fréchet distance on {fid['arch']} features (Inception-v3 "
                "weights were not available): compare it only within this run, never with "
                "published FIDs."
            )
        if images < 2 * int(fid["dims"]):
            notes.append(
                f"{fid['metric']} is computed from {images} images for {fid['dims']}-d features: "
                "it is noisy and biased upwards; small differences between strategies are not "
                "meaningful."
            )
    notes += _lpips_notes(settings.get("lpips"))
    return notes


def _lpips_notes(lpips: dict[str, Any] | None) -> list[str]:
    """What the perceptual columns are, and when LPIPS is not the papers' LPIPS."""
    notes = [
        "HaarPSI (higher is better) and GMSD (lower is better) are weight-free perceptual "
        "measures: nothing in tttkit trains on them."
    ]
    if lpips is None:
        notes.append("No LPIPS: no VGG16 trunk was available (`tttkit eval --lpips-weights`).")
    elif lpips["metric"] != "lpips":
        notes.append(
            "LPIPS-alt is LPIPS's v0.1 heads on a VGG16 trunk other than torchvision's "
            f"({Path(lpips['trunk']).name}): compare it only between runs with the same trunk, "
            "never with published LPIPS. A network trained with a perceptual loss on the same "
            "trunk is partly judged by what it optimised."
        )
    return notes


def _settings_lines(settings: dict[str, Any], records: Sequence[Record]) -> list[str]:
    rows = settings.get("rows", {})
    strategies = [n for n in settings.get("order", []) if rows.get(n, {}).get("kind") == "ttt"]
    steps = {n: rows[n]["strategy"]["steps"] for n in strategies}
    fid = settings.get("fid") or {}
    return [
        f"images: {len({r['image'] for r in records})} at {settings['size']}×{settings['size']} "
        f"({settings.get('preprocess', '')})",
        "strategies: " + ", ".join(f"{n} ({steps[n]} steps)" for n in strategies),
        f"seed: {settings['seed']}; set metric: {fid.get('metric', 'none')}",
    ]


def _markdown(
    settings: dict[str, Any],
    records: Sequence[Record],
    ranking_md: str,
    scores_md: str,
    files: dict[str, Path],
    notes: list[str],
) -> str:
    lines = ["# Evaluation report", ""]
    lines += [f"- {line}" for line in _settings_lines(settings, records)] + [""]
    lines += ["## Ranking (improvement at the last step)", "", ranking_md]
    lines += ["## Scores at the last step", "", scores_md]
    lines += [f"> {note}" for note in notes] + [""]
    for name in files:
        if name.endswith(".png"):
            lines += [f"![{name}]({name})", ""]
    return "\n".join(lines)


_CSS = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: left; }
th { background: #f3f3f3; } img { max-width: 100%; } .note { color: #555; font-size: 0.9em; }
"""


def _html(
    settings: dict[str, Any],
    records: Sequence[Record],
    curves: dict[str, Curve],
    metrics: list[str],
    files: dict[str, Path],
    grids: dict[str, Path],
    notes: list[str],
) -> str:
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>tttkit evaluation</title>",
        f"<style>{_CSS}</style></head><body><h1>Evaluation report</h1><ul>",
        *[f"<li>{html.escape(line)}</li>" for line in _settings_lines(settings, records)],
        "</ul><h2>Ranking (improvement at the last step)</h2>",
        tables.html_table(tables.ranking_header(metrics), tables.ranking_rows(curves, metrics)),
        "<h2>Scores at the last step</h2>",
        tables.html_table(tables.score_header(metrics), tables.score_rows(curves, metrics)),
        *[f"<p class='note'>{html.escape(note)}</p>" for note in notes],
        "<h2>Improvement over step 0</h2>", _embed(files["curves.png"]),
        "<h2>Per-image improvement at the last step</h2>", _embed(files["histograms.png"]),
    ]  # fmt: skip
    for strategy, path in grids.items():
        parts += [f"<h2>Examples: {html.escape(strategy)}</h2>", _embed(path)]
    parts.append("</body></html>")
    return "\n".join(parts)
