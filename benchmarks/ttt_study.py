"""Quality of test-time training against steps, and of self-validated selection, from eval runs.

Reads the ``results.jsonl`` of ``tttkit eval`` run folders (ground-truth metrics at every
evaluation step of every image) and prints tables, plus JSON with ``--json``.

    # hole L1 / PSNR of the returned output after k steps, and the time those steps took
    python benchmarks/ttt_study.py curve RUN [--strategy default]

    # fixed-step (a run with --set select=last) against self-validated selection (select=best):
    # share of images whose output is worse than the raw network's, and mean improvement
    python benchmarks/ttt_study.py selection --fixed RUN_LAST --best RUN_BEST [--strategy default]

Improvement of an image is ``(raw − output) / raw`` of its hole L1; "mean improvement" is the
mean of that over images, and "L1-mean improvement" compares the means of hole L1 instead.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path
from typing import Any


def load_rows(run: Path, strategy: str) -> dict[str, dict[str, Any]]:
    """The result records of ``strategy`` in ``run``, by image."""
    rows = {}
    for line in (run / "results.jsonl").read_text().splitlines():
        record = json.loads(line)
        if record["strategy"] == strategy:
            rows[record["image"]] = record
    if not rows:
        raise SystemExit(f"{run}/results.jsonl has no results for strategy {strategy!r}")
    return rows


def at_step(record: dict[str, Any], step: int, metric: str = "l1_hole") -> float:
    return next(e[metric] for e in record["evaluations"] if e["step"] == step)


def returned_step(record: dict[str, Any]) -> int:
    """The step whose output the run returned (the chosen one, or the last)."""
    selection = record.get("selection") or {}
    chosen = selection.get("chosen_step")
    return chosen if chosen is not None else record["evaluations"][-1]["step"]


def references(run: Path) -> dict[str, float]:
    """Mean hole L1 of the reference rows (raw network, OpenCV) in ``run``."""
    means: dict[str, list[float]] = {}
    for line in (run / "results.jsonl").read_text().splitlines():
        record = json.loads(line)
        if record["kind"] == "reference":
            means.setdefault(record["strategy"], []).append(at_step(record, 0))
    return {name: statistics.mean(values) for name, values in means.items()}


def curve(run: Path, strategy: str) -> dict[str, Any]:
    rows = load_rows(run, strategy)
    steps = sorted({e["step"] for r in rows.values() for e in r["evaluations"]})
    seconds_per_step = statistics.mean(
        r["seconds"] / max(1, r["evaluations"][-1]["step"]) for r in rows.values()
    )
    table = []
    for step in steps:
        l1 = [at_step(r, step) for r in rows.values()]
        psnr = [at_step(r, step, "psnr") for r in rows.values()]
        raw = [at_step(r, 0) for r in rows.values()]
        table.append({
            "step": step,
            "seconds": step * seconds_per_step,
            "l1_hole": statistics.mean(l1),
            "psnr": statistics.mean(psnr),
            "worse_than_raw": sum(a > b for a, b in zip(l1, raw, strict=True)) / len(l1),
        })  # fmt: skip
    return {"images": len(rows), "seconds_per_step": seconds_per_step, "curve": table,
            "references": references(run)}  # fmt: skip


def selection(fixed: Path, best: Path, strategy: str, fixed_step: int | None) -> dict[str, Any]:
    """Compare the fixed run at ``fixed_step`` (default: the best run's last step; a run with
    constant learning rate evaluated at step k is the k-step run) with the best run's returns."""
    runs = {"fixed": load_rows(fixed, strategy), "best": load_rows(best, strategy)}
    images = sorted(set(runs["fixed"]) & set(runs["best"]))
    if fixed_step is None:
        fixed_step = runs["best"][images[0]]["evaluations"][-1]["step"]
    summary: dict[str, Any] = {}
    for name, rows in runs.items():
        raw = [at_step(rows[i], 0) for i in images]
        out = [
            at_step(rows[i], fixed_step if name == "fixed" else returned_step(rows[i]))
            for i in images
        ]
        summary[name] = {
            "worse_than_raw": sum(o > r for o, r in zip(out, raw, strict=True)) / len(images),
            "mean_improvement": statistics.mean((r - o) / r for o, r in zip(out, raw, strict=True)),
            "l1_mean_improvement": (statistics.mean(raw) - statistics.mean(out))
            / statistics.mean(raw),
            "raw_l1_hole": statistics.mean(raw),
            "l1_hole": statistics.mean(out),
            "chosen_steps": [
                fixed_step if name == "fixed" else returned_step(rows[i]) for i in images
            ],
        }
    return {"images": images, "fixed_step": fixed_step, "summary": summary}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    c = sub.add_parser("curve")
    c.add_argument("run", type=Path)
    s = sub.add_parser("selection")
    s.add_argument("--fixed", type=Path, required=True)
    s.add_argument("--best", type=Path, required=True)
    s.add_argument("--fixed-step", type=int, help="default: the best run's step count")
    for p in (c, s):
        p.add_argument("--strategy", default="default")
        p.add_argument("--json", type=Path)
    args = parser.parse_args()

    if args.command == "curve":
        report = curve(args.run, args.strategy)
        print(f"{report['images']} images, {report['seconds_per_step']:.2f} s per step")
        print(f"{'step':>5}{'seconds':>9}{'hole L1':>9}{'PSNR':>8}{'worse':>8}")
        for r in report["curve"]:
            print(
                f"{r['step']:>5}{r['seconds']:>9.1f}{r['l1_hole']:>9.4f}{r['psnr']:>8.2f}"
                f"{r['worse_than_raw']:>8.0%}"
            )
        for name, value in report["references"].items():
            print(f"reference {name}: hole L1 {value:.4f}")
    else:
        report = selection(args.fixed, args.best, args.strategy, args.fixed_step)
        print(f"{len(report['images'])} images, fixed run at step {report['fixed_step']}")
        print(f"{'run':<8}{'worse than raw':>16}{'mean impr.':>12}{'L1-mean impr.':>15}"
              f"{'raw L1':>9}{'L1':>9}")  # fmt: skip
        for name, r in report["summary"].items():
            print(
                f"{name:<8}{r['worse_than_raw']:>16.0%}{r['mean_improvement']:>12.1%}"
                f"{r['l1_mean_improvement']:>15.1%}{r['raw_l1_hole']:>9.4f}{r['l1_hole']:>9.4f}"
            )
        print("chosen steps (best):", report["summary"]["best"]["chosen_steps"])
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
