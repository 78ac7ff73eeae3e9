"""Tests of ``timm-unet``: two timm families, the widened first convolution, local pretrained
weights (a file the test writes; nothing downloads), layer groups and TTT steps at 64²."""

from __future__ import annotations

from pathlib import Path

import pytest
import timm
import torch

import tttkit
from tests.helpers import photo_and_mask
from tttkit.backbone import check_layer_groups
from tttkit.checkpoint import CheckpointError
from tttkit.plugins import PluginHost
from tttkit_backbones.timm_unet import TimmUNet

SMALL = {"decoder_width": 8, "discriminator_width": 8}


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any attempt to reach the Hugging Face hub fails instead of downloading."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.mark.parametrize(
    ("encoder", "stages"), [("resnet18", 5), ("efficientnet_lite0", 5), ("convnext_nano", 4)]
)
def test_layer_groups_follow_the_encoder_stages(encoder: str, stages: int) -> None:
    net = TimmUNet(encoder, **SMALL)
    check_layer_groups(net)
    groups = list(net.layer_groups())
    assert groups == [
        *(f"generator.encoder.{i}" for i in range(1, stages + 1)),
        *(f"generator.decoder.{i}" for i in range(1, stages + 1)),
        *(f"discriminator.conv{i}" for i in range(1, 6)),
    ]
    assert net.conventions.pad_multiple == 32 and net.conventions.value_range == (0.0, 1.0)
    assert "encoder_weights" not in net.config  # weights are not architecture


def test_resnet_stem_is_the_first_group_and_reads_four_channels() -> None:
    net = TimmUNet("resnet18", **SMALL)
    stem = net.layer_groups()["generator.encoder.1"]
    assert sum(p.numel() for p in stem.parameters()) == 64 * 4 * 7 * 7 + 2 * 64  # conv1 + bn1
    assert net.generator.encoder.conv1.weight.shape == (64, 4, 7, 7)


def test_encoder_weights_load_from_a_local_file(tmp_path: Path) -> None:
    torch.manual_seed(3)
    reference = timm.create_model("resnet18")  # the full model, as timm publishes weights
    with torch.no_grad():
        for parameter in reference.parameters():
            parameter.add_(torch.randn_like(parameter))
    path = tmp_path / "resnet18-weights.pth"
    torch.save(reference.state_dict(), path)

    net = TimmUNet("resnet18", encoder_weights=path, **SMALL)
    encoder, expected = net.generator.encoder, reference.state_dict()
    weight = encoder.conv1.weight
    assert torch.equal(weight[:, :3], expected["conv1.weight"])  # RGB filters kept as they are
    assert torch.count_nonzero(weight[:, 3]) == 0  # the mask channel starts at zero
    for key, value in encoder.state_dict().items():
        if key != "conv1.weight":
            assert torch.equal(value, expected[key]), key

    # Zero mask filters: the pretrained encoder's response to the RGB part is unchanged.
    plain = timm.create_model("resnet18", features_only=True, pretrained=False).eval()
    plain.load_state_dict({k: v for k, v in expected.items() if not k.startswith("fc.")})
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        ours = encoder.eval()(torch.cat([x, torch.ones(1, 1, 64, 64)], dim=1))
        theirs = plain(x)
    for a, b in zip(ours, theirs, strict=True):
        torch.testing.assert_close(a, b)


def test_missing_or_remote_weights_are_refused(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="do not exist"):
        TimmUNet("resnet18", encoder_weights=tmp_path / "absent.pth")
    with pytest.raises(ValueError, match="never"):
        TimmUNet("hf-hub:timm/resnet18.a1_in1k")
    with pytest.raises(ValueError, match="unknown timm model"):
        TimmUNet("resnet_does_not_exist")
    wrong = tmp_path / "wrong.pth"
    torch.save({"conv1.weight": torch.zeros(3, 3, 3, 3)}, wrong)
    with pytest.raises(CheckpointError, match="do not fit"):
        TimmUNet("resnet18", encoder_weights=wrong)


def test_odd_sizes_are_padded_and_cropped_back() -> None:
    torch.manual_seed(0)
    net = TimmUNet("efficientnet_lite0", **SMALL).eval()
    image, mask = torch.rand(1, 3, 50, 70), torch.zeros(1, 1, 50, 70)
    mask[..., 10:30, 20:40] = 1
    with torch.no_grad():
        out = net.generate(image, mask).image
    assert out.shape == image.shape and out.min() >= 0 and out.max() <= 1


@pytest.mark.parametrize("encoder", ["resnet18", "efficientnet_lite0"])
def test_two_ttt_steps(encoder: str) -> None:
    image, mask = photo_and_mask(size=64)
    torch.manual_seed(0)
    net = TimmUNet(encoder, **SMALL)
    result = tttkit.adapt(
        image, mask, backbone=net, strategy="baseline", steps=2, batch_size=2, lr=1e-3,
        sets=["losses.perceptual=0"],
    )  # fmt: skip
    assert len(result.history) == 2 and result.finetuned.shape == (3, 64, 64)
    assert "d_total" in result.history[-1].losses
    tuned = dict(result.network.named_parameters())
    changed = {k for k, p in net.named_parameters() if not torch.equal(p, tuned[k])}
    assert "generator.encoder.conv_stem.weight" in changed or (
        "generator.encoder.conv1.weight" in changed
    )
    assert any(k.startswith("generator.head.") for k in changed)
    # BatchNorm statistics of the encoder are kept (freeze_batchnorm)
    before, after = net.state_dict(), result.network.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before if k.endswith("running_mean"))


def test_freezing_encoder_stages_by_pattern() -> None:
    image, mask = photo_and_mask(size=64)
    torch.manual_seed(0)
    net = TimmUNet("resnet18", **SMALL)
    result = tttkit.adapt(
        image, mask, backbone=net, strategy="baseline", steps=1, batch_size=2, lr=1e-3,
        freeze="freeze-groups",
        sets=["losses.perceptual=0", 'freeze.params.patterns=["generator.encoder.*"]'],
    )  # fmt: skip
    tuned = dict(result.network.named_parameters())
    for name, parameter in net.named_parameters():
        frozen = name.startswith("generator.encoder.")
        assert torch.equal(parameter, tuned[name]) == frozen, name


def test_registration() -> None:
    host = PluginHost(autoload=False).load()
    entry = host.registry("backbones").entry("timm-unet")
    assert entry.parameters()["encoder"] == "resnet18"
    with torch.device("meta"):  # what `tttkit list backbones` does
        net = entry.obj()
    assert net.parameter_counts()["generator"] > 11_000_000
