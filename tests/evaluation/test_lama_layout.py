"""`tttkit eval` on LaMa's evaluation layout: ``name.png`` beside ``name_mask000.png``, …"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from tests.evaluation.conftest import SIZE, invoke, make_weights, read_results
from tests.helpers import photo_and_mask
from tttkit.evaluation.inputs import find_items
from tttkit.io import InputError, read_image, write_image

ROWS = ["none", "opencv-telea", "opencv-ns", "default"]
ITEMS = ["a_mask000.png", "a_mask001.png", "sub/b_crop000_mask000.png"]


def _hole(top: int, left: int, side: int = 12, size: int = 32) -> torch.Tensor:
    mask = torch.zeros(1, size, size)
    mask[:, top : top + side, left : left + side] = 1
    return mask


def make_lama_folder(folder: Path) -> Path:
    """LaMa's layout: two photos with masks (one with two, one in a subfolder as
    ``gen_mask_dataset.py`` names them), and a photo without any."""
    image, _ = photo_and_mask(32)
    write_image(folder / "a.png", image)
    write_image(folder / "a_mask000.png", _hole(4, 4))
    write_image(folder / "a_mask001.png", _hole(16, 12))
    write_image(folder / "sub/b_crop000.png", image.flip(-1))
    write_image(folder / "sub/b_crop000_mask000.png", _hole(8, 18))
    write_image(folder / "lonely.png", image.flip(-2))
    return folder


@pytest.fixture
def lama(tmp_path: Path) -> Path:
    return make_lama_folder(tmp_path / "lama")


def test_each_photo_with_each_of_its_masks_is_one_item(lama: Path) -> None:
    found = find_items(lama, None)
    assert found.lama and list(found.items) == ITEMS
    assert found.items["a_mask001.png"].image == lama / "a.png"
    assert found.items["a_mask001.png"].mask == lama / "a_mask001.png"
    assert found.items["sub/b_crop000_mask000.png"].image == lama / "sub/b_crop000.png"
    assert found.without_masks == ["lonely.png"]
    # --masks naming the images folder itself means the same
    assert find_items(lama, lama) == found


def test_lama_layout_refuses_what_it_cannot_pair(lama: Path, tmp_path: Path) -> None:
    write_image(lama / "gone_mask000.png", _hole(0, 0))
    with pytest.raises(InputError, match="gone_mask000.png has no photo"):
        find_items(lama, None)
    plain = tmp_path / "plain"
    write_image(plain / "a.png", read_image(lama / "a.png"))
    with pytest.raises(InputError, match="--masks"):
        find_items(plain, None)


def test_image_and_mask_folders_still_pair_by_stem(tmp_path: Path) -> None:
    image, _ = photo_and_mask(32)
    write_image(tmp_path / "photos/x.jpg", image)
    write_image(tmp_path / "photos/sub/y.png", image)
    write_image(tmp_path / "masks/x.png", _hole(0, 0))
    write_image(tmp_path / "masks/sub/y.png", _hole(4, 4))
    found = find_items(tmp_path / "photos", tmp_path / "masks")
    assert not found.lama and list(found.items) == ["sub/y.png", "x.jpg"]
    assert found.items["x.jpg"].mask == tmp_path / "masks/x.png"
    assert found.without_masks == []


def test_eval_reads_lama_layout_without_masks_option(lama: Path, tmp_path: Path) -> None:
    weights = make_weights(tmp_path / "tiny.safetensors")
    run = tmp_path / "run"
    args = (
        "eval", str(lama), "--strategy", "default", "--out", str(run), "--weights", str(weights),
        "--steps", "1", "--size", str(SIZE), "--seed", "7", "--device", "cpu", "--fid", "off",
        "--json",
    )  # fmt: skip
    code, stdout, stderr = invoke(*args)
    assert code == 0, stderr
    # the photo without a mask is named in one line, not dropped silently
    notes = [line for line in stderr.splitlines() if "lonely.png" in line]
    assert len(notes) == 1 and "1 photo(s)" in notes[0] and "not evaluated" in notes[0]
    records = read_results(run)
    assert [(r["image"], r["strategy"]) for r in records] == [(i, s) for i in ITEMS for s in ROWS]
    assert json.loads(stdout)["pairs"] == len(ITEMS) * len(ROWS)
    assert json.loads((run / "run.json").read_text())["layout"] == "lama"
    # one photo, two masks: the same ground truth, different holes and outputs
    assert torch.equal(
        read_image(run / "inputs/a_mask000.png"), read_image(run / "inputs/a_mask001.png")
    )
    assert not torch.equal(
        read_image(run / "masks/a_mask000.png"), read_image(run / "masks/a_mask001.png")
    )
    assert (run / "outputs/default/sub/b_crop000_mask000.png").is_file()
    # resuming finds every item done; a mask changed since is refused, naming its item
    code, stdout, stderr = invoke(*args, "--resume")
    assert code == 0 and json.loads(stdout)["done_now"] == 0, stderr
    write_image(lama / "a_mask001.png", _hole(0, 0))
    code, _, stderr = invoke(*args, "--resume")
    assert code == 2 and "mask of a_mask001.png changed" in stderr
