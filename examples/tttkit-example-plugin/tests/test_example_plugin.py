"""The example plugin's own tests: tttkit's plugin kit checks its backbone against the engine's
contract (run them with `pytest` in this folder after `pip install -e .`)."""

from __future__ import annotations

from pathlib import Path

from tttkit_example_plugin import TinyUNet

from tttkit.testing import check_backbone


def test_tiny_unet_keeps_the_backbone_contract(tmp_path: Path) -> None:
    check_backbone(TinyUNet, {"width": 8}, name="tiny-unet", folder=tmp_path)
