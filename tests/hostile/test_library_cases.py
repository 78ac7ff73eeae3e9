"""The library entry points given bad or odd input: a typed error whose message names the
culprit (never a deep torch or OpenCV error), or the documented behaviour."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image, ImageOps

import tttkit
from tests.helpers import photo_and_mask, tiny_backbone
from tttkit.api import adapt
from tttkit.checkpoint import CheckpointError, load_backbone, load_weights
from tttkit.config import SpecError, StrategySpec
from tttkit.io import (
    InputError,
    check_output_file,
    pixel_limit,
    read_image,
    read_mask,
    write_image,
)
from tttkit.registry import UnknownNameError


def _adapt(image: Any = None, mask: Any = None, **options: Any) -> Any:
    photo, holes = photo_and_mask(64)
    options.setdefault("steps", 1)
    return adapt(
        photo if image is None else image, holes if mask is None else mask,
        backbone=tiny_backbone(), **options,
    )  # fmt: skip


def _nan_photo() -> torch.Tensor:
    photo, _ = photo_and_mask(64)
    photo[0, 5, 5] = float("nan")
    return photo


LIBRARY_CASES: list[tuple[str, Callable[[dict[str, Path]], Any], type[Exception], str]] = [
    ("read-fifo", lambda z: read_image(z["fifo"]), InputError, "not a regular file"),
    ("read-bomb", lambda z: read_image(z["bomb"]), InputError, "megapixels"),
    ("read-limit", lambda z: read_image(z["photo"], max_pixels=100), InputError, "64×64"),
    ("read-nan-tiff", lambda z: read_image(z["nan"]), InputError, "not finite"),
    ("read-truncated", lambda z: read_image(z["truncated"]), InputError, "truncated"),
    ("read-empty", lambda z: read_image(z["empty"]), InputError, "empty file"),
    ("read-dtype", lambda z: read_image(z["photo"], dtype=torch.int32), ValueError, "dtype"),
    ("mask-zero-one", lambda z: read_mask(z["mask01"]), InputError, "0/255"),
    ("mask-size", lambda z: read_mask(z["mask"], size=(32, 32)), InputError, "64×64"),
    ("adapt-nan-pixels", lambda z: _adapt(_nan_photo()), InputError, "not finite"),
    (
        "adapt-too-small",
        lambda z: _adapt(torch.rand(3, 8, 8), torch.ones(1, 8, 8)),
        InputError,
        "too small",
    ),
    ("adapt-grey-shape", lambda z: _adapt(torch.rand(64, 64)), InputError, "(3, H, W)"),
    (
        "adapt-int64",
        lambda z: _adapt(torch.zeros(3, 64, 64, dtype=torch.int64)),
        InputError,
        "int64",
    ),
    ("adapt-mask-shape", lambda z: _adapt(mask=torch.zeros(1, 32, 32)), InputError, "mask"),
    ("adapt-windows", lambda z: _adapt(windows="bogus"), InputError, "--windows"),
    ("adapt-unknown-override", lambda z: _adapt(stpes=3), TypeError, "stpes"),
    ("adapt-lr-inf", lambda z: _adapt(lr=float("inf")), SpecError, "finite"),
    ("adapt-set-nan", lambda z: _adapt(sets=["optim.lr=NaN"]), SpecError, "optim.lr"),
    ("adapt-no-room", lambda z: _adapt(mask=_frame_mask()), InputError, "too little"),
    ("spec-negative-steps", lambda z: StrategySpec("x", steps=-1), SpecError, "steps"),
    (
        "spec-nan-weight",
        lambda z: tttkit.get_strategy("default").derive("y", "", {"losses.l1": float("nan")}),
        SpecError,
        "losses.l1",
    ),
    ("strategy-unknown", lambda z: tttkit.get_strategy("defualt"), UnknownNameError, "default"),
    ("load-backbone-text", lambda z: load_backbone(z["junk"]), CheckpointError, "junk.pt"),
    (
        "load-weights-directory",
        lambda z: load_weights(tiny_backbone(), z["weights_dir"]),
        CheckpointError,
        "directory",
    ),
    (
        "load-weights-pickle",
        lambda z: load_weights(tiny_backbone(), z["evil"]),
        CheckpointError,
        "weights_only",
    ),
    (
        "write-bad-suffix",
        lambda z: write_image(z["photo"].with_suffix(".xyz"), torch.rand(3, 4, 4)),
        InputError,
        ".xyz",
    ),
    (
        "output-over-input",
        lambda z: check_output_file(z["photo"], "--out", inputs=[("IMAGE", z["photo"])]),
        InputError,
        "same file",
    ),
    ("pixel-limit-env", lambda z: pixel_limit(-5), InputError, "positive"),
]


def _frame_mask() -> torch.Tensor:
    """Holes everywhere but a thin frame: no room away from them for finetuning masks."""
    mask = torch.ones(1, 64, 64)
    mask[:, :2], mask[:, :, :2] = 0, 0
    return mask


@pytest.mark.parametrize(
    ("call", "error", "says"),
    [c[1:] for c in LIBRARY_CASES],
    ids=[c[0] for c in LIBRARY_CASES],
)
def test_hostile_library_call(
    call: Callable[[dict[str, Path]], Any], error: type[Exception], says: str, zoo
) -> None:
    with pytest.raises(error) as info:
        call(zoo)
    assert says in str(info.value)
    assert not (zoo["photo"].parent / "pwned.txt").exists()


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    """A phone photo stored sideways with an orientation tag is read as viewers show it."""
    pixels = (np.random.default_rng(0).random((20, 30, 3)) * 255).astype(np.uint8)
    for orientation in range(1, 9):
        image = Image.fromarray(pixels)
        exif = image.getexif()
        exif[0x0112] = orientation
        path = tmp_path / f"o{orientation}.png"
        image.save(path, exif=exif)
        with Image.open(path) as stored:
            expected = np.asarray(ImageOps.exif_transpose(stored).convert("RGB"))
        read = (read_image(path) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
        assert np.array_equal(read, expected), orientation
        upright = read_image(path, dtype=torch.uint8).permute(1, 2, 0).numpy()
        assert np.array_equal(upright, expected), orientation


def test_sixteen_bit_and_float_images_are_read(tmp_path: Path) -> None:
    import cv2

    grey16 = np.full((16, 16), 65535 // 4, np.uint16)
    cv2.imwrite(str(tmp_path / "g16.png"), grey16)
    assert torch.allclose(
        read_image(tmp_path / "g16.png"), torch.full((3, 16, 16), 0.25), atol=1e-4
    )
    colour = np.zeros((16, 16, 3), np.float32)
    colour[..., 2] = 0.75  # OpenCV writes BGR: red
    cv2.imwrite(str(tmp_path / "f.tiff"), colour)
    image = read_image(tmp_path / "f.tiff")
    assert image.shape == (3, 16, 16) and torch.allclose(image[0], torch.tensor(0.75))
    assert read_image(tmp_path / "f.tiff", dtype=torch.uint8)[0, 0, 0] == 191


def test_divergent_training_keeps_the_raw_fill() -> None:
    result = _adapt(steps=4, lr=1e30)
    assert torch.equal(result.finetuned, result.raw)
    assert result.selection.diverged_at == 2 and result.network is None
    assert any("at step 2" in n and "raw fill" in n for n in result.notices)


def test_uint8_photo_keeps_known_pixels_and_dtype() -> None:
    photo, holes = photo_and_mask(64)
    pixels = (photo * 255).round().to(torch.uint8)
    result = adapt(pixels, holes, backbone=tiny_backbone(), steps=1)
    assert result.finetuned.dtype == torch.uint8 and result.raw.dtype == torch.uint8
    known = (holes < 0.5).expand_as(pixels)
    assert torch.equal(result.finetuned[known], pixels[known])


def test_batched_shapes_of_one_are_still_accepted() -> None:
    """``(1, 3, H, W)`` photos and ``(1, 1, H, W)`` masks, as the engine always took them."""
    photo, holes = photo_and_mask(64)
    result = adapt(photo[None], holes[None], backbone=tiny_backbone(), steps=1)
    assert result.finetuned.shape == photo.shape
