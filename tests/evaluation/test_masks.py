from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.evaluation.conftest import invoke
from tttkit.evaluation.masks import simulate_mask
from tttkit.io import read_mask


def test_masks_are_deterministic_per_key_and_seed() -> None:
    first = simulate_mask("a.jpg", seed=1, size=64)
    assert torch.equal(first, simulate_mask("a.jpg", seed=1, size=64))
    assert not torch.equal(first, simulate_mask("b.jpg", seed=1, size=64))
    assert not torch.equal(first, simulate_mask("a.jpg", seed=2, size=64))
    assert first.shape == (1, 64, 64) and set(first.unique().tolist()) <= {0.0, 1.0}


def test_mean_coverage_is_near_the_target() -> None:
    coverages = [float(simulate_mask(f"img{i}.jpg", seed=0, size=64).mean()) for i in range(30)]
    assert abs(np.mean(coverages) - 0.29) < 0.02
    assert min(coverages) > 0.17 and max(coverages) < 0.41  # targets spread over 0.29 ± 0.10
    assert np.std(coverages) > 0.02  # sizes vary like a user's
    high = [float(simulate_mask(f"img{i}.jpg", 0, 64, coverage=0.5).mean()) for i in range(10)]
    assert abs(np.mean(high) - 0.5) < 0.03


def test_masks_command_names_files_after_images_and_ignores_other_images(
    photos: Path, tmp_path: Path
) -> None:
    out = tmp_path / "m1"
    code, stdout, _ = invoke("masks", str(photos), "--out", str(out), "--seed", "5",
                             "--size", "32", "--json")  # fmt: skip
    assert code == 0
    assert json.loads(stdout)["masks"] == 3
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.png")) == [
        "a.png", "b.png", "sub/c.png",
    ]  # fmt: skip
    manifest = json.loads((out / "masks.json").read_text())
    assert manifest["seed"] == 5 and set(manifest["masks"]) == {"a.png", "b.png", "sub/c.png"}
    assert read_mask(out / "a.png").shape == (1, 32, 32)
    # adding a photo leaves the other masks unchanged
    (photos / "b.png").rename(photos / "a0.png")
    again = tmp_path / "m2"
    assert invoke("masks", str(photos), "--out", str(again), "--seed", "5", "--size", "32")[0] == 0
    assert (again / "a.png").read_bytes() == (out / "a.png").read_bytes()
    assert (again / "sub/c.png").read_bytes() == (out / "sub/c.png").read_bytes()


def test_masks_are_never_written_among_the_photos(photos: Path) -> None:
    code, _, stderr = invoke("masks", str(photos), "--out", str(photos / "masks"))
    assert code == 2 and "inside the images folder" in stderr
    assert not (photos / "masks").exists()


@pytest.mark.parametrize("coverage", ["0", "0.95"])
def test_masks_command_rejects_bad_coverage(photos: Path, tmp_path: Path, coverage: str) -> None:
    code, _, _ = invoke("masks", str(photos), "--out", str(tmp_path / "m"), "--coverage", coverage)
    assert code == 2
