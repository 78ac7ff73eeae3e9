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

    # screening: a fixed seeded sample of the tuning split, one mask seed (cheap, coarse)
    python benchmarks/quality.py run WORK screen lr1e-4 --mask-seeds 0 -- --lr 1e-4

    # gain against steps, and the best any step choice could do (the ground-truth oracle)
    python benchmarks/quality.py curves WORK screen default lr1e-4 [--figure F.png]

    # paired: candidate against base on the same photo-runs; several names of one side are
    # training-seed replicates, averaged per photo-run before the comparison
    python benchmarks/quality.py compare WORK screen --base default default-seed1 \\
        --candidate lr1e-4 lr1e-4-seed1

    # two networks' raw fills (pretraining checkpoints) on the same photo-runs
    python benchmarks/quality.py compare WORK tuning --raw --base raw-p6 --candidate raw-p7 \\
        --metric lpips_alt

    # the raw and the TTT fill mixed, from the saved outputs
    python benchmarks/quality.py blend WORK screen default [--weights 0.5 1]

    # 4. which photos gain and which lose: per photo-run gains against photo features
    python benchmarks/quality.py analyze WORK tuning default [--out DIR]

    # 5. what a person sees: masked input, Telea, the given columns, original; sampled photos
    python benchmarks/quality.py grid WORK reporting --column raw=raw-only/none \\
        --column TTT=default/default --out grid.jpg [--photos 12] [--seed 0]

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
#: Metrics whose per-photo-run gain the report summarises: hole L1 first (the issue-19
#: protocol), then the perceptual ones a run recorded (LPIPS under one of its names, the
#: weight-free HaarPSI and GMSD).
GAIN_METRICS = ("l1_hole", "lpips", "lpips_alt", "haarpsi", "gmsd")
LOWER_IS_BETTER = {"l1_hole", "lpips", "lpips_alt", "gmsd"}
#: A fixed sample of the tuning split for screening candidates that cost a run per photo.
SCREEN, SCREEN_PHOTOS, SCREEN_SEED = "screen", 16, 0
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


def ensure_screen(work: Path) -> None:
    """``work/photos/screen``: SCREEN_PHOTOS tuning photos drawn once by a seeded shuffle,
    with their tuning masks (links)."""
    photos, tuning_photos = work / "photos" / SCREEN, work / "photos" / "tuning"
    if photos.exists():  # made last, so an interrupted draw is redone
        return
    tuning = sorted(tuning_photos.iterdir()) if tuning_photos.is_dir() else []
    if not tuning:
        raise SystemExit(f"no tuning photos in {work}: run prepare first")
    chosen = random.Random(SCREEN_SEED).sample(tuning, SCREEN_PHOTOS)
    for seed in MASK_SEEDS:
        masks = work / "masks" / f"{SCREEN}-seed{seed}"
        masks.mkdir(parents=True, exist_ok=True)
        for photo in chosen:
            mask = work / "masks" / f"tuning-seed{seed}" / f"{photo.stem}.png"
            if not (masks / mask.name).is_symlink():
                (masks / mask.name).symlink_to(mask.resolve())
    photos.mkdir(parents=True)
    for photo in chosen:
        (photos / photo.name).symlink_to(photo.resolve())


def run(
    work: Path, split: str, name: str, options: list[str], seeds: tuple[int, ...] = MASK_SEEDS
) -> None:
    """``tttkit eval`` of one candidate on one split, once per mask seed (resumable).

    Photos are completed as ``tttkit inpaint`` completes a 256² photo (``--windows crop``: at
    the backbone's working size: one window at the photo's own resolution for the compact
    default, which works at 256²); ``-- --windows full`` runs test-time training on the whole
    256² image whatever the working size."""
    if split == SCREEN:
        ensure_screen(work)
    for seed in seeds:
        out = work / "runs" / name / f"{split}-mask{seed}"
        command = ["eval", str(work / "photos" / split), "--masks",
                   str(work / "masks" / f"{split}-seed{seed}"), "--out", str(out),
                   "--size", str(SIZE), "--windows", "crop", "--fid", "off", "--seed", "0",
                   *options]  # fmt: skip
        if out.exists():
            command.append("--resume")
        tttkit(*command)


def screened_seeds(work: Path, name: str) -> tuple[int, ...]:
    """The mask seeds a candidate was screened with (``run --mask-seeds``)."""
    seeds = tuple(
        seed for seed in MASK_SEEDS if (work / "runs" / name / f"{SCREEN}-mask{seed}").exists()
    )
    if not seeds:
        raise SystemExit(f"no results for {name} on {SCREEN}: run it first")
    return seeds


def optional_seeds(seeds: list[int] | None) -> tuple[int, ...] | None:
    return tuple(seeds) if seeds else None


def tttkit(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "tttkit", *args], check=True)


