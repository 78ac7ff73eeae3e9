from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from tests.evaluation.conftest import SIZE, eval_args, invoke, read_results
from tests.helpers import tiny_backbone
from tttkit.api import adapt
from tttkit.evaluation import runner
from tttkit.evaluation.inputs import prepare_image
from tttkit.evaluation.layout import derive_seed
from tttkit.evaluation.lpips_metric import load_lpips, perceptual_metrics
from tttkit.evaluation.results import comparable, read_records
from tttkit.io import read_image, read_mask, write_image

ROWS = ["none", "opencv-telea", "opencv-ns", "default"]
IMAGES = ["a.png", "b.png", "sub/c.png"]


@pytest.fixture(scope="module")
def finished(dataset: dict[str, Path], vgg_file: Path, tmp_path_factory) -> dict[str, Any]:
    """One complete run: its folder and its --json summary."""
    run = tmp_path_factory.mktemp("runs") / "run"
    code, stdout, stderr = invoke(*eval_args(dataset, run, vgg_file))
    assert code == 0, stderr
    return {"run": run, "summary": json.loads(stdout)}


def _other_precision() -> str:
    """A --precision that differs from what auto resolves to on this machine."""
    from tttkit.engine.execution import native_bf16

    return "fp32" if native_bf16(torch.device("cpu")) else "bf16"


OTHER_PRECISION = _other_precision()


def test_every_image_gets_every_strategy_and_the_reference_rows(
    finished: dict[str, Any],
) -> None:
    run, summary = finished["run"], finished["summary"]
    records = read_results(run)
    assert [(r["image"], r["strategy"]) for r in records] == [(i, s) for i in IMAGES for s in ROWS]
    for record in records:
        steps = [e["step"] for e in record["evaluations"]]
        assert steps == ([0, 1, 2] if record["strategy"] == "default" else [0])
        # the VGG16 file the tests make is not torchvision's: its LPIPS is never called "lpips"
        assert set(record["evaluations"][0]) == {
            "step", "l1", "psnr", "ssim", "l1_hole", "lpips_alt", "haarpsi", "gmsd",
        }  # fmt: skip
        assert (run / record["output"]).is_file()
        features = np.load(run / record["features"])
        assert features.shape == (len(steps), 512)
    assert read_image(run / "inputs/sub/c.png").shape == (3, SIZE, SIZE)
    assert np.load(run / "features/_real/a.npy").shape == (1, 512)
    settings = json.loads((run / "run.json").read_text())
    assert settings["size"] == SIZE and settings["order"] == ROWS
    from tttkit.engine.execution import native_bf16

    auto = "bfloat16" if native_bf16(torch.device("cpu")) else "fp32"
    assert settings["precision"] == auto  # bf16 only on a CPU that computes it natively
    assert settings["fid"]["metric"] == "FID-VGG16"
    assert settings["lpips"]["metric"] == "lpips_alt"
    assert "lpips_alt" in summary["summary"]["default"]["scores"]
    assert "lpips" not in summary["summary"]["default"]["scores"]
    set_metrics = json.loads((run / "set_metrics.json").read_text())
    assert set_metrics["metric"] == "FID-VGG16"
    assert "FID" not in summary["summary"]["none"]["scores"]  # never the plain name
    assert set(set_metrics["values"]["default"]) == {"0", "1", "2"}
    assert summary["pairs"] == 12 and summary["set_metric"] == "FID-VGG16"
    # the classical peers really fill holes (a black fill would score the holes' mean brightness)
    for peer in ("opencv-telea", "opencv-ns"):
        assert summary["summary"][peer]["scores"]["l1_hole"] < 0.15


def test_recorded_metrics_are_the_engines(
    finished: dict[str, Any], dataset, vgg_file: Path
) -> None:
    run = finished["run"]
    record = next(r for r in read_results(run) if r["strategy"] == "default")
    original = prepare_image(read_image(dataset["photos"] / record["image"]), SIZE)
    mask = read_mask(run / "masks" / record["image"])
    result = adapt(
        original, mask, backbone=tiny_backbone(), strategy="default", steps=2,
        sets=["eval_every=1"], ground_truth=original, windows="full",
        seed=derive_seed(7, record["image"], "default"),
    )  # fmt: skip
    for ours, engine in zip(record["evaluations"], result.evaluations, strict=True):
        assert ours["step"] == engine.step
        for name, value in engine.metrics.items():
            assert ours[name] == pytest.approx(value, rel=1e-5, abs=1e-7)
    assert torch.allclose(read_image(run / record["output"]), result.finetuned, atol=1 / 255)
    # the perceptual scores are those of the metric functions on the same completion
    lpips = load_lpips(vgg_file)
    expected = perceptual_metrics(result.finetuned[None], original, lpips)[0]
    assert set(expected) == {"lpips_alt", "haarpsi", "gmsd"}
    for name, value in expected.items():
        assert record["evaluations"][-1][name] == pytest.approx(value, rel=1e-4, abs=1e-6)


