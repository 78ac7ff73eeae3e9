"""Quality of test-time training against steps, and of self-validated selection, from eval runs.

Reads the ``results.jsonl`` of ``tttkit eval`` run folders (ground-truth metrics at every
evaluation step of every image) and prints tables, plus JSON with ``--json``.

    # hole L1 / PSNR of the returned output after k steps, and the time those steps took
    python benchmarks/ttt_study.py curve RUN [--strategy default]

    # fixed-step (a run with --set select=last) against self-validated selection (select=best):
    # share of images whose output is worse than the raw network's, and mean improvement;
    # several pairs of runs (one per seed) are pooled
    python benchmarks/ttt_study.py selection --fixed LAST_S0 LAST_S1 --best BEST_S0 BEST_S1

    # options side by side (e.g. freezing policies), each pooled over its runs (mask and
    # training seeds): mean gain with a 95% interval, PSNR, share worse than raw, s/step
    python benchmarks/ttt_study.py options --option full RUN… --option lora RUN…

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
    """``metric`` of the output at ``step``: a run that ended earlier (stopped early, or a refit
    of fewer steps) keeps its last output, as in the thesis-style curves."""
    return [e[metric] for e in record["evaluations"] if e["step"] <= step][-1]


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


def selection(
    fixed: list[Path],
    best: list[Path],
    strategy: str,
    fixed_step: int | None,
    refit_from_fixed: bool = False,
) -> dict[str, Any]:
    """Compare fixed runs at ``fixed_step`` with best runs' returns, pairing ``fixed[i]`` with
    ``best[i]`` (e.g. one pair per seed) and pooling the pairs.

    ``fixed_step`` defaults to the step count of the best runs (the last step of their
    validation curves); a run with constant learning rate evaluated at step k is the k-step run.
    With ``refit_from_fixed`` the best runs are read as probes of ``refit``: the output is the
    fixed run (same seed) at the probe's chosen step, which is exactly what the refit computes.
    """
    if len(fixed) != len(best):
        raise SystemExit("--fixed and --best need as many runs each (one pair per seed)")
    pairs = [
        (load_rows(f, strategy), load_rows(b, strategy)) for f, b in zip(fixed, best, strict=True)
    ]
    if fixed_step is None:
        fixed_step = max(validated_steps(row) for _, rows in pairs for row in rows.values())
    outcomes: dict[str, list[tuple[float, float, int]]] = {"fixed": [], "best": []}
    images = []
    for index, (fixed_rows, best_rows) in enumerate(pairs):
        for image in sorted(set(fixed_rows) & set(best_rows)):
            images.append(f"{image}#{index}" if len(pairs) > 1 else image)
            row = fixed_rows[image]
            outcomes["fixed"].append((at_step(row, 0), at_step(row, fixed_step), fixed_step))
            step = returned_step(best_rows[image])
            row = fixed_rows[image] if refit_from_fixed else best_rows[image]
            outcomes["best"].append((at_step(row, 0), at_step(row, step), step))
    summary: dict[str, Any] = {}
    for name, rows in outcomes.items():
        raw, out = [r for r, _, _ in rows], [o for _, o, _ in rows]
        worse = sum(o > r for r, o, _ in rows)
        summary[name] = {
            "worse_than_raw": worse / len(rows),
            "worse_count": worse,
            "mean_improvement": statistics.mean((r - o) / r for r, o, _ in rows),
            "l1_mean_improvement": (statistics.mean(raw) - statistics.mean(out))
            / statistics.mean(raw),
            "raw_l1_hole": statistics.mean(raw),
            "l1_hole": statistics.mean(out),
            "chosen_steps": [step for _, _, step in rows],
            "improvements": [(r - o) / r for r, o, _ in rows],
        }
    return {"images": images, "fixed_step": fixed_step, "summary": summary}


#: Two-sided 95% quantiles of Student's t by degrees of freedom (beyond: the normal 1.96).
T95 = {1: 12.71, 2: 4.30, 3: 3.18, 4: 2.78, 5: 2.57, 6: 2.45, 7: 2.36, 8: 2.31, 9: 2.26,
       10: 2.23, 12: 2.18, 15: 2.13, 20: 2.09, 25: 2.06, 30: 2.04, 40: 2.02, 60: 2.00}  # fmt: skip


def mean_interval(values: list[float]) -> tuple[float, float, float]:
    """Mean and its 95% t-interval (photo-runs treated as independent)."""
    mean = statistics.mean(values)
    if len(values) < 2:
        return mean, mean, mean
    dof = len(values) - 1
    t = next((T95[k] for k in sorted(T95) if k >= dof), 1.96)
    half = t * statistics.stdev(values) / len(values) ** 0.5
    return mean, mean - half, mean + half


def options(groups: dict[str, list[Path]], strategy: str) -> dict[str, Any]:
    """Each option's returned outputs against the raw network, pooled over its runs."""
    summary = {}
    for name, runs in groups.items():
        gains, psnr_gains, worse, raw_l1, out_l1, per_step = [], [], 0, [], [], []
        for run in runs:
            for row in load_rows(run, strategy).values():
                step = returned_step(row)
                raw, out = at_step(row, 0), at_step(row, step)
                gains.append((raw - out) / raw)
                psnr_gains.append(at_step(row, step, "psnr") - at_step(row, 0, "psnr"))
                worse += out > raw
                raw_l1.append(raw)
                out_l1.append(out)
                per_step.append(row["seconds"] / max(1, step))
        mean, low, high = mean_interval(gains)
        summary[name] = {
            "photo_runs": len(gains), "runs": len(runs),
            "mean_gain": mean, "gain_interval": [low, high],
            "psnr_gain_db": statistics.mean(psnr_gains),
            "worse_than_raw": worse / len(gains), "worse_count": worse,
            "raw_l1_hole": statistics.mean(raw_l1), "l1_hole": statistics.mean(out_l1),
            "seconds_per_step": statistics.mean(per_step),
        }  # fmt: skip
    return summary


