"""The README's first command works offline with the shipped default weights."""

from __future__ import annotations

import importlib.resources
import re
from pathlib import Path

import torch
from typer.testing import CliRunner

import tttkit
from tttkit.cli import app
from tttkit.io import read_image, read_mask

REPO = Path(__file__).resolve().parents[2]
DEMO = Path(str(importlib.resources.files("tttkit") / "data" / "demo"))


def test_default_backbone_ships_its_weights() -> None:
    entry = tttkit.backbones().entry("attention-net-compact")
    weights = Path(entry.extra["weights"])
    assert weights.is_file() and weights.stat().st_size <= 20 * 2**20  # ≤ 20 MB in the package
    from tttkit.checkpoint import read_metadata

    assert read_metadata(weights)["tttkit.backbone"] == "attention-net-compact"


def test_readme_inpaints_the_bundled_demo() -> None:
    first = (REPO / "README.md").read_text().split("## Quick start", 1)[1]
    command = re.search(r"```bash\n(.*?)\n", first).group(1)
    assert "tttkit inpaint src/tttkit/data/demo/street.jpg" in command
    assert "--mask src/tttkit/data/demo/street_mask.png" in command


def test_inpaint_with_no_weights_argument(tmp_path: Path) -> None:
    """`tttkit inpaint IMG --mask M` with the bundled weights, shortened to 2 steps."""
    out = tmp_path / "street_filled.png"
    result = CliRunner().invoke(
        app,
        ["inpaint", str(DEMO / "street.jpg"), "--mask", str(DEMO / "street_mask.png"),
         "--out", str(out), "--steps", "2", "--device", "cpu", "--json"],
        env={"NO_COLOR": "1", "COLUMNS": "200"},
    )  # fmt: skip
    assert result.exit_code == 0, result.stdout + result.stderr
    image, mask = read_image(DEMO / "street.jpg"), read_mask(DEMO / "street_mask.png")
    filled = read_image(out)
    known = mask.expand_as(image) == 0
    assert torch.allclose(filled[known], image[known], atol=1 / 255)
    assert (filled[~known] - image[~known]).abs().mean() < 0.25  # a fill, not noise