def test_interruptions_lose_nothing_and_resuming_duplicates_nothing(
    finished: dict[str, Any], dataset, vgg_file: Path, tmp_path: Path, monkeypatch
) -> None:
    reference = [comparable(r) for r in read_results(finished["run"])]
    run = tmp_path / "run"
    real_run_pair, calls = runner.run_pair, []

    def dies_at_the_sixth_pair(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(1)
        if len(calls) == 6:
            raise KeyboardInterrupt
        return real_run_pair(*args, **kwargs)

    monkeypatch.setattr(runner, "run_pair", dies_at_the_sixth_pair)
    code, _, stderr = invoke(*eval_args(dataset, run, vgg_file))
    assert code == 130 and "--resume" in stderr
    monkeypatch.setattr(runner, "run_pair", real_run_pair)
    shard = run / "shards/rank-00000.jsonl"
    assert len(read_records(shard)) == 5  # everything before the pair in flight
    with shard.open("ab") as handle:  # and a write torn by a power cut
        handle.write(b'{"image": "b.png", "evaluat')

    code, _, stderr = invoke(*eval_args(dataset, run, vgg_file))
    assert code == 2 and "pass --resume" in stderr
    for change, name in ((["--steps", "3"], "steps"), (["--size", "32"], "size"),
                         (["--seed", "8"], "seed"), (["--fid", "off"], "fid"),
                         (["--precision", OTHER_PRECISION], "precision")):  # fmt: skip
        # a repeated option: the last value counts
        code, _, stderr = invoke(*eval_args(dataset, run, vgg_file, "--resume", *change))
        assert code == 2 and "settings differ" in stderr and name in stderr, stderr

    # A run written before a strategy field existed resumes: the field counts at its default.
    settings = json.loads((run / "run.json").read_text())
    for row in settings["rows"].values():
        row.get("strategy", {}).pop("validation_copies", None)
    (run / "run.json").write_text(json.dumps(settings))
    code, stdout, stderr = invoke(*eval_args(dataset, run, vgg_file, "--resume"))
    assert code == 0, stderr
    summary = json.loads(stdout)
    assert (summary["done_before"], summary["done_now"]) == (5, 7)
    assert [comparable(r) for r in read_results(run)] == reference
    assert len(read_records(shard)) == 12

    # lose the end of the results file mid-line: resuming recomputes exactly what is missing
    data = shard.read_bytes()
    cut = [i for i, b in enumerate(data) if b == ord("\n")][7] + 40
    shard.write_bytes(data[:cut])
    (run / "results.jsonl").unlink()
    code, stdout, _ = invoke(*eval_args(dataset, run, vgg_file, "--resume"))
    assert code == 0 and json.loads(stdout)["done_now"] == 4
    assert [comparable(r) for r in read_results(run)] == reference
    assert len(read_records(shard)) == 12
    ours = json.loads((run / "set_metrics.json").read_text())["values"]
    theirs = json.loads((finished["run"] / "set_metrics.json").read_text())["values"]
    assert ours.keys() == theirs.keys()
    for row, values in theirs.items():
        assert ours[row] == pytest.approx(values, rel=1e-9)


def test_bad_inputs_fail_before_any_work(dataset, tmp_path: Path) -> None:
    run = tmp_path / "run"
    args = eval_args(dataset, run, None)
    code, _, stderr = invoke(*[a if a != "default" else "none" for a in args])
    assert code == 2 and "reference row" in stderr
    code, _, stderr = invoke(*[a if a != "default" else "defualt" for a in args])
    assert code == 2 and "default" in stderr
    inside = str(dataset["photos"] / "run")
    code, _, stderr = invoke(*[a if a != str(run) else inside for a in args])
    assert code == 2 and "inside the images folder" in stderr
    code, _, stderr = invoke(*args, "--precision", "half")
    assert code == 2 and "--precision 'half'" in stderr
    masks = tmp_path / "masks"
    for name in ("a.png", "b.png", "sub/c.png"):
        write_image(masks / name, read_mask(dataset["masks"] / name))
    (masks / "b.png").unlink()
    args[args.index(str(dataset["masks"]))] = str(masks)
    code, _, stderr = invoke(*args)
    assert code == 2 and "no mask for 1 image(s): b.png" in stderr
    write_image(masks / "b.png", torch.zeros(1, SIZE, SIZE))
    code, _, stderr = invoke(*args)
    assert code == 2 and "b.png has no holes" in stderr
    assert not (run / "results.jsonl").exists()


def test_report_files_and_numbers_match_the_results(finished: dict[str, Any]) -> None:
    run = finished["run"]
    out = run.parent / "report"
    code, stdout, stderr = invoke("report", str(run), "--out", str(out), "--json")
    assert code == 0, stderr
    files = json.loads(stdout)["files"]
    for name in ("report.html", "report.md", "ranking.md", "ranking.csv", "scores.csv",
                 "curves.png", "histograms.png", "grid-default.png"):  # fmt: skip
        assert Path(files[name]).is_file() and Path(files[name]).stat().st_size > 0
    page = (out / "report.html").read_text()
    assert page.count("data:image/png;base64,") == 3 and 'src="http' not in page
    assert "FID-VGG16" in page and "never with published FIDs" in page
    assert "never with published LPIPS" in page and "LPIPS-alt" in page

    records = read_results(run)
    set_values = json.loads((run / "set_metrics.json").read_text())["values"]
    base = {m: np.mean([r["evaluations"][0][m] for r in records if r["strategy"] == "none"])
            for m in ("l1", "psnr", "ssim", "l1_hole", "lpips_alt", "haarpsi", "gmsd")}  # fmt: skip
    base["FID-VGG16"] = set_values["none"]["0"]
    ranking = (out / "ranking.md").read_text()
    rows = list(csv_rows(out / "ranking.csv"))
    assert {r["metric"] for r in rows} == set(base)
    for row in rows:
        metric, strategy = row["metric"], row["strategy"]
        if metric == "FID-VGG16":
            value = set_values[strategy][row["last_step"]]
            old = set_values[strategy]["0"] if strategy == "default" else base[metric]
        else:
            mine = [r for r in records if r["strategy"] == strategy]
            value = np.mean([r["evaluations"][-1][metric] for r in mine])
            old = np.mean([r["evaluations"][0][metric] for r in mine])
            old = old if strategy == "default" else base[metric]
        lower = metric in ("l1", "l1_hole", "FID-VGG16", "lpips_alt", "gmsd")
        gain = 100 * ((old - value) / old if lower else (value - old) / old)
        assert float(row["value"]) == pytest.approx(value, rel=1e-12)
        assert float(row["improvement_pct"]) == pytest.approx(gain, rel=1e-9, abs=1e-12)
        name = strategy if strategy == "default" else f"*{strategy}*"
        assert f"{name} ({gain:.2f}%)" in ranking
    gains = [float(r["improvement_pct"]) for r in rows if r["metric"] == "l1"]
    assert gains == sorted(gains, reverse=True)  # best first, as in Table 4.1

    code, _, stderr = invoke("report", str(run), "--out", str(out), "--grid-image", "sub/c.png")
    assert code == 0, stderr
    fresh = run.parent / "fresh-report"
    code, _, stderr = invoke("report", str(run), "--grid-image", "nope.png", "--out", str(fresh))
    assert code == 2 and "nope.png" in stderr
    assert not fresh.exists()  # checked before any file was written


def csv_rows(path: Path):  # type: ignore[no-untyped-def]
    import csv

    with path.open() as handle:
        yield from csv.DictReader(handle)


def test_windows_crop_evaluates_as_inpaint_does(dataset, tmp_path: Path) -> None:
    """--windows crop: each photo is completed as `tttkit inpaint` would (windows at the
    backbone's working size, 256 here, inside a 320² image); steps 0 and the last are recorded,
    and the run remembers the mode (a resume with another mode is refused)."""
    masks = tmp_path / "masks320"
    code, _, stderr = invoke("masks", str(dataset["photos"]), "--out", str(masks), "--seed", "3",
                             "--size", "320")  # fmt: skip
    assert code == 0, stderr
    run = tmp_path / "run"
    args = ["eval", str(dataset["photos"]), "--masks", str(masks), "--strategy", "default",
            "--out", str(run), "--weights", str(dataset["weights"]), "--steps", "2",
            "--eval-every", "1", "--size", "320", "--seed", "7", "--device", "cpu", "--fid", "off",
            "--json"]  # fmt: skip
    code, _, stderr = invoke(*args, "--windows", "crop")
    assert code == 0, stderr
    ttt = [r for r in read_results(run) if r["kind"] == "ttt"]
    assert len(ttt) == len(IMAGES)
    # a whole-image run would record steps 0, 1, 2 (--eval-every 1): windows give 0 and last
    assert all([e["step"] for e in r["evaluations"]] == [0, 2] for r in ttt)
    assert json.loads((run / "run.json").read_text())["windows"] == "crop"
    code, _, stderr = invoke(*args, "--windows", "full", "--resume")
    assert code == 2 and "windows" in stderr
    code, _, stderr = invoke(*args, "--windows", "tiles")
    assert code == 2 and "--windows must be one of" in stderr