def validated_steps(record: dict[str, Any]) -> int:
    """How many steps a best run trained before choosing (its validation curve's last step)."""
    selection = record.get("selection") or {}
    curve = selection.get("validation") or record["evaluations"]
    last = curve[-1]
    return int(last[0] if isinstance(last, list) else last["step"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    c = sub.add_parser("curve")
    c.add_argument("run", type=Path)
    s = sub.add_parser("selection")
    s.add_argument("--fixed", type=Path, nargs="+", required=True)
    s.add_argument("--best", type=Path, nargs="+", required=True)
    s.add_argument("--fixed-step", type=int, help="default: the best run's step count")
    s.add_argument(
        "--refit-from-fixed", action="store_true",
        help="best runs made without refit: take the refit's output from the fixed run",
    )  # fmt: skip
    o = sub.add_parser("options")
    o.add_argument(
        "--option", nargs="+", action="append", required=True, metavar=("NAME", "RUN"),
        help="an option's name, then its runs (repeat per option)",
    )  # fmt: skip
    for p in (c, s, o):
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
    elif args.command == "options":
        groups = {item[0]: [Path(p) for p in item[1:]] for item in args.option}
        report = options(groups, args.strategy)
        print(f"{'option':<16}{'photo-runs':>11}{'hole-L1 gain (95% CI)':>26}{'PSNR dB':>9}"
              f"{'worse':>11}{'L1 raw→out':>17}{'s/step':>8}")  # fmt: skip
        for name, r in report.items():
            low, high = r["gain_interval"]
            print(
                f"{name:<16}{r['photo_runs']:>11}"
                f"{r['mean_gain']:>+9.2%} ({low:>+6.2%} … {high:>+6.2%})"
                f"{r['psnr_gain_db']:>+9.3f}{r['worse_count']:>5} ({r['worse_than_raw']:>3.0%})"
                f"   {r['raw_l1_hole']:.4f}→{r['l1_hole']:.4f}{r['seconds_per_step']:>8.2f}"
            )
    else:
        report = selection(
            args.fixed, args.best, args.strategy, args.fixed_step, args.refit_from_fixed
        )
        print(f"{len(report['images'])} image runs, fixed run at step {report['fixed_step']}")
        print(f"{'run':<8}{'worse than raw':>16}{'mean impr.':>12}{'L1-mean impr.':>15}"
              f"{'raw L1':>9}{'L1':>9}")  # fmt: skip
        for name, r in report["summary"].items():
            print(
                f"{name:<8}{r['worse_count']:>5} ({r['worse_than_raw']:>4.0%})    "
                f"{r['mean_improvement']:>12.1%}"
                f"{r['l1_mean_improvement']:>15.1%}{r['raw_l1_hole']:>9.4f}{r['l1_hole']:>9.4f}"
            )
        print("chosen steps (best):", report["summary"]["best"]["chosen_steps"])
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
