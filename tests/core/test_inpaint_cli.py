from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from tests.helpers import photo_and_mask, tiny_backbone
from tttkit.checkpoint import save_backbone
from tttkit.cli import app
from tttkit.io import read_image, write_image

ENV = {"NO_COLOR": "1", "COLUMNS": "200", "TERM": "dumb"}


@pytest.fixture
def files(tmp_path: Path, perceptual_env: Path) -> dict[str, Path]:
    image, mask = photo_and_mask()
    paths = {
        "image": tmp_path / "photo.png",
        "mask": tmp_path / "mask.png",
        "weights": tmp_path / "tiny.safetensors",
    }
    write_image(paths["image"], image)
    write_image(paths["mask"], mask)
    save_backbone(tiny_backbone(), "attention-net-compact", paths["weights"])
    return paths


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["inpaint", *args], env=ENV)
    return result.exit_code, result.stdout, result.stderr


def test_inpaint_writes_outputs_and_reports_json(files: dict[str, Path], tmp_path: Path) -> None:
    out, raw = tmp_path / "out.png", tmp_path / "raw.png"
    code, stdout, _ = invoke(
        str(files["image"]), "--mask", str(files["mask"]), "--weights", str(files["weights"]),
        "--steps", "2", "--out", str(out), "--save-raw", str(raw), "--ground-truth",
        str(files["image"]), "--device", "cpu", "--json", "--select", "best", "--refit",
    )  # fmt: skip
    assert code == 0, stdout
    summary = json.loads(stdout)
    selection = summary["selection"]  # a chosen step > 0 was rerun on the whole known region
    assert ("refit" in selection) == (selection["chosen_step"] > 0)
    assert summary["output_step"] == selection["chosen_step"]
    assert summary["output"] == str(out) and summary["steps"] == 2
    assert summary["strategy"] == "default"
    # the perceptual loss's VGG16 (a file the tests make) scores LPIPS-alt, never "lpips"
    assert set(summary["metrics"]["raw"]) == {
        "l1", "psnr", "ssim", "l1_hole", "lpips_alt", "haarpsi", "gmsd",
    }  # fmt: skip
    assert set(summary["metrics"]["finetuned"]) == set(summary["metrics"]["raw"])
    assert summary["metrics"]["raw"]["lpips_alt"] > 0 and summary["metrics"]["raw"]["gmsd"] > 0
    assert read_image(out).shape == (3, 64, 64) and raw.exists()
    image = read_image(files["image"])
    known = read_image(files["mask"])[0:1].expand_as(image) < 0.5
    assert torch.allclose(read_image(out)[known], image[known], atol=1 / 255)


def test_save_raw_is_written_before_finetuning(
    files: dict[str, Path], tmp_path: Path, monkeypatch
) -> None:
    import tttkit.engine.loop as loop

    out, raw = tmp_path / "out.png", tmp_path / "raw.png"
    seen_at_step: list[bool] = []
    real_step = loop._Run.step

    def step(run, number):  # type: ignore[no-untyped-def]
        seen_at_step.append(raw.exists())
        return real_step(run, number)

    monkeypatch.setattr(loop._Run, "step", step)
    code, _, stderr = invoke(
        str(files["image"]), "--mask", str(files["mask"]), "--weights", str(files["weights"]),
        "--steps", "2", "--out", str(out), "--save-raw", str(raw), "--device", "cpu",
    )  # fmt: skip
    assert code == 0, stderr
    assert seen_at_step == [True, True]  # on disk before the first finetuning step
    assert "raw fill written to" in stderr and out.exists()


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda p: p["image"].unlink(), "photo.png does not exist"),
        (lambda p: write_image(p["mask"], torch.zeros(1, 32, 32)), "pass --resize-mask"),
        (lambda p: write_image(p["mask"], torch.ones(1, 64, 64)), "covers 100% of the image"),
        (lambda p: p["weights"].write_bytes(b"junk"), "not a readable safetensors file"),
    ],
)
def test_bad_input_fails_cleanly_and_writes_nothing(
    files: dict[str, Path], tmp_path: Path, mutate, message: str
) -> None:
    mutate(files)
    out = tmp_path / "never.png"
    code, _, stderr = invoke(
        str(files["image"]), "--mask", str(files["mask"]), "--weights", str(files["weights"]),
        "--steps", "1", "--out", str(out),
    )  # fmt: skip
    assert code == 2 and message in stderr
    assert not out.exists()