def candidate_runs(
    work: Path, split: str, name: str, seeds: tuple[int, ...] | None = None
) -> list[tuple[int, Path, list[dict[str, Any]]]]:
    """``(mask seed, run folder, its results.jsonl records)`` of a candidate on a split: both
    mask seeds, or on the screen the seeds it was run with; ``seeds`` reads only those (an
    interim reading of a run that has not finished every mask seed)."""
    if seeds is None:
        seeds = MASK_SEEDS if split != SCREEN else screened_seeds(work, name)
    runs = []
    for seed in seeds:
        folder = work / "runs" / name / f"{split}-mask{seed}"
        results = folder / "results.jsonl"
        if not results.exists():
            raise SystemExit(f"no results for {name} on {split} (mask seed {seed}): run it first")
        runs.append((seed, folder, [json.loads(line) for line in results.read_text().splitlines()]))
    return runs


def photo_runs(
    work: Path,
    split: str,
    name: str,
    step: int | None = None,
    seeds: tuple[int, ...] | None = None,
) -> list[dict[str, Any]]:
    """One row per (photo, mask seed): raw, TTT and Telea metrics, seconds.

    ``step`` reads the TTT metrics off each run's curve at that step instead of the returned
    output: for comparing fixed-step runs (``--select last``) of different lengths, whose first
    k steps are the k-step run (same seed, no schedule that depends on the length)."""
    rows = []
    for seed, _, records in candidate_runs(work, split, name, seeds):
        telea, ttt = {}, []
        for record in records:
            if record["kind"] == "reference" and record["strategy"] == "opencv-telea":
                telea[record["image"]] = record["evaluations"][0]
            elif record["kind"] == "ttt":
                ttt.append(record)
        for record in ttt:
            if step is not None and record.get("selection"):
                raise SystemExit(f"{name}: --step needs fixed-step runs, not --select")
            if step is not None and step not in {e["step"] for e in record["evaluations"]}:
                raise SystemExit(f"{name} has no evaluation at step {step} on {record['image']}")
            chosen = returned_step(record) if step is None else step
            metrics = [
                "l1_hole",
                "psnr",
                "ssim",
                *(m for m in GAIN_METRICS[1:] if m in record["evaluations"][0]),
            ]
            peer = telea.get(record["image"], {})
            rows.append({
                "photo": record["image"], "mask_seed": seed, "seconds": record["seconds"],
                "telea": peer.get("l1_hole"),
                **{f"telea_{m}": peer[m] for m in GAIN_METRICS[1:] if m in peer},
                **{f"raw_{m}": at_step(record, 0, m) for m in metrics},
                **{f"ttt_{m}": at_step(record, chosen, m) for m in metrics},
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


def metric_gain(row: dict[str, Any], metric: str = "l1_hole") -> float:
    """A photo-run's gain in % on ``metric``, positive = better: ``(raw − TTT) / raw`` for a
    lower-is-better metric, ``(TTT − raw) / raw`` otherwise."""
    raw, ttt = row[f"raw_{metric}"], row[f"ttt_{metric}"]
    change = raw - ttt if metric in LOWER_IS_BETTER else ttt - raw
    return 100 * change / raw


def hole_gain(row: dict[str, Any]) -> float:
    """A photo-run's gain in %: ``(raw − TTT) / raw`` of its hole L1."""
    return metric_gain(row, "l1_hole")


def gain_summary(rows: list[dict[str, Any]], metric: str) -> dict[str, Any]:
    """Mean, median, bootstrap interval (photos resampled) and worse-than-raw share of the
    per-photo-run gains on ``metric``, and the raw fill's advantage over Telea's on it."""
    gains = [metric_gain(r, metric) for r in rows]
    per_photo: dict[str, list[float]] = {}
    for row, gain in zip(rows, gains, strict=True):
        per_photo.setdefault(row["photo"], []).append(gain)
    low, high = bootstrap_interval(per_photo)
    telea_key = "telea" if metric == "l1_hole" else f"telea_{metric}"
    teleas = [r[telea_key] for r in rows if r.get(telea_key) is not None]
    vs_telea = None
    if teleas:
        peer, raw = statistics.fmean(teleas), statistics.fmean(r[f"raw_{metric}"] for r in rows)
        vs_telea = 100 * ((peer - raw) if metric in LOWER_IS_BETTER else (raw - peer)) / peer
    return {
        "gain_mean": statistics.fmean(gains),
        "gain_median": statistics.median(gains),
        "gain_ci95": (low, high),
        "worse_share": sum(g < 0 for g in gains) / len(gains),
        "raw_vs_telea_percent": vs_telea,
    }


def summarize(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The report's numbers for one candidate's photo-runs: hole L1's at the top level (as
    issue 19's tables), every recorded metric's under ``metrics``."""
    mean = {
        k: statistics.fmean(r[k] for r in rows) for k in rows[0] if k.startswith(("raw_", "ttt_"))
    }
    present = [m for m in GAIN_METRICS if all(f"raw_{m}" in r for r in rows)]
    per_metric = {m: gain_summary(rows, m) for m in present}
    return {
        "photos": len({r["photo"] for r in rows}),
        "photo_runs": len(rows),
        **mean,
        "psnr_gain_percent": 100 * (mean["ttt_psnr"] - mean["raw_psnr"]) / mean["raw_psnr"],
        **per_metric["l1_hole"],
        "metrics": per_metric,
        "seconds_per_photo": statistics.fmean(r["seconds"] for r in rows),
    }


def report(
    work: Path,
    split: str,
    names: list[str],
    step: int | None = None,
    seeds: tuple[int, ...] | None = None,
) -> dict[str, Any]:
    table = {name: summarize(photo_runs(work, split, name, step, seeds)) for name in names}
    per_photo = {name: table[name]["photo_runs"] // table[name]["photos"] for name in names}
    at = "returned output" if step is None else f"TTT read at step {step}"
    interim = f"; INTERIM, mask seeds {list(seeds)} only" if seeds is not None else ""
    print(f"{split} split ({SIZE}², mask seeds per photo: {per_photo}; {at}{interim})")
    header = (f"{'candidate':<22}{'runs':>5}{'hole-L1 raw→TTT':>20}{'PSNR raw→TTT':>16}"
              f"{'SSIM raw→TTT':>16}{'gain mean':>10}{'median':>8}{'95% CI':>18}{'worse':>7}"
              f"{'vs Telea':>9}{'s/photo':>8}")  # fmt: skip
    print(header)
    for name, s in table.items():
        print(f"{name:<22}{s['photo_runs']:>5}"
              f"{s['raw_l1_hole']:>10.4f}→{s['ttt_l1_hole']:.4f}"
              f"{s['raw_psnr']:>9.2f}→{s['ttt_psnr']:.2f}{s['raw_ssim']:>10.4f}→{s['ttt_ssim']:.4f}"
              f"{gain_cells(s)}{s['seconds_per_photo']:>8.1f}")  # fmt: skip
    perceptual = [(n, m) for n, s in table.items() for m in s["metrics"] if m != "l1_hole"]
    if perceptual:
        print(f"\n{'candidate':<22}{'metric':>10}{'raw→TTT':>18}{'gain mean':>10}{'median':>8}"
              f"{'95% CI':>18}{'worse':>7}{'vs Telea':>9}")  # fmt: skip
    for name, metric in perceptual:
        s = table[name]
        print(f"{name:<22}{metric:>10}{s[f'raw_{metric}']:>10.4f}→{s[f'ttt_{metric}']:.4f}"
              f"{gain_cells(s['metrics'][metric])}")  # fmt: skip
    return table


def gain_cells(gains: dict[str, Any]) -> str:
    """A report row's gain columns: mean, median, 95% interval, worse share, vs Telea."""
    low, high = gains["gain_ci95"]
    vs_telea = gains["raw_vs_telea_percent"]
    telea = f"{vs_telea:+.1f}%" if vs_telea is not None else "—"
    interval = f"{low:+.2f}…{high:+.2f}%"
    return (f"{gains['gain_mean']:>+9.2f}%{gains['gain_median']:>+7.2f}%"
            f"{interval:>18}{100 * gains['worse_share']:>6.0f}%{telea:>9}")  # fmt: skip


def replicate_gains(
    work: Path,
    split: str,
    names: list[str],
    seeds: tuple[int, ...] | None = None,
    step: int | None = None,
    metric: str = "l1_hole",
) -> dict[tuple[str, int], float]:
    """Per (photo, mask seed): the gain in % on ``metric``, averaged over ``names`` (runs of
    one recipe with different training seeds; ``step`` reads their curves there). Every name
    must cover the same photo-runs."""
    per_name = []
    for name in names:
        rows = photo_runs(work, split, name, step, seeds)
        if any(f"raw_{metric}" not in r for r in rows):
            raise SystemExit(f"{name} on {split} did not record {metric}")
        gains = {(r["photo"], r["mask_seed"]): metric_gain(r, metric) for r in rows}
        if per_name and gains.keys() != per_name[0].keys():
            raise SystemExit(f"{name} and {names[0]} ran on different photo-runs of {split}")
        per_name.append(gains)
    return {key: statistics.fmean(g[key] for g in per_name) for key in per_name[0]}


def compare_raw(
    work: Path,
    split: str,
    base: str,
    candidate: str,
    metric: str = "l1_hole",
    seeds: tuple[int, ...] | None = None,
) -> dict[str, Any]:
    """Two networks' raw fills (step 0) on the same photo-runs: the candidate's improvement
    over the base in % of the base's value on ``metric`` (positive = better), its mean with a
    bootstrap interval over photos, and the share of photo-runs where the candidate is better.
    For choosing a base network (a pretraining checkpoint), where there is no TTT gain."""
    sides = {}
    for name in (base, candidate):
        rows = photo_runs(work, split, name, None, seeds)
        if any(f"raw_{metric}" not in r for r in rows):
            raise SystemExit(f"{name} on {split} did not record {metric}")
        sides[name] = {(r["photo"], r["mask_seed"]): r[f"raw_{metric}"] for r in rows}
    if sides[base].keys() != sides[candidate].keys():
        raise SystemExit(f"{base} and {candidate} ran on different photo-runs of {split}")
    per_photo: dict[str, list[float]] = {}
    for (photo, mask_seed), old in sides[base].items():
        new = sides[candidate][(photo, mask_seed)]
        gain = metric_gain({f"raw_{metric}": old, f"ttt_{metric}": new}, metric)
        per_photo.setdefault(photo, []).append(gain)
    values = [v for vs in per_photo.values() for v in vs]
    low, high = bootstrap_interval(per_photo)
    result = {
        "base": base, "candidate": candidate, "metric": metric, "photo_runs": len(values),
        "base_mean": statistics.fmean(sides[base].values()),
        "candidate_mean": statistics.fmean(sides[candidate].values()),
        "improvement_mean": statistics.fmean(values), "improvement_ci95": (low, high),
        "candidate_better_share": sum(v > 0 for v in values) / len(values),
    }  # fmt: skip
    print(f"{split}, raw fills, {metric}: {candidate} against {base} ({len(values)} photo-runs): "
          f"{result['base_mean']:.4f} → {result['candidate_mean']:.4f}, improvement "
          f"{result['improvement_mean']:+.2f}% (95% CI {low:+.2f} … {high:+.2f}%), better on "
          f"{100 * result['candidate_better_share']:.0f}%")  # fmt: skip
    return result


def compare(
    work: Path,
    split: str,
    base: list[str],
    candidate: list[str],
    seeds: tuple[int, ...] | None = None,
    candidate_step: int | None = None,
    metric: str = "l1_hole",
    base_step: int | None = None,
) -> dict[str, Any]:
    """Candidate against base on the same photo-runs: the mean difference of their gains on
    ``metric`` (in points of the raw fill's value) with a bootstrap interval over photos, and
    on how many photo-runs the candidate is better. A difference whose interval spans zero is
    not a win. ``candidate_step`` (``base_step``) reads the candidate's (base's) fixed-step
    runs at that step."""
    before = replicate_gains(work, split, base, seeds, base_step, metric)
    after = replicate_gains(work, split, candidate, seeds, candidate_step, metric)
    if before.keys() != after.keys():
        raise SystemExit(f"base and candidate ran on different photo-runs of {split}")
    differences: dict[str, list[float]] = {}
    for (photo, mask_seed), gain in after.items():
        differences.setdefault(photo, []).append(gain - before[(photo, mask_seed)])
    values = [d for ds in differences.values() for d in ds]
    low, high = bootstrap_interval(differences)
    result = {
        "base": base, "candidate": candidate, "candidate_step": candidate_step,
        "base_step": base_step, "metric": metric,
        "photo_runs": len(values),
        "base_gain_mean": statistics.fmean(before.values()),
        "candidate_gain_mean": statistics.fmean(after.values()),
        "difference_mean": statistics.fmean(values), "difference_ci95": (low, high),
        "candidate_better_share": sum(d > 0 for d in values) / len(values),
    }  # fmt: skip
    at = f" at step {candidate_step}" if candidate_step is not None else ""
    base_at = f" at step {base_step}" if base_step is not None else ""
    print(f"{split}: {' + '.join(candidate)}{at} against {' + '.join(base)}{base_at} "
          f"({metric}; {len(values)} photo-runs, each side averaged over its "
          f"{len(candidate)}/{len(base)} training seeds)")  # fmt: skip
    print(f"  gain {result['base_gain_mean']:+.2f}% → {result['candidate_gain_mean']:+.2f}%; "
          f"difference {result['difference_mean']:+.2f} points (95% CI {low:+.2f} … "
          f"{high:+.2f}); candidate better on {100 * result['candidate_better_share']:.0f}% of "
          "photo-runs")  # fmt: skip
    return result


def curves(
    work: Path,
    split: str,
    names: list[str],
    figure: Path | None = None,
    seeds: tuple[int, ...] | None = None,
    metric: str = "l1_hole",
) -> None:
    """Per candidate, the mean gain and the worse-than-raw share at every evaluated step, and
    two bounds that use the ground truth: the *oracle* (each photo-run's best step) bounds what
    any choice of steps or selection rule can reach with that finetuning recipe; the *perfect
    guard* (the last step, or raw where the last step is worse) bounds a rule that only decides
    whether to keep the finetuned fill."""
    import numpy as np

    table = {}
    for name in names:
        gains = []
        for _, _, records in candidate_runs(work, split, name, seeds):
            for record in records:
                if record["kind"] != "ttt":
                    continue
                if record.get("selection"):
                    raise SystemExit(f"{name}: curves need fixed-step runs, not --select")
                raw = at_step(record, 0, metric)
                gains.append({e["step"]: metric_gain({"raw_" + metric: raw,
                                                      "ttt_" + metric: e[metric]}, metric)
                              for e in record["evaluations"]})  # fmt: skip
        steps = sorted(set.intersection(*(set(g) for g in gains)))
        if len(steps) < 2:
            raise SystemExit(f"{name} has no curve (only steps {steps}): evaluate with --windows"
                             " full or a photo that is one window")  # fmt: skip
        matrix = np.array([[g[step] for step in steps] for g in gains])
        table[name] = (steps, matrix)
        oracle = matrix.max(axis=1)
        print(f"{name} on {split}: {len(gains)} photo-runs, gain in {metric}")
        print("  step   " + "".join(f"{step:>7}" for step in steps))
        print("  gain % " + "".join(f"{v:>+7.2f}" for v in matrix.mean(axis=0)))
        print("  worse  " + "".join(f"{v:>6.0%} " for v in (matrix < 0).mean(axis=0)))
        print(f"  oracle (best step per photo-run, chosen with the ground truth): "
              f"{oracle.mean():+.2f}% mean, {np.median(oracle):+.2f}% median")  # fmt: skip
        guarded = np.maximum(matrix[:, -1], 0)
        print(f"  perfect guard (last step, or raw where it is worse): {guarded.mean():+.2f}%")
    if figure is not None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, axis = plt.subplots(figsize=(7, 4))
        for name, (steps, matrix) in table.items():
            axis.plot(steps, matrix.mean(axis=0), marker="o", label=name)
        axis.axhline(0, color="black", linewidth=0.8)
        axis.set(xlabel="finetuning step", ylabel=f"mean {metric} gain over raw (%)",
                 title=f"{split} split")  # fmt: skip
        axis.legend(fontsize=8)
        fig.tight_layout()
        figure.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(figure, dpi=90)
        print(f"  {figure}")


def photo_features(image_path: Path, mask_path: Path) -> dict[str, float]:
    """What might tell the photos TTT helps from those it hurts: hole size and shape, and the
    texture and structure of the known pixels next to the hole (256² crop, as evaluated)."""
    import cv2
    import numpy as np

    image = cv2.imread(str(image_path), cv2.IMREAD_COLOR)
    hole = cv2.imread(str(mask_path), cv2.IMREAD_GRAYSCALE) > 127
    if image.shape[:2] != hole.shape:
        image = cv2.resize(image, hole.shape[::-1], interpolation=cv2.INTER_AREA)
    gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY).astype(np.float32) / 255
    ring = cv2.dilate(hole.astype(np.uint8), np.ones((15, 15), np.uint8)).astype(bool) & ~hole
    gradient = np.hypot(cv2.Sobel(gray, cv2.CV_32F, 1, 0), cv2.Sobel(gray, cv2.CV_32F, 0, 1))
    edges = cv2.Canny((gray * 255).astype(np.uint8), 50, 150) > 0
    contours, _ = cv2.findContours(hole.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    perimeter = sum(cv2.arcLength(c, True) for c in contours)
    return {
        "hole_fraction": float(hole.mean()),
        "hole_thinness": float(perimeter / max(hole.sum(), 1)),  # long thin strokes: high
        "ring_gradient": float(gradient[ring].mean()) if ring.any() else 0.0,
        "ring_edge_density": float(edges[ring].mean()) if ring.any() else 0.0,
        "ring_std": float(gray[ring].std()) if ring.any() else 0.0,
        "photo_gradient": float(gradient[~hole].mean()),
        "ring_repeat_error": ring_repeat_error(image, hole, ring),
    }


def ring_repeat_error(image: Any, hole: Any, ring: Any, patch: int = 8, stride: int = 4) -> float:
    """How well the photo repeats what surrounds the hole: for each known patch centred in the
    ring, the mean squared difference to its best match among known patches at least two patch
    widths away; the median over the ring, relative to the known pixels' variance. Low: the
    surroundings recur elsewhere in the photo (rows of windows, a lawn); high: a one-off."""
    import numpy as np

    pixels = image.astype(np.float32) / 255
    height, width = hole.shape
    tops = range(0, height - patch + 1, stride)
    lefts = range(0, width - patch + 1, stride)
    vectors, centres, in_ring = [], [], []
    for top in tops:
        for left in lefts:
            if hole[top : top + patch, left : left + patch].any():
                continue
            vectors.append(pixels[top : top + patch, left : left + patch].ravel())
            centres.append((top + patch // 2, left + patch // 2))
            in_ring.append(bool(ring[top + patch // 2, left + patch // 2]))
    if not any(in_ring):
        return float("nan")
    vectors_array, centres_array = np.stack(vectors), np.array(centres)
    queries = np.flatnonzero(in_ring)
    squared = (vectors_array**2).sum(1)
    distances = (
        squared[queries, None] + squared[None, :] - 2 * vectors_array[queries] @ vectors_array.T
    ) / vectors_array.shape[1]
    apart = np.abs(centres_array[queries, None, :] - centres_array[None, :, :]).max(-1)
    distances[apart < 2 * patch] = np.inf
    best = distances.min(1)
    best = best[np.isfinite(best)]
    variance = float(pixels[~hole].var()) + 1e-8
    return float(np.median(np.maximum(best, 0.0)) / variance) if best.size else float("nan")


def blend(work: Path, split: str, name: str, weights: list[float]) -> None:
    """Hole L1 of ``(1 − w) · raw + w · TTT`` fills, from a run's saved outputs (8-bit PNGs,
    so raw and TTT are re-scored from the same PNGs for a like-for-like comparison)."""
    import cv2
    import numpy as np

    gains: dict[float, list[float]] = {w: [] for w in weights}
    for seed, run_dir, records in candidate_runs(work, split, name):
        outputs = {(r["strategy"], r["image"]): run_dir / r["output"] for r in records}
        for record in records:
            if record["kind"] != "ttt":
                continue
            stem = Path(record["image"]).stem
            image = next((run_dir / "inputs").glob(f"{stem}.*"))
            hole = cv2.imread(str(work / "masks" / f"{split}-seed{seed}" / f"{stem}.png"), 0) > 127
            truth, raw, ttt = (
                cv2.imread(str(path)).astype(np.float32) / 255
                for path in (image, outputs[("none", record["image"])], run_dir / record["output"])
            )
            raw_l1 = float(np.abs(raw - truth)[hole].mean())
            for w in weights:
                mixed = (1 - w) * raw + w * ttt
                gains[w].append(100 * (raw_l1 - float(np.abs(mixed - truth)[hole].mean())) / raw_l1)
    print(f"{name} on {split}: blends of the raw and the returned TTT fill (hole-L1 gain over raw)")
    for w, values in gains.items():
        worse = sum(v < 0 for v in values) / len(values)
        print(f"  w={w:<5} gain {statistics.fmean(values):+.2f}%  worse than raw {worse:.0%}")


def grid(
    work: Path,
    split: str,
    columns: list[str],
    out: Path,
    photos: int = 12,
    mask_seed: int = 0,
    seed: int = 0,
) -> list[str]:
    """A picture grid: per photo (drawn by a seeded sample, never picked by eye), the masked
    input, OpenCV Telea, each ``LABEL=CANDIDATE/ROW`` column (a run's output of that row, e.g.
    ``raw=raw-p7/none`` or ``TTT=default-p7/default``) and the original; one labelled row per
    photo. Returns the photos shown."""
    import cv2
    import numpy as np

    specs = []
    for column in columns:
        label, _, source = column.partition("=")
        name, _, row = source.partition("/")
        if not (label and name and row):
            raise SystemExit(f"--column {column!r}: expected LABEL=CANDIDATE/ROW")
        specs.append((label, work / "runs" / name / f"{split}-mask{mask_seed}", row))
    first = specs[0][1]
    keys = sorted(path.relative_to(first / "inputs").as_posix()
                  for path in (first / "inputs").rglob("*.png"))  # fmt: skip
    chosen = sorted(random.Random(seed).sample(keys, min(photos, len(keys))))

    def read(path: Path) -> Any:
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            raise SystemExit(f"{path} is missing: run every column's candidate on {split} first")
        return image

    def labelled(image: Any, text: str) -> Any:
        image = image.copy()
        cv2.putText(image, text, (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 3)
        cv2.putText(image, text, (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1)
        return image

    rows = []
    for key in chosen:
        original = read(first / "inputs" / key)
        hole = read(first / "masks" / key)[..., :1] > 127
        masked = np.where(hole, np.uint8(255), original)
        tiles = [
            ("masked input", masked),
            ("OpenCV Telea", read(first / "outputs/opencv-telea" / key)),
        ]
        tiles += [(label, read(run / "outputs" / row / key)) for label, run, row in specs]
        tiles.append(("original", original))
        rows.append(np.hstack([labelled(tile, text) for text, tile in tiles]))
    out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(out), np.vstack(rows), [cv2.IMWRITE_JPEG_QUALITY, 88])
    print(f"{out}: {len(chosen)} photos of {split} (mask seed {mask_seed}, sample seed {seed}): "
          f"{', '.join(chosen)}")  # fmt: skip
    return chosen


def analyze(
    work: Path,
    split: str,
    name: str,
    out: Path,
    step: int | None = None,
    seeds: tuple[int, ...] | None = None,
) -> None:
    """Per photo-run gains with features, a CSV, Spearman correlations and figures."""
    import csv

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = photo_runs(work, split, name, step, seeds)
    for row in rows:
        run_dir = work / "runs" / name / f"{split}-mask{row['mask_seed']}"
        stem = Path(row["photo"]).stem
        image = next((run_dir / "inputs").glob(f"{stem}.*"), None)
        mask = work / "masks" / f"{split}-seed{row['mask_seed']}" / f"{stem}.png"
        if image is None or not mask.exists():
            raise SystemExit(f"no evaluated input or mask for {row['photo']} in {run_dir}")
        row["gain"] = hole_gain(row)
        row["set"] = photo_set(row["photo"])
        row.update(photo_features(image, mask))
    out.mkdir(parents=True, exist_ok=True)
    with (out / f"{name}-{split}.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    features = ["raw_l1_hole", "hole_fraction", "hole_thinness", "ring_gradient",
                "ring_edge_density", "ring_std", "photo_gradient", "ring_repeat_error"]  # fmt: skip
    print(f"{name} on {split}: {len(rows)} photo-runs; Spearman correlation with the gain")
    figure, axes = plt.subplots(3, 3, figsize=(13, 10))
    axes[0][0].hist([r["gain"] for r in rows], bins=30, color="steelblue")
    axes[0][0].axvline(0, color="black", linewidth=0.8)
    axes[0][0].set(title="per photo-run hole-L1 gain (%)", xlabel="gain (%)", ylabel="runs")
    for axis, feature in zip(axes.flat[1:], features, strict=False):
        rho = spearman([r[feature] for r in rows], [r["gain"] for r in rows])
        print(f"  {feature:<18} {rho:+.2f}")
        axis.scatter([r[feature] for r in rows], [r["gain"] for r in rows], s=8, alpha=0.6)
        axis.axhline(0, color="black", linewidth=0.8)
        axis.set(title=f"{feature} (Spearman {rho:+.2f})", xlabel=feature, ylabel="gain (%)")
    print("  gain by photo set: photos, photo-runs, mean (95% CI), worse than raw")
    for set_name, entry in gains_by_set(rows).items():
        low, high = entry["gain_ci95"]
        print(f"  {set_name:<40} {entry['photos']:>3} {entry['photo_runs']:>4} "
              f"{entry['gain_mean']:+6.2f}% ({low:+.2f} … {high:+.2f}) "
              f"{100 * entry['worse_share']:3.0f}%")  # fmt: skip
    figure.tight_layout()
    figure.savefig(out / f"{name}-{split}.png", dpi=90)
    print(f"  {out / f'{name}-{split}.csv'}, {out / f'{name}-{split}.png'}")


def photo_set(photo: str) -> str:
    """The source a photo came from: ``package/folder`` for the Debian photos, which
    ``photos/debian_photos.py`` names ``package__folder__file``; "other" for the rest."""
    parts = Path(photo).stem.split("__")
    return "/".join(parts[:2]) if len(parts) >= 3 else "other"


def gains_by_set(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Mean gain, its bootstrap 95% interval and the worse-than-raw share per photo set."""
    by_set: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_set.setdefault(photo_set(row["photo"]), []).append(row)
    keys = ("photos", "photo_runs", "gain_mean", "gain_ci95", "worse_share")
    summaries = {name: summarize(set_rows) for name, set_rows in sorted(by_set.items())}
    return {name: {k: summary[k] for k in keys} for name, summary in summaries.items()}


def spearman(x: list[float], y: list[float]) -> float:
    """Rank correlation (ties get their mean rank)."""

    def ranks(values: list[float]) -> list[float]:
        order = sorted(range(len(values)), key=values.__getitem__)
        result = [0.0] * len(values)
        i = 0
        while i < len(order):
            j = i
            while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
                j += 1
            for k in range(i, j + 1):
                result[order[k]] = (i + j) / 2
            i = j + 1
        return result

    rx, ry = ranks(x), ranks(y)
    mx, my = statistics.fmean(rx), statistics.fmean(ry)
    cov = sum((a - mx) * (b - my) for a, b in zip(rx, ry, strict=True))
    var = (sum((a - mx) ** 2 for a in rx) * sum((b - my) ** 2 for b in ry)) ** 0.5
    return cov / var if var else 0.0


def run_compare(args: argparse.Namespace, parser: argparse.ArgumentParser) -> dict[str, Any]:
    """``compare``: paired TTT gains, or with ``--raw`` two networks' raw fills."""
    seeds = optional_seeds(args.mask_seeds)
    if not args.raw:
        return compare(args.work, args.split, args.base, args.candidate, seeds,
                       args.candidate_step, args.metric, args.base_step)  # fmt: skip
    if len(args.base) != 1 or len(args.candidate) != 1 or args.candidate_step or args.base_step:
        parser.error("--raw compares one --base with one --candidate, no --candidate-step")
    return compare_raw(args.work, args.split, args.base[0], args.candidate[0], args.metric, seeds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    prep = commands.add_parser("prepare", help="link photos and draw the fixed masks")
    prep.add_argument("work", type=Path)
    for split in SPLITS:
        prep.add_argument(f"--{split}", type=Path, nargs="+", required=True)
    runner = commands.add_parser("run", help="evaluate a candidate on a split")
    runner.add_argument("work", type=Path)
    runner.add_argument("split", choices=(*SPLITS, SCREEN))
    runner.add_argument("--mask-seeds", type=int, nargs="+", choices=MASK_SEEDS,
                        default=list(MASK_SEEDS))  # fmt: skip
    runner.add_argument("name")
    reporter = commands.add_parser("report", help="the table for some candidates on a split")
    reporter.add_argument("work", type=Path)
    reporter.add_argument("split", choices=(*SPLITS, SCREEN))
    reporter.add_argument("names", nargs="+")
    reporter.add_argument("--json", type=Path)
    reporter.add_argument("--step", type=int, help="read fixed-step runs at this step")
    seeds_help = "an interim reading: only these mask seeds (default: all the protocol's)"
    reporter.add_argument("--mask-seeds", type=int, nargs="+", choices=MASK_SEEDS, help=seeds_help)
    curver = commands.add_parser("curves", help="gain against steps, and the oracle step")
    curver.add_argument("work", type=Path)
    curver.add_argument("split", choices=(*SPLITS, SCREEN))
    curver.add_argument("names", nargs="+")
    curver.add_argument("--figure", type=Path)
    curver.add_argument("--metric", choices=GAIN_METRICS, default="l1_hole")
    curver.add_argument("--mask-seeds", type=int, nargs="+", choices=MASK_SEEDS, help=seeds_help)
    comparer = commands.add_parser("compare", help="paired: a candidate against a base")
    comparer.add_argument("work", type=Path)
    comparer.add_argument("split", choices=(*SPLITS, SCREEN))
    comparer.add_argument("--base", nargs="+", required=True, help="runs of the base recipe")
    comparer.add_argument("--candidate", nargs="+", required=True)
    comparer.add_argument("--candidate-step", type=int, help="read the candidate at this step")
    comparer.add_argument("--base-step", type=int, help="read the base at this step")
    comparer.add_argument("--metric", choices=GAIN_METRICS, default="l1_hole")
    comparer.add_argument(
        "--raw",
        action="store_true",
        help="compare the raw fills of one base and one candidate network",
    )
    comparer.add_argument("--json", type=Path)
    comparer.add_argument("--mask-seeds", type=int, nargs="+", choices=MASK_SEEDS, help=seeds_help)
    blender = commands.add_parser("blend", help="mixes of the raw and the TTT fill")
    blender.add_argument("work", type=Path)
    blender.add_argument("split", choices=(*SPLITS, SCREEN))
    blender.add_argument("name")
    blender.add_argument("--weights", type=float, nargs="+", default=[0.25, 0.5, 0.75, 1.0])
    gridder = commands.add_parser("grid", help="a picture grid of sampled photos")
    gridder.add_argument("work", type=Path)
    gridder.add_argument("split", choices=(*SPLITS, SCREEN))
    gridder.add_argument(
        "--column",
        dest="columns",
        action="append",
        required=True,
        help="LABEL=CANDIDATE/ROW, e.g. TTT=default/default (repeatable)",
    )
    gridder.add_argument("--out", type=Path, required=True)
    gridder.add_argument("--photos", type=int, default=12)
    gridder.add_argument("--mask-seed", type=int, choices=MASK_SEEDS, default=0)
    gridder.add_argument("--seed", type=int, default=0, help="seed of the photo sample")
    analyzer = commands.add_parser("analyze", help="per-photo gains against photo features")
    analyzer.add_argument("work", type=Path)
    analyzer.add_argument("split", choices=(*SPLITS, SCREEN))
    analyzer.add_argument("name")
    analyzer.add_argument("--out", type=Path, default=Path("quality-analysis"))
    analyzer.add_argument("--step", type=int, help="read fixed-step runs at this step")
    analyzer.add_argument("--mask-seeds", type=int, nargs="+", choices=MASK_SEEDS, help=seeds_help)
    argv = sys.argv[1:]
    # Everything after `--` goes to `tttkit eval` untouched.
    split_at = argv.index("--") if "--" in argv else len(argv)
    args = parser.parse_args(argv[:split_at])
    eval_options = argv[split_at + 1 :]
    if args.command == "prepare":
        prepare(args.work, {split: getattr(args, split) for split in SPLITS})
    elif args.command == "analyze":
        seeds = optional_seeds(args.mask_seeds)
        analyze(args.work, args.split, args.name, args.out, args.step, seeds)
    elif args.command == "compare":
        outcome = run_compare(args, parser)
        if args.json:
            args.json.write_text(json.dumps(outcome, indent=2))
    elif args.command == "grid":
        grid(args.work, args.split, args.columns, args.out, args.photos, args.mask_seed, args.seed)
    elif args.command == "blend":
        blend(args.work, args.split, args.name, args.weights)
    elif args.command == "curves":
        curves(args.work, args.split, args.names, args.figure, optional_seeds(args.mask_seeds),
               args.metric)  # fmt: skip
    elif args.command == "run":
        run(args.work, args.split, args.name, eval_options, tuple(args.mask_seeds))
    else:
        table = report(
            args.work, args.split, args.names, args.step, optional_seeds(args.mask_seeds)
        )
        if args.json:
            args.json.write_text(json.dumps(table, indent=2))


if __name__ == "__main__":
    main()
