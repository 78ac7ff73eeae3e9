"""Ctrl-C says what was kept; a large photo with a small hole costs what the hole costs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from tttkit.checkpoint import save_backbone
from tttkit.cli import app

ENV = {"NO_COLOR": "1", "COLUMNS": "200", "TERM": "dumb"}


def _interrupt(*args: object, **kwargs: object) -> None:
    raise KeyboardInterrupt


def test_ctrl_c_in_inpaint_keeps_the_users_file(zoo, tmp_path: Path, monkeypatch) -> None:
    out = tmp_path / "out.png"
    out.write_bytes(b"kept")
    monkeypatch.setattr("tttkit.api.adapt", _interrupt)  # the command imports it on use
    result = CliRunner().invoke(
        app,
        ["inpaint", str(zoo["photo"]), "--mask", str(zoo["mask"]), "--out", str(out)],
        env=ENV,
    )
    assert result.exit_code == 130
    assert "interrupted" in result.stderr and "nothing was written" in result.stderr
    assert out.read_bytes() == b"kept"


def test_ctrl_c_after_the_raw_fill_keeps_it_and_says_so(zoo, tmp_path: Path, monkeypatch) -> None:
    import torch

    out, raw = tmp_path / "out.png", tmp_path / "raw.png"
    out.write_bytes(b"kept")

    def raw_then_interrupted(image: torch.Tensor, *args: object, **kwargs: object) -> None:
        kwargs["on_raw"](image)  # the run hands over its raw fill, then Ctrl-C mid-finetuning
        raise KeyboardInterrupt

    monkeypatch.setattr("tttkit.api.adapt", raw_then_interrupted)
    args = ["inpaint", str(zoo["photo"]), "--mask", str(zoo["mask"]), "--out", str(out),
            "--save-raw", str(raw)]  # fmt: skip
    result = CliRunner().invoke(app, args, env=ENV)
    assert result.exit_code == 130
    assert f"only the raw fill was written, to {raw}" in " ".join(result.stderr.split())
    assert out.read_bytes() == b"kept" and cv2.imread(str(raw)) is not None


def test_ctrl_c_in_pretrain_says_how_to_resume(zoo, tmp_path: Path, monkeypatch) -> None:
    from tests.helpers import tiny_backbone

    out = tmp_path / "net.safetensors"

    def saved_then_interrupted(*args: object, **kwargs: object) -> None:
        save_backbone(tiny_backbone(), "attention-net-compact", out, {"tttkit.pretrain.step": "7"})
        raise KeyboardInterrupt

    monkeypatch.setattr("tttkit.engine.pretrain.pretrain", saved_then_interrupted)
    args = [
        "pretrain", str(zoo["images"]), "--backbone", "attention-net-compact", "--out", str(out),
        "--holdout", "0", "--loss", "perceptual=0", "--device", "cpu",
    ]  # fmt: skip
    result = CliRunner().invoke(app, args, env=ENV)
    assert result.exit_code == 130
    assert "step 7" in result.stderr and f"--resume {out}" in result.stderr


#: Runs the CLI and reports the process's own peak resident memory (``VmHWM``: the high-water
#: mark of its address space after ``exec``; ``ru_maxrss`` would also count the pages it shared
#: with this large pytest process between fork and exec).
PEAK_REPORTING_CLI = """
import atexit, sys

def report():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                sys.stderr.write("peak-kb " + line.split()[1] + "\\n")

