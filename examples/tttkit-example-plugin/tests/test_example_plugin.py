"""The example plugin's own tests: tttkit's plugin kit checks its backbones and its freezing
policy against the engine's contract (run them with `pytest` in this folder after
`pip install -e '.[test]'`)."""

from __future__ import annotations

from pathlib import Path

from tttkit_example_plugin import FreezeEncoder, TinyUNet, WrappedUNet

from tttkit.testing import check_backbone, check_freezing_policy


def test_tiny_unet_keeps_the_backbone_contract(tmp_path: Path) -> None:
    check_backbone(TinyUNet, {"width": 8}, name="tiny-unet", folder=tmp_path)


def test_the_wrapped_module_keeps_the_backbone_contract(tmp_path: Path) -> None:
    check_backbone(WrappedUNet, {"width": 8}, name="wrapped-unet", folder=tmp_path)


def test_the_freezing_policy_keeps_its_contract() -> None:
    for backbone in (TinyUNet(width=8), WrappedUNet(width=8)):
        frozen = check_freezing_policy(FreezeEncoder, backbone=backbone)
        assert "generator.encoder" in frozen and "generator.decoder" not in frozen
