"""Real-size photos: windows around hole groups, pasted back with the rest untouched."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

import tttkit
from tests.helpers import photo_and_mask
from tttkit.windows import plan_windows


def small_net():  # type: ignore[no-untyped-def]
    from tttkit_backbones.attention_net.backbone import attention_net_compact

    torch.manual_seed(0)
    return attention_net_compact(width=8, residual_blocks=1, working_size=64)


def holes(size: tuple[int, int], *boxes: tuple[int, int, int, int]) -> torch.Tensor:
    mask = torch.zeros(1, *size)
    for top, left, height, width in boxes:
        mask[:, top : top + height, left : left + width] = 1
    return mask


def test_windows_group_nearby_holes_and_stay_inside_the_photo() -> None:
    mask = holes((300, 400), (10, 10, 6, 6), (14, 20, 4, 4), (200, 350, 10, 40), (290, 0, 10, 10))
    windows, labels = plan_windows(mask, working_size=64)
    assert len(windows) == 3  # the two close holes share a window
    for window in windows:
        rows, cols = window.slices
        assert window.top >= 0 and window.left >= 0
        assert rows.stop <= 300 and cols.stop <= 400
        group = torch.from_numpy(labels.dense() == window.label)
        assert group[rows, cols].sum() == group.sum()  # the window holds its whole group
        assert window.network_size() == (64, 64) or window.scale == 1.0


def test_modes() -> None:
    mask = holes((300, 400), (10, 10, 6, 6))
    assert len(plan_windows(mask, 64, "resize")[0]) == 1
    assert plan_windows(mask, 64, "resize")[0][0].network_size() == (64, 85)
    assert plan_windows(mask, 64, "full")[0][0].scale == 1.0
    small = holes((120, 120), (5, 5, 6, 6), (100, 100, 6, 6))  # two groups, but a small photo
    assert len(plan_windows(small, 64, "crop")[0]) == 1
    with pytest.raises(ValueError, match="--windows must be one of"):
        plan_windows(mask, 64, "tiles")


@pytest.mark.parametrize("region", ["crop", "resize"])
def test_pixels_outside_the_holes_are_bit_identical(region: str) -> None:
    image, _ = photo_and_mask(size=160)
    scratch = holes(
        (160, 160), (0, 0, 12, 12), (80, 20, 1, 100), (140, 150, 20, 10)
    )  # border, thin
    result = tttkit.adapt(
        image, scratch, backbone=small_net(), steps=1, windows=region, ground_truth=image,
        sets=["losses.perceptual=0"],
    )  # fmt: skip
    known = scratch.expand_as(image) == 0
    assert torch.equal(result.finetuned[known], image[known])
    assert torch.equal(result.raw[known], image[known])
    assert not torch.equal(result.finetuned[~known], image[~known])  # holes were filled
    assert set(result.metrics(0)) >= {"l1_hole", "psnr"}  # at the photo's resolution
    if region == "crop":
        assert len(result.windows) == 3


def test_huge_photo_runs_in_bounded_memory(tmp_path) -> None:
    """A 4000×3000 photo with a few holes: windows keep memory far below the photo's TTT cost."""
    script = """
import resource, json, torch
import tttkit
from tests.core.test_windows import small_net, holes
def peak_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
image = torch.rand(3, 3000, 4000)
mask = holes((3000, 4000), (100, 100, 40, 60), (2000, 3900, 50, 100), (2950, 10, 50, 50))
net = small_net()
before = peak_mb()
result = tttkit.adapt(image, mask, backbone=net, steps=1, sets=["losses.perceptual=0"])
changed_outside = torch.any((result.finetuned != image) & (mask == 0))
print(json.dumps({"regions": len(result.windows), "identical": not bool(changed_outside),
                  "adapt_mb": peak_mb() - before}))
"""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "-c", script],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=os.getcwd(),
    )
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["regions"] == 3 and report["identical"]
    # The result's two full-size images (raw and finetuned, 144 MB each as float) and the
    # windows' work: well under 1 GB, where TTT at the photo's own size would need tens of GB.
    assert report["adapt_mb"] < 1000, report


def test_downscaled_fill_fades_in_over_a_seam_inside_the_hole() -> None:
    from tttkit.windows import Window, paste, seam_width

    output = torch.zeros(3, 64, 64)  # known pixels: black
    hole = torch.zeros(1, 64, 64, dtype=torch.bool)
    hole[:, 16:48, 16:48] = True
    window = Window(0, 0, 64, 64, 0.5, 1)  # filled at 32², upscaled
    paste(output, torch.ones(3, 32, 32), hole, window)
    assert torch.equal(output[:, ~hole[0]], torch.zeros(3, int((~hole).sum())))  # untouched
    width = seam_width(window)
    assert width == 4
    edge, centre = output[:, 16, 32], output[:, 32, 32]
    assert torch.all(edge < 0.5) and torch.allclose(centre, torch.ones(3))
    row = output[0, 32, 16:33]
    assert torch.all(row[1:] >= row[:-1])  # a monotone fade from the edge inwards
