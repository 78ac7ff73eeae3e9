"""The quality protocol: choose settings on a tuning split, report them once on a reporting split.

    # 1. photos (never used for pretraining) and fixed masks, two seeds, at 256²
    python benchmarks/photos/debian_photos.py PHOTOS            # PHOTOS/{tuning,reporting}
    python benchmarks/quality.py prepare WORK --tuning PHOTOS/tuning HELD_OUT_DEV \\
        --reporting PHOTOS/reporting

    # 2. a candidate = a name + `tttkit eval` options, run on one split (resumable)
    python benchmarks/quality.py run WORK tuning default -- --strategy default
    python benchmarks/quality.py run WORK tuning lr1e-4 -- --strategy default --lr 1e-4

    # 3. the table: per candidate, on one split
    python benchmarks/quality.py report WORK tuning default lr1e-4 [--json out.json]

Per candidate the report gives mean hole-L1, PSNR and SSIM of the raw fill (step 0) and of the
returned TTT fill; the per-photo gain ``(raw − TTT) / raw`` of hole L1 — its mean, median and a
bootstrap 95% interval of the mean that resamples photos (a photo's two masks stay together,
so the interval is not made narrower by counting one photo twice); the share of photo-runs
worse than raw; the raw fill's advantage over OpenCV Telea; and seconds per photo-run.

Rules (issue 19): choose on ``tuning`` only; run a candidate on ``reporting`` once, after it
was chosen, and report what it gives.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ttt_study import at_step, returned_step

SPLITS = ("tuning", "reporting")
MASK_SEEDS = (0, 1)
SIZE = 256
PHOTO_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff", ".bmp"}


def prepare(work: Path, sources: dict[str, list[Path]]) -> None:
    """Link each split's photos into ``work/photos/SPLIT`` and draw its fixed masks."""
    for split, folders in sources.items():
        photos = work / "photos" / split
        photos.mkdir(parents=True, exist_ok=True)
        for folder in folders:
            for path in sorted(folder.iterdir()):
                if path.suffix.lower() in PHOTO_SUFFIXES and not (photos / path.name).exists():
                    (photos / path.name).symlink_to(path.resolve())
        for seed in MASK_SEEDS:
            out = work / "masks" / f"{split}-seed{seed}"
            if not out.exists():
                tttkit("masks", str(photos), "--out", str(out), "--seed", str(seed),
                       "--size", str(SIZE))  # fmt: skip
        print(f"{split}: {len(list(photos.iterdir()))} photos, masks of seeds {MASK_SEEDS}")


def run(work: Path, split: str, name: str, options: list[str]) -> None:
    """``tttkit eval`` of one candidate on one split, once per mask seed (resumable)."""
    for seed in MASK_SEEDS:
        out = work / "runs" / name / f"{split}-mask{seed}"
        command = ["eval", str(work / "photos" / split), "--masks",
                   str(work / "masks" / f"{split}-seed{seed}"), "--out", str(out),
                   "--size", str(SIZE), "--fid", "off", "--seed", "0", *options]  # fmt: skip
        if out.exists():
            command.append("--resume")
        tttkit(*command)


def tttkit(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "tttkit", *args], check=True)


def photo_runs(work: Path, split: str, name: str) -> list[dict[str, Any]]:
    """One row per (photo, mask seed): raw, TTT and Telea metrics, seconds."""
    rows = []
    for seed in MASK_SEEDS:
        results = work / "runs" / name / f"{split}-mask{seed}" / "results.jsonl"
        if not results.exists():
            raise SystemExit(f"no results for {name} on {split} (mask seed {seed}): run it first")
        telea, ttt = {}, []
        for line in results.read_text().splitlines():
            record = json.loads(line)
            if record["kind"] == "reference" and record["strategy"] == "opencv-telea":
                telea[record["image"]] = at_step(record, 0)
            elif record["kind"] == "ttt":
                ttt.append(record)
        for record in ttt:
            step = returned_step(record)
            rows.append({
                "photo": record["image"], "mask_seed": seed, "seconds": record["seconds"],
                "telea": telea.get(record["image"]),
                **{f"raw_{m}": at_step(record, 0, m) for m in ("l1_hole", "psnr", "ssim")},
                **{f"ttt_{m}": at_step(record, step, m) for m in ("l1_hole", "psnr", "ssim")},
            })  # fmt: skip
    return rows


