"""Property-based hostility: any option value, any bytes, any pixel array, any mask — a clean
answer or a typed error that names the problem, never a crash from deep inside."""

from __future__ import annotations

import math
import tempfile
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import tttkit
from tttkit.api import check_photo
from tttkit.config import SpecError
from tttkit.io import InputError, read_image, read_mask
from tttkit.windows import plan_windows, responsible_holes

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope="module")
def default_spec() -> tttkit.StrategySpec:
    return tttkit.get_strategy("default")


@SETTINGS
@given(lr=st.floats(allow_nan=True, allow_infinity=True), steps=st.integers(-5, 10**20))
def test_numeric_overrides_are_checked(default_spec, lr: float, steps: int) -> None:
    try:
        spec = tttkit.override(default_spec, lr=lr, steps=steps)
    except SpecError as exc:
        assert "lr" in str(exc) or "steps" in str(exc)
        assert not (math.isfinite(lr) and lr >= 0 and steps >= 0)
    else:
        assert spec.optim.lr == lr and math.isfinite(spec.optim.lr) and spec.steps == steps


PATHS = [
    "steps",
    "optim.lr",
    "optim.betas",
    "losses.l1",
    "select",
    "augment.p",
    "batch_size",
    "weight_average",
    "finetune_mask.params.alpha",
    "filler.name",
    "nonsense.path",
]
TRICKY = [
    "NaN",
    "Infinity",
    "-Infinity",
    "-1",
    "1e999",
    "[2,0.9]",
    "true",
    "null",
    "{}",
    "[]",
    "0.5",
    "3",
    '"best"',
]
VALUES = st.one_of(st.text(max_size=12), st.sampled_from(TRICKY))


@SETTINGS
@given(path=st.sampled_from(PATHS), value=VALUES)
def test_set_overrides_are_checked(default_spec, path: str, value: str) -> None:
    try:
        spec = tttkit.override(default_spec, sets=[f"{path}={value}"])
    except SpecError as exc:
        assert str(exc)  # a message, naming the field or the option
    else:
        assert math.isfinite(spec.optim.lr) and spec.steps >= 0


@SETTINGS
@given(data=st.binary(max_size=300), suffix=st.sampled_from([".png", ".jpg", ".tiff", ".bmp"]))
def test_any_bytes_are_an_image_or_an_input_error(data: bytes, suffix: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"drop{suffix}"
        path.write_bytes(data)
        try:
            image = read_image(path)
        except InputError as exc:
            assert str(path) in str(exc)
        else:
            assert image.shape[0] == 3 and bool(torch.isfinite(image).all())


PIXELS = st.one_of(
    arrays(np.uint8, st.tuples(st.integers(1, 12), st.integers(1, 12), st.sampled_from([1, 3, 4]))),
    arrays(np.uint16, st.tuples(st.integers(1, 12), st.integers(1, 12))),
    arrays(np.float32, st.tuples(st.integers(1, 12), st.integers(1, 12), st.just(3)),
           elements=st.one_of(st.floats(-2, 2, width=32), st.sampled_from([math.nan, math.inf]))),
)  # fmt: skip


@SETTINGS
@given(pixels=PIXELS)
def test_pixel_arrays_of_any_depth_read_in_range(pixels: np.ndarray) -> None:
    suffix = ".tiff" if pixels.dtype == np.float32 else ".png"
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"pixels{suffix}"
        assert cv2.imwrite(str(path), pixels)
        try:
            image = read_image(path)
        except InputError as exc:
            assert "not finite" in str(exc) and not np.isfinite(pixels).all()
            return
        assert image.shape == (3, *pixels.shape[:2])
        assert float(image.min()) >= 0.0 and float(image.max()) <= 1.0
        try:
            mask = read_mask(path)
        except InputError as exc:
            assert "marks no hole" in str(exc)
        else:
            assert set(mask.unique().tolist()) <= {0.0, 1.0}


@SETTINGS
@given(
    shape=st.lists(st.integers(0, 40), min_size=1, max_size=4),
    dtype=st.sampled_from([torch.float32, torch.float64, torch.uint8, torch.int64, torch.bool]),
)
def test_photo_shapes_and_dtypes_are_checked(shape: list[int], dtype: torch.dtype) -> None:
    image = torch.zeros(shape, dtype=dtype)
    try:
        check_photo(image, "drop")
    except InputError as exc:
        assert "drop" in str(exc)
    else:
        assert image.dim() == 3 and image.shape[0] == 3 and min(image.shape[1:]) >= 16


@SETTINGS
@given(
    height=st.integers(16, 700),
    width=st.integers(16, 700),
    holes=st.lists(st.tuples(st.floats(0, 1), st.floats(0, 1), st.integers(1, 60)), max_size=5),
    mode=st.sampled_from(["crop", "resize"]),
)
def test_windows_cover_every_hole_at_bounded_size(height, width, holes, mode) -> None:
    working = 128
    mask = torch.zeros(1, height, width)
    for fy, fx, size in holes:
        top, left = int(fy * (height - 1)), int(fx * (width - 1))
        mask[:, top : top + size, left : left + size] = 1
    windows, labels = plan_windows(mask, working, mode)
    covered = torch.zeros(1, height, width, dtype=torch.bool)
    for window in windows:
        assert window.top >= 0 and window.left >= 0
        assert window.top + window.height <= height and window.left + window.width <= width
        net_h, net_w = window.network_size()
        assert net_h * net_w <= 4 * working * working  # bounded whatever the photo
        rows, cols = window.slices
        covered[:, rows, cols] |= responsible_holes(mask, labels, window)
    assert torch.equal(covered, mask > 0.5)