atexit.register(report)
from tttkit.cli import main
sys.argv = ["tttkit", *sys.argv[1:]]
main()
"""


def _inpaint_peak_gb(
    photo: np.ndarray, hole: tuple[slice, slice], folder: Path
) -> tuple[float, dict, np.ndarray, np.ndarray]:
    """Runs ``tttkit inpaint`` (shipped default, 1 step, crop windows) in its own process;
    returns its peak resident memory in GB, its JSON report, the written photo and the mask."""
    folder.mkdir()
    mask = np.zeros(photo.shape[:2], np.uint8)
    mask[hole] = 255
    cv2.imwrite(str(folder / "photo.png"), photo)
    cv2.imwrite(str(folder / "mask.png"), mask)
    out = folder / "out.png"
    command = [
        sys.executable, "-c", PEAK_REPORTING_CLI, "inpaint", str(folder / "photo.png"), "--mask",
        str(folder / "mask.png"), "--out", str(out), "--steps", "1", "--json", "--device", "cpu",
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    peak_gb = int(done.stderr.split("peak-kb ")[-1].split()[0]) * 1024 / 1e9
    return peak_gb, json.loads(done.stdout), cv2.imread(str(out)), mask


def test_small_hole_in_a_large_photo_costs_what_the_hole_costs(tmp_path: Path) -> None:
    """A 30-pixel hole in a 2048×1536 photo and the same hole in a 256² photo (the default's
    working size): the large photo is planned as one 256² window, and its run's peak memory
    exceeds the small photo's by little more than the photo's own pixels (finetuning on the
    whole photo would need many times more)."""
    rng = np.random.default_rng(0)
    large = cv2.resize(rng.integers(0, 256, (12, 16, 3), np.uint8), (2048, 1536))
    hole = (slice(700, 730), slice(1000, 1030))
    small = np.ascontiguousarray(large[600:856, 900:1156])
    small_peak, _, _, _ = _inpaint_peak_gb(
        small, (slice(100, 130), slice(100, 130)), tmp_path / "s"
    )
    large_peak, report, written, mask = _inpaint_peak_gb(large, hole, tmp_path / "l")
    (region,) = report["windows"]
    assert region["window"]["height"] == region["window"]["width"] == 256
    # The photo in uint8 and float32, a few copies of each: about 0.2 GB; not the 10+ GB
    # that training views of the whole photo would take.
    assert large_peak - small_peak < 0.5, f"peak RSS {large_peak:.2f} GB vs {small_peak:.2f} GB"
    # And the whole run stays bounded (1.7 GB measured; the previous version's bound).
    assert large_peak < 2.5, f"peak RSS {large_peak:.2f} GB"
    assert written.shape == large.shape
    known = mask == 0
    assert np.array_equal(written[known], large[known])


@pytest.mark.parametrize("mode", ["resize"])
def test_resize_mode_pastes_only_around_the_holes(tmp_path: Path, mode: str) -> None:
    """The whole photo downscaled, the fill upscaled and blended only near the hole: pixels
    outside the hole stay bit-identical."""
    import torch

    from tests.helpers import tiny_backbone
    from tttkit.api import adapt

    photo = torch.rand(3, 600, 900)
    holes = torch.zeros(1, 600, 900)
    holes[:, 300:320, 400:430] = 1
    result = adapt(photo, holes, backbone=tiny_backbone(), steps=1, windows=mode)
    assert result.windows is not None and result.windows[0]["window"]["scale"] < 1
    known = (holes < 0.5).expand_as(photo)
    assert torch.equal(result.finetuned[known], photo[known])
    assert bool((result.finetuned[:, 300:320, 400:430] != photo[:, 300:320, 400:430]).any())


def test_a_single_window_run_returns_its_network() -> None:
    import torch

    from tests.helpers import tiny_backbone
    from tttkit.api import adapt

    photo, holes = torch.rand(3, 300, 400), torch.zeros(1, 300, 400)
    holes[:, 100:120, 200:230] = 1
    result = adapt(photo, holes, backbone=tiny_backbone(), steps=1)
    assert result.windows is not None and len(result.windows) == 1
    assert result.network is not None and not result.network.training


def test_a_backbone_returning_the_wrong_size_is_named() -> None:
    from tests.helpers import photo_and_mask, tiny_backbone
    from tttkit.api import adapt
    from tttkit.backbone import GeneratorOutput
    from tttkit.errors import PluginContractError

    net = tiny_backbone()
    original = net.generate

    def cropped(image, mask):  # type: ignore[no-untyped-def]
        out = original(image, mask)
        return GeneratorOutput(image=out.image[..., :-2, :-2])

    net.generate = cropped  # type: ignore[method-assign]
    photo, holes = photo_and_mask(64)
    with pytest.raises(PluginContractError, match="returned a fill of shape") as info:
        adapt(photo, holes, backbone=net, steps=1)
    assert "generate() must return an image of its input's size" in str(info.value)


def test_a_backbone_returning_integers_is_named() -> None:
    import torch

    from tests.helpers import photo_and_mask, tiny_backbone
    from tttkit.api import adapt
    from tttkit.backbone import GeneratorOutput
    from tttkit.errors import PluginContractError

    net = tiny_backbone()
    original = net.generate

    def quantized(image, mask):  # type: ignore[no-untyped-def]
        return GeneratorOutput(image=(original(image, mask).image * 255).to(torch.uint8))

    net.generate = quantized  # type: ignore[method-assign]
    photo, holes = photo_and_mask(64)
    with pytest.raises(PluginContractError, match="dtype torch.uint8"):
        adapt(photo, holes, backbone=net, steps=1)