def test_resize_mask_and_empty_mask_notice(files: dict[str, Path], tmp_path: Path) -> None:
    write_image(files["mask"], torch.zeros(1, 32, 32))
    out = tmp_path / "out.png"
    code, _, stderr = invoke(
        str(files["image"]), "--mask", str(files["mask"]), "--weights", str(files["weights"]),
        "--resize-mask", "--out", str(out),
    )  # fmt: skip
    assert code == 0 and "nothing to fill" in stderr
    assert torch.allclose(read_image(out), read_image(files["image"]), atol=1 / 255)


def test_missing_weights_explain_what_to_do(files: dict[str, Path]) -> None:
    code, _, stderr = invoke(
        str(files["image"]), "--mask", str(files["mask"]), "--backbone", "attention-net-small"
    )
    assert code == 2 and "no weights for backbone 'attention-net-small'" in stderr


def test_missing_perceptual_weights_explain_what_to_do(
    files: dict[str, Path], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("TTTKIT_PERCEPTUAL_WEIGHTS")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty-hub"))
    code, _, stderr = invoke(
        str(files["image"]), "--mask", str(files["mask"]), "--weights", str(files["weights"]),
        "--steps", "1", "--strategy", "optimal",
    )  # fmt: skip
    assert code == 2 and "--perceptual-weights" in stderr and "losses.perceptual=0" in stderr


def test_without_vgg_weights_the_default_runs_and_says_its_perceptual_term_is_off(
    files: dict[str, Path], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("TTTKIT_PERCEPTUAL_WEIGHTS")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty-hub"))
    out = tmp_path / "filled.png"
    code, _, stderr = invoke(
        str(files["image"]), "--mask", str(files["mask"]), "--weights", str(files["weights"]),
        "--steps", "1", "--out", str(out),
    )  # fmt: skip
    assert code == 0 and out.is_file()
    assert "without its perceptual term" in stderr and "--perceptual-weights" in stderr


def test_a_missing_lpips_trunk_fails_before_the_run(files: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "never.png"
    code, _, stderr = invoke(
        str(files["image"]), "--mask", str(files["mask"]), "--weights", str(files["weights"]),
        "--steps", "1", "--out", str(out), "--ground-truth", str(files["image"]),
        "--lpips-weights", str(tmp_path / "nope.pth"),
    )  # fmt: skip
    assert code == 2 and "--lpips-weights" in stderr and "nope.pth is not a file" in stderr
    assert not out.exists()


def test_companions_are_picked_by_exif_and_listed_with_reasons(tmp_path: Path) -> None:
    from tests.core.test_companions import _photo

    folder = tmp_path / "trip"
    folder.mkdir()
    photo = _photo(folder / "target.jpg")
    _photo(folder / "near.jpg", "2026:07:01 12:00:30")
    _photo(folder / "later.jpg", "2026:07:01 15:00:00")
    mask = torch.zeros(1, 24, 32)
    mask[:, 8:14, 10:20] = 1
    write_image(tmp_path / "mask.png", mask)
    weights = tmp_path / "tiny.safetensors"
    save_backbone(tiny_backbone(), "attention-net-compact", weights)
    code, _, stderr = invoke(
        str(photo), "--mask", str(tmp_path / "mask.png"), "--weights", str(weights),
        "--steps", "1", "--out", str(tmp_path / "out.png"), "--companions", str(folder),
        "--device", "cpu",
    )  # fmt: skip
    text = " ".join(stderr.split())
    assert code == 0, stderr
    assert "companion taken near.jpg: taken 30 s apart, same camera" in text
    assert "companion left later.jpg: taken 3.0 h apart (more than 10 min)" in text
    # random pixels share no features with the photo: the shot is aligned, found not to
    # match, and skipped, with a notice
    assert "reference near.jpg: skipped" in text and "finetuned on the photo alone" in text


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--reference", "missing.jpg", "--reference {dir}/missing.jpg: no such file"),
        ("--references", "empty", "--references {dir}/empty: no photo in it"),
        ("--companions", "photo.png", "--companions {dir}/photo.png: not a folder"),
    ],
)
def test_bad_reference_options_are_named_before_any_work(
    files: dict[str, Path], tmp_path: Path, option: str, value: str, message: str
) -> None:
    (tmp_path / "empty").mkdir()
    out = tmp_path / "out.png"
    code, _, stderr = invoke(
        str(files["image"]), "--mask", str(files["mask"]), "--weights", str(files["weights"]),
        "--out", str(out), option, str(tmp_path / value),
    )  # fmt: skip
    assert code != 0 and message.format(dir=tmp_path) in " ".join(stderr.split())
    assert not out.exists()
