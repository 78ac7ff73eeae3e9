"""The quality protocol's arithmetic (benchmarks/quality.py) on hand-made run folders."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.fixture(scope="module")
def quality():
    sys.path.insert(0, str(BENCHMARKS))
    spec = importlib.util.spec_from_file_location("quality", BENCHMARKS / "quality.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write_run(
    work: Path, name: str, curves: dict[str, list[tuple[int, float]]], run: str = "screen-mask0"
) -> None:
    """A run (by default on the screen, mask seed 0) whose TTT rows have the given hole-L1
    curves."""
    folder = work / "runs" / name / run
    folder.mkdir(parents=True)
    lines = []
    for photo, curve in curves.items():
        evaluations = [{"step": s, "l1_hole": v, "psnr": 20.0, "ssim": 0.8} for s, v in curve]
        lines.append({"kind": "ttt", "strategy": "default", "image": photo, "seconds": 3.0,
                      "selection": None, "evaluations": evaluations})  # fmt: skip
        telea = [{"step": 0, "l1_hole": 0.2, "psnr": 18.0, "ssim": 0.7}]
        lines.append({"kind": "reference", "strategy": "opencv-telea", "image": photo,
                      "evaluations": telea})  # fmt: skip
    (folder / "results.jsonl").write_text("\n".join(json.dumps(line) for line in lines))


def test_step_reads_the_curve_and_refuses_steps_that_were_not_evaluated(quality, tmp_path):
    write_run(tmp_path, "fixed", {"a.png": [(0, 0.10), (5, 0.08), (10, 0.11)]})
    [returned] = quality.photo_runs(tmp_path, "screen", "fixed")
    [early] = quality.photo_runs(tmp_path, "screen", "fixed", step=5)
    assert returned["ttt_l1_hole"] == pytest.approx(0.11)
    assert early["ttt_l1_hole"] == pytest.approx(0.08)
    with pytest.raises(SystemExit, match="no evaluation at step 7"):
        quality.photo_runs(tmp_path, "screen", "fixed", step=7)


def test_summary_gains_interval_and_worse_share(quality, tmp_path):
    write_run(
        tmp_path,
        "mixed",
        {
            "a.png": [(0, 0.10), (10, 0.09)],
            "b.png": [(0, 0.10), (10, 0.11)],
            "c.png": [(0, 0.20), (10, 0.19)],
        },
    )
    summary = quality.summarize(quality.photo_runs(tmp_path, "screen", "mixed"))
    assert summary["gain_mean"] == pytest.approx((10 - 10 + 5) / 3)
    assert summary["gain_median"] == pytest.approx(5)
    assert summary["worse_share"] == pytest.approx(1 / 3)
    low, high = summary["gain_ci95"]
    assert -10 - 1e-9 <= low <= summary["gain_mean"] <= high <= 10 + 1e-9
    assert summary["raw_vs_telea_percent"] == pytest.approx(100 * (0.2 - 0.4 / 3) / 0.2)


def test_curves_print_the_mean_gain_per_step_and_the_ground_truth_oracle(quality, tmp_path, capsys):
    write_run(
        tmp_path,
        "curve",
        {"a.png": [(0, 0.10), (5, 0.09), (10, 0.12)], "b.png": [(0, 0.10), (5, 0.11), (10, 0.10)]},
    )
    quality.curves(tmp_path, "screen", ["curve"], figure=tmp_path / "curve.png")
    printed = capsys.readouterr().out
    # Step 5: (+10% − 10%) / 2 = 0; step 10: (−20% + 0%) / 2 = −10%.
    gain_row = next(line for line in printed.splitlines() if "gain %" in line)
    assert gain_row.split()[-3:] == ["+0.00", "+0.00", "-10.00"]
    # The oracle takes each photo-run's best step: +10% (step 5) and 0% (step 0 or 10).
    assert "+5.00% mean" in printed
    assert (tmp_path / "curve.png").stat().st_size > 0


def test_a_split_reads_both_mask_seeds_unless_an_interim_reading_names_them(quality, tmp_path):
    write_run(tmp_path, "half", {"a.png": [(0, 0.10), (10, 0.09)]}, run="reporting-mask0")
    with pytest.raises(SystemExit, match=r"mask seed 1\): run it first"):
        quality.photo_runs(tmp_path, "reporting", "half")
    [row] = quality.photo_runs(tmp_path, "reporting", "half", seeds=(0,))
    assert row["mask_seed"] == 0 and row["ttt_l1_hole"] == pytest.approx(0.09)


def test_ring_repeat_error_is_low_where_the_surroundings_recur(quality):
    import cv2
    import numpy as np

    hole = np.zeros((64, 64), bool)
    hole[24:40, 24:40] = True
    ring = cv2.dilate(hole.astype(np.uint8), np.ones((15, 15), np.uint8)).astype(bool) & ~hole
    tile = np.random.default_rng(0).integers(0, 256, (8, 8, 3), np.uint8)
    repeated = np.tile(tile, (8, 8, 1))  # the stride-4 patch grid meets the period 8
    noise = np.random.default_rng(1).integers(0, 256, (64, 64, 3), np.uint8)
    assert quality.ring_repeat_error(repeated, hole, ring) == pytest.approx(0.0, abs=1e-5)
    # Two independent noise patches differ by twice the variance.
    assert quality.ring_repeat_error(noise, hole, ring) > 1.0


def test_compare_pairs_photo_runs_and_averages_training_seeds(quality, tmp_path, capsys):
    # base: two training seeds, gains (10%, 0%) on a and (−10%, 10%) on b: mean 5% and 0%
    write_run(
        tmp_path, "base", {"a.png": [(0, 0.10), (10, 0.09)], "b.png": [(0, 0.10), (10, 0.11)]}
    )
    write_run(
        tmp_path, "base-s1", {"a.png": [(0, 0.10), (10, 0.10)], "b.png": [(0, 0.10), (10, 0.09)]}
    )
    # candidate: 20% on a, 0% on b at step 10; at step 5 it has gained 10% on both
    write_run(tmp_path, "cand", {"a.png": [(0, 0.10), (5, 0.09), (10, 0.08)],
                                  "b.png": [(0, 0.10), (5, 0.09), (10, 0.10)]})  # fmt: skip
    outcome = quality.compare(tmp_path, "screen", ["base", "base-s1"], ["cand"])
    assert outcome["base_gain_mean"] == pytest.approx(2.5)
    assert outcome["candidate_gain_mean"] == pytest.approx(10)
    assert outcome["difference_mean"] == pytest.approx(((20 - 5) + (0 - 0)) / 2)
    assert outcome["candidate_better_share"] == pytest.approx(0.5)
    low, high = outcome["difference_ci95"]
    assert low == pytest.approx(0) and high == pytest.approx(15)
    early = quality.compare(tmp_path, "screen", ["base", "base-s1"], ["cand"], candidate_step=5)
    assert early["difference_mean"] == pytest.approx(((10 - 5) + (10 - 0)) / 2)
    assert "+7.50 points" in capsys.readouterr().out


def test_compare_refuses_runs_on_different_photos(quality, tmp_path):
    write_run(tmp_path, "base", {"a.png": [(0, 0.10), (10, 0.09)]})
    write_run(tmp_path, "other", {"b.png": [(0, 0.10), (10, 0.09)]})
    with pytest.raises(SystemExit, match="different photo-runs"):
        quality.compare(tmp_path, "screen", ["base"], ["other"])
    with pytest.raises(SystemExit, match="different photo-runs"):
        quality.replicate_gains(tmp_path, "screen", ["base", "other"])


def test_gains_by_set_groups_photos_by_their_source_folder(quality, tmp_path):
    write_run(
        tmp_path,
        "sets",
        {
            "pkg__monuments__arch.png": [(0, 0.10), (10, 0.08)],
            "pkg__monuments__tower.png": [(0, 0.10), (10, 0.09)],
            "pkg__animals__cat.png": [(0, 0.10), (10, 0.11)],
            "lomiri_wine.jpg": [(0, 0.10), (10, 0.10)],
        },
    )
    by_set = quality.gains_by_set(quality.photo_runs(tmp_path, "screen", "sets"))
    assert sorted(by_set) == ["other", "pkg/animals", "pkg/monuments"]
    monuments = by_set["pkg/monuments"]
    assert (monuments["photos"], monuments["photo_runs"]) == (2, 2)
    assert monuments["gain_mean"] == pytest.approx(15.0)
    assert monuments["gain_ci95"] == pytest.approx((10.0, 20.0))
    assert by_set["pkg/animals"]["worse_share"] == 1.0
    assert by_set["other"]["gain_mean"] == pytest.approx(0.0)


def test_perceptual_gains_follow_each_metrics_direction(quality, tmp_path):
    folder = tmp_path / "runs" / "perc" / "screen-mask0"
    folder.mkdir(parents=True)
    base = {"l1_hole": 0.10, "psnr": 20.0, "ssim": 0.8}
    rows = [
        # a: LPIPS 0.20 → 0.15 (better, +25%), HaarPSI 0.80 → 0.88 (better, +10%)
        ("a.png", {"lpips": 0.20, "haarpsi": 0.80}, {"lpips": 0.15, "haarpsi": 0.88}),
        # b: LPIPS 0.10 → 0.12 (worse, −20%), HaarPSI 0.90 → 0.81 (worse, −10%)
        ("b.png", {"lpips": 0.10, "haarpsi": 0.90}, {"lpips": 0.12, "haarpsi": 0.81}),
    ]
    lines = []
    for photo, raw, ttt in rows:
        evaluations = [{"step": 0, **base, **raw}, {"step": 10, **base, **ttt}]
        lines.append({"kind": "ttt", "strategy": "default", "image": photo, "seconds": 3.0,
                      "selection": None, "evaluations": evaluations})  # fmt: skip
        telea = [{"step": 0, **base, "l1_hole": 0.2, "lpips": 0.30, "haarpsi": 0.70}]
        lines.append({"kind": "reference", "strategy": "opencv-telea", "image": photo,
                      "evaluations": telea})  # fmt: skip
    (folder / "results.jsonl").write_text("\n".join(json.dumps(line) for line in lines))
    summary = quality.summarize(quality.photo_runs(tmp_path, "screen", "perc"))
    assert set(summary["metrics"]) == {"l1_hole", "lpips", "haarpsi"}  # only what was recorded
    lpips, haarpsi = summary["metrics"]["lpips"], summary["metrics"]["haarpsi"]
    assert lpips["gain_mean"] == pytest.approx((25 - 20) / 2)
    assert lpips["worse_share"] == pytest.approx(0.5)
    assert haarpsi["gain_mean"] == pytest.approx(0.0)
    # the raw fill's LPIPS 0.15 on average against Telea's 0.30: 50% better
    assert lpips["raw_vs_telea_percent"] == pytest.approx(50)
    assert haarpsi["raw_vs_telea_percent"] == pytest.approx(100 * (0.85 - 0.70) / 0.70)
    with pytest.raises(SystemExit, match="did not record gmsd"):
        quality.compare(tmp_path, "screen", ["perc"], ["perc"], metric="gmsd")
    same = quality.compare(tmp_path, "screen", ["perc"], ["perc"], metric="lpips")
    assert same["difference_mean"] == 0 and same["metric"] == "lpips"


def test_grid_shows_a_seeded_sample_with_every_column(quality, tmp_path):
    import cv2
    import numpy as np

    photos = [f"p{i}.png" for i in range(5)]
    for name, rows in (("old", ("none",)), ("new", ("none", "default"))):
        run = tmp_path / "runs" / name / "reporting-mask0"
        for i, photo in enumerate(photos):
            for folder in (
                "inputs",
                "masks",
                "outputs/opencv-telea",
                *(f"outputs/{r}" for r in rows),
            ):
                (run / folder).mkdir(parents=True, exist_ok=True)
                value = 255 if folder == "masks" else 10 * i
                cv2.imwrite(str(run / folder / photo), np.full((32, 32, 3), value, np.uint8))
    columns = ["previous=old/none", "raw=new/none", "TTT=new/default"]
    out = tmp_path / "grid.jpg"
    shown = quality.grid(tmp_path, "reporting", columns, out, photos=3, seed=1)
    assert len(shown) == 3 and set(shown) <= set(photos)
    assert shown == quality.grid(tmp_path, "reporting", columns, tmp_path / "again.jpg", 3, 0, 1)
    # masked input, Telea, three columns, original: 6 tiles a row, one row per photo
    assert cv2.imread(str(out)).shape == (3 * 32, 6 * 32, 3)
    with pytest.raises(SystemExit, match="is missing"):
        quality.grid(tmp_path, "reporting", ["TTT=old/default"], out, photos=3)
    with pytest.raises(SystemExit, match="expected LABEL=CANDIDATE/ROW"):
        quality.grid(tmp_path, "reporting", ["old"], out)


def test_compare_raw_pairs_two_networks_raw_fills(quality, tmp_path):
    # raw hole L1 at step 0: base 0.10 / 0.20, candidate 0.09 / 0.22 → +10% and −10%
    write_run(tmp_path, "base", {"a.png": [(0, 0.10)], "b.png": [(0, 0.20)]})
    write_run(tmp_path, "cand", {"a.png": [(0, 0.09)], "b.png": [(0, 0.22)]})
    result = quality.compare_raw(tmp_path, "screen", "base", "cand")
    assert result["improvement_mean"] == pytest.approx(0.0)
    assert result["candidate_better_share"] == pytest.approx(0.5)
    assert result["base_mean"] == pytest.approx(0.15) and result["photo_runs"] == 2
    low, high = result["improvement_ci95"]
    assert low == pytest.approx(-10) and high == pytest.approx(10)
    write_run(tmp_path, "other", {"a.png": [(0, 0.09)]})
    with pytest.raises(SystemExit, match="different photo-runs"):
        quality.compare_raw(tmp_path, "screen", "base", "other")
