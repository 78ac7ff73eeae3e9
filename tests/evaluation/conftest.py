"""Fixtures of the evaluation tests: a few small photos, their masks, a tiny checkpoint."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tests.helpers import photo_and_mask, tiny_backbone
from tttkit.checkpoint import save_backbone
from tttkit.cli import app
from tttkit.io import write_image

ENV = {"NO_COLOR": "1", "COLUMNS": "200", "TERM": "dumb"}
#: Working size of the tests: small, and a multiple of the tiny backbone's padding (16).
SIZE = 48


def invoke(*args: str) -> tuple[int, str, str]:
    """Run the CLI in-process; (exit code, stdout, stderr)."""
    result = CliRunner().invoke(app, list(args), env=ENV)
    return result.exit_code, result.stdout, result.stderr


def make_photos(folder: Path) -> Path:
    """Three non-square photos (crops of the demo street), one in a subfolder."""
    image, _ = photo_and_mask(96)
    crops = {"a.png": image[:, :72, :], "b.png": image[:, 24:, :].flip(-1), "sub/c.png": image}
    for name, crop in crops.items():
        write_image(folder / name, crop)
    return folder


def make_weights(path: Path) -> Path:
    """A tiny attention network, saved as a tttkit checkpoint."""
    save_backbone(tiny_backbone(), "attention-net-compact", path)
    return path


def make_masks(photos: Path, out: Path) -> Path:
    """Simulated masks of the photos (seed 3) at the test size."""
    code, _, stderr = invoke("masks", str(photos), "--out", str(out), "--seed", "3",
                             "--size", str(SIZE))  # fmt: skip
    assert code == 0, stderr
    return out


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    return make_photos(tmp_path / "photos")


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Photos, masks and weights shared by the tests of one module (never modified)."""
    root = tmp_path_factory.mktemp("dataset")
    photos = make_photos(root / "photos")
    return {
        "photos": photos,
        "masks": make_masks(photos, root / "masks"),
        "weights": make_weights(root / "tiny.safetensors"),
    }


def eval_args(data: dict[str, Path], out: Path, vgg: Path | None, *extra: str) -> list[str]:
    """Arguments of a small `tttkit eval` run: one strategy, 2 steps, evaluated at each."""
    fid = ["--perceptual-weights", str(vgg)] if vgg is not None else ["--fid", "off"]
    return [
        "eval", str(data["photos"]), "--masks", str(data["masks"]), "--strategy", "default",
        "--out", str(out), "--weights", str(data["weights"]), "--steps", "2",
        "--eval-every", "1", "--size", str(SIZE), "--seed", "7", "--device", "cpu", "--json",
        *fid, *extra,
    ]  # fmt: skip


def read_results(run: Path) -> list[dict[str, Any]]:
    """The merged results of a run."""
    return [json.loads(line) for line in (run / "results.jsonl").read_text().splitlines()]
