"""Report tables: rankings like thesis Table 4.1 and per-strategy scores (Markdown, CSV, HTML)."""

from __future__ import annotations

import csv
import html
import io
import math
from collections.abc import Mapping, Sequence

from tttkit.evaluation.aggregate import Curve, label, lower_is_better, ranking


def fmt_value(value: float) -> str:
    """A score for a table: 4 decimals, 2 for large values (PSNR in dB stays readable)."""
    if not math.isfinite(value):
        return "–"
    return f"{value:.2f}" if abs(value) >= 100 else f"{value:.4f}"


def fmt_gain(gain: float) -> str:
    """A % improvement, signed with an ASCII minus (easy to parse back)."""
    return "–" if not math.isfinite(gain) else f"{gain:.2f}%"


def ranking_rows(curves: Mapping[str, Curve], metrics: Sequence[str]) -> list[list[str]]:
    """Cells of the ranking table: one column per metric, best strategy first.

    Reference rows are in italics (Markdown ``*name*``); their improvement is over the raw
    backbone (``none``).
    """
    columns = {m: ranking(curves, m) for m in metrics}
    depth = max((len(c) for c in columns.values()), default=0)
    rows = []
    for i in range(depth):
        cells = [str(i + 1)]
        for metric in metrics:
            if i >= len(columns[metric]):
                cells.append("")
                continue
            entry = columns[metric][i]
            name = f"*{entry.strategy}*" if entry.kind == "reference" else entry.strategy
            cells.append(f"{name} ({fmt_gain(entry.improvement)})")
        rows.append(cells)
    return rows


def ranking_header(metrics: Sequence[str]) -> list[str]:
    """Header of the ranking table; arrows say which way is better."""
    return ["rank", *[f"{label(m)} {'↓' if lower_is_better(m) else '↑'}" for m in metrics]]


def score_rows(curves: Mapping[str, Curve], metrics: Sequence[str]) -> list[list[str]]:
    """Cells of the scores table: each strategy's last-step score and % improvement."""
    rows = []
    for curve in curves.values():
        first_metric = metrics[0] if metrics else None
        images = curve.images[first_metric][-1] if first_metric else 0
        cells = [curve.strategy, curve.kind, str(images), str(curve.last_step)]
        for metric in metrics:
            if metric not in curve.values:
                cells.append("")
                continue
            gain = curve.improvements(metric)[-1]
            cells.append(f"{fmt_value(curve.last(metric))} ({fmt_gain(gain)})")
        rows.append(cells)
    return rows


def score_header(metrics: Sequence[str]) -> list[str]:
    """Header of the scores table."""
    return ["strategy", "kind", "images", "last step", *[label(m) for m in metrics]]


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A GitHub-flavoured Markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def html_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """An HTML table; Markdown italics (``*name*``) become ``<em>``."""

    def cell(text: str) -> str:
        escaped = html.escape(text)
        if escaped.startswith("*") and "* (" in escaped:
            name, rest = escaped[1:].split("* (", 1)
            return f"<em>{name}</em> ({rest}"
        return escaped

    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{cell(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def ranking_csv(curves: Mapping[str, Curve], metrics: Sequence[str]) -> str:
    """Long-format CSV of the rankings, full precision."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    fields = ["metric", "rank", "strategy", "kind", "images", "last_step", "base", "value"]
    writer.writerow([*fields, "improvement_pct"])
    for metric in metrics:
        for e in ranking(curves, metric):
            writer.writerow(
                [metric, e.rank, e.strategy, e.kind, e.images, e.last_step,
                 repr(e.base), repr(e.value), repr(e.improvement)]
            )  # fmt: skip
    return buffer.getvalue()


def curves_csv(curves: Mapping[str, Curve]) -> str:
    """Long-format CSV of every score at every step, full precision."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["strategy", "kind", "step", "metric", "images", "value", "improvement_pct"])
    for curve in curves.values():
        for metric, values in curve.values.items():
            gains = curve.improvements(metric)
            for i, step in enumerate(curve.steps):
                writer.writerow(
                    [curve.strategy, curve.kind, step, metric, curve.images[metric][i],
                     repr(values[i]), repr(gains[i])]
                )  # fmt: skip
    return buffer.getvalue()