def bootstrap_interval(
    per_photo: dict[str, list[float]], draws: int = 10_000, seed: int = 0
) -> tuple[float, float]:
    """95% percentile interval of the mean over photo-runs, resampling whole photos."""
    photos = sorted(per_photo)
    rng = random.Random(seed)
    means = []
    for _ in range(draws):
        values = [v for p in rng.choices(photos, k=len(photos)) for v in per_photo[p]]
        means.append(statistics.fmean(values))
    means.sort()
    return means[int(0.025 * draws)], means[int(0.975 * draws) - 1]


def summarize(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The report's numbers for one candidate's photo-runs."""
    gains = [100 * (r["raw_l1_hole"] - r["ttt_l1_hole"]) / r["raw_l1_hole"] for r in rows]
    per_photo: dict[str, list[float]] = {}
    for row, gain in zip(rows, gains, strict=True):
        per_photo.setdefault(row["photo"], []).append(gain)
    low, high = bootstrap_interval(per_photo)
    mean = {
        k: statistics.fmean(r[k] for r in rows) for k in rows[0] if k.startswith(("raw_", "ttt_"))
    }
    teleas = [r["telea"] for r in rows if r["telea"] is not None]
    return {
        "photos": len(per_photo),
        "photo_runs": len(rows),
        **mean,
        "psnr_gain_percent": 100 * (mean["ttt_psnr"] - mean["raw_psnr"]) / mean["raw_psnr"],
        "gain_mean": statistics.fmean(gains),
        "gain_median": statistics.median(gains),
        "gain_ci95": (low, high),
        "worse_share": sum(g < 0 for g in gains) / len(gains),
        "raw_vs_telea_percent": 100
        * (statistics.fmean(teleas) - mean["raw_l1_hole"])
        / statistics.fmean(teleas)
        if teleas
        else None,
        "seconds_per_photo": statistics.fmean(r["seconds"] for r in rows),
    }


def report(work: Path, split: str, names: list[str]) -> dict[str, Any]:
    table = {name: summarize(photo_runs(work, split, name)) for name in names}
    print(f"{split} split ({SIZE}², masks of seeds {MASK_SEEDS})")
    header = (f"{'candidate':<22}{'runs':>5}{'hole-L1 raw→TTT':>20}{'PSNR raw→TTT':>16}"
              f"{'SSIM raw→TTT':>16}{'gain mean':>10}{'median':>8}{'95% CI':>18}{'worse':>7}"
              f"{'vs Telea':>9}{'s/photo':>8}")  # fmt: skip
    print(header)
    for name, s in table.items():
        low, high = s["gain_ci95"]
        telea = (
            f"{s['raw_vs_telea_percent']:+.1f}%" if s["raw_vs_telea_percent"] is not None else "—"
        )
        print(f"{name:<22}{s['photo_runs']:>5}"
              f"{s['raw_l1_hole']:>10.4f}→{s['ttt_l1_hole']:.4f}"
              f"{s['raw_psnr']:>9.2f}→{s['ttt_psnr']:.2f}{s['raw_ssim']:>10.4f}→{s['ttt_ssim']:.4f}"
              f"{s['gain_mean']:>+9.2f}%{s['gain_median']:>+7.2f}%"
              f"{f'{low:+.2f}…{high:+.2f}%':>18}{100 * s['worse_share']:>6.0f}%"
              f"{telea:>9}{s['seconds_per_photo']:>8.1f}")  # fmt: skip
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    prep = commands.add_parser("prepare", help="link photos and draw the fixed masks")
    prep.add_argument("work", type=Path)
    for split in SPLITS:
        prep.add_argument(f"--{split}", type=Path, nargs="+", required=True)
    runner = commands.add_parser("run", help="evaluate a candidate on a split")
    runner.add_argument("work", type=Path)
    runner.add_argument("split", choices=SPLITS)
    runner.add_argument("name")
    runner.add_argument("options", nargs=argparse.REMAINDER, help="after --: tttkit eval options")
    reporter = commands.add_parser("report", help="the table for some candidates on a split")
    reporter.add_argument("work", type=Path)
    reporter.add_argument("split", choices=SPLITS)
    reporter.add_argument("names", nargs="+")
    reporter.add_argument("--json", type=Path)
    args = parser.parse_args()
    if args.command == "prepare":
        prepare(args.work, {split: getattr(args, split) for split in SPLITS})
    elif args.command == "run":
        options = args.options[1:] if args.options[:1] == ["--"] else args.options
        run(args.work, args.split, args.name, options)
    else:
        table = report(args.work, args.split, args.names)
        if args.json:
            args.json.write_text(json.dumps(table, indent=2))


if __name__ == "__main__":
    main()
