"""The demo's fills for `default` and `optimal` at a fixed seed are pinned, so that a refactor of
the engine or the options cannot change what tttkit computes without a test saying so. The demo is
downscaled to 128² and `optimal` takes 2 views a step instead of 4, to keep the suite fast;
every code path of the full-size run is still taken.

The pinned hole pixels were made by this test with ``TTTKIT_REPIN=1`` (it then rewrites
``tests/data/pinned/demo_fills.npz`` and fails, so that a repin is always a visible decision).
The runs are fp32 (`--precision auto` picks bf16 on CPUs with native bf16, which differs in the
last bits). Three steps barely move an 8-bit fill, so what training changed is pinned as floats
(finetuned − raw in the holes) and compared relatively. The tolerance allows the last-digit
differences of another CPU's kernels (AVX2 vs AVX-512, thread count), far below what another
seed produces (the test of the tolerance).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import torch

import tttkit
from tests.helpers import photo_and_mask

PINNED = Path(__file__).resolve().parents[1] / "data" / "pinned" / "demo_fills.npz"
STEPS = 3
SIZE = 128
#: The raw fill: mean absolute difference of hole pixels, in 8-bit levels.
RAW_TOLERANCE = 0.25
#: What test-time training changed (finetuned − raw in the holes): relative L2 difference.
DELTA_TOLERANCE = 0.05


#: Views per step: each strategy's own but for `optimal` (4, with VGG features of each).
BATCH_SIZES = {"optimal": 2}


def _fills(strategy: str, seed: int = 0) -> dict[str, np.ndarray]:
    image, mask = photo_and_mask(SIZE)
    extra = {"batch_size": BATCH_SIZES[strategy]} if strategy in BATCH_SIZES else {}
    result = tttkit.adapt(
        image, mask, strategy=strategy, steps=STEPS, seed=seed, device="cpu", precision="fp32",
        **extra,
    )  # fmt: skip
    holes = mask.expand_as(image) > 0.5
    raw = result.raw[holes]
    return {
        f"{strategy}.raw": (raw * 255).round().to(torch.uint8).numpy(),
        f"{strategy}.delta": (result.finetuned[holes] - raw).numpy().astype(np.float32),
    }


def _raw_difference(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.float64) - b.astype(np.float64)).mean())


def _delta_difference(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-12))


@contextmanager
def _perceptual_weights(vgg_file: Path) -> Iterator[None]:
    """`optimal` has a perceptual loss, and `default` uses its optional one when weights exist."""
    previous = os.environ.get("TTTKIT_PERCEPTUAL_WEIGHTS")
    os.environ["TTTKIT_PERCEPTUAL_WEIGHTS"] = str(vgg_file)
    try:
        yield
    finally:
        if previous is None:
            del os.environ["TTTKIT_PERCEPTUAL_WEIGHTS"]
        else:
            os.environ["TTTKIT_PERCEPTUAL_WEIGHTS"] = previous


@pytest.fixture(scope="module")
def fills(vgg_file: Path) -> dict[str, np.ndarray]:
    with _perceptual_weights(vgg_file):
        return {**_fills("default"), **_fills("optimal")}


def test_demo_fills_are_the_pinned_ones(fills: dict[str, np.ndarray]) -> None:
    if os.environ.get("TTTKIT_REPIN") == "1":
        PINNED.parent.mkdir(parents=True, exist_ok=True)
        # float16 keeps the deltas to ~1e-3 relative, far inside the tolerance, at half the size
        np.savez_compressed(
            PINNED,
            **{k: v.astype(np.float16) if v.dtype == np.float32 else v for k, v in fills.items()},
        )
        pytest.fail(f"repinned {PINNED}: commit it if the change of output is intended")
    pinned = np.load(PINNED)
    assert sorted(pinned.files) == sorted(fills)
    for name in ("default", "optimal"):
        raw = _raw_difference(fills[f"{name}.raw"], pinned[f"{name}.raw"])
        delta = _delta_difference(
            fills[f"{name}.delta"], pinned[f"{name}.delta"].astype(np.float32)
        )
        assert raw <= RAW_TOLERANCE and delta <= DELTA_TOLERANCE, (name, raw, delta)


def test_the_tolerance_tells_another_seed_apart(
    fills: dict[str, np.ndarray], vgg_file: Path
) -> None:
    with _perceptual_weights(vgg_file):
        other = _fills("default", seed=1)["default.delta"]
    assert _delta_difference(other, fills["default.delta"]) > 4 * DELTA_TOLERANCE
