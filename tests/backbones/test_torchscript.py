"""Tests of the ``torchscript`` backbone with small models scripted here and loaded by path."""

from __future__ import annotations

import copy
import warnings
from pathlib import Path

import pytest
import torch
from torch import Tensor, nn

import tttkit
from tests.helpers import photo_and_mask
from tttkit.backbone import check_layer_groups
from tttkit.checkpoint import load_weights, save_backbone
from tttkit.io import InputError
from tttkit.plugins import PluginHost
from tttkit_backbones.torchscript import TorchScriptBackbone, parameter_groups


class TinyInpainter(nn.Module):
    """A model in conventions unlike tttkit's: RGB in [-1, 1], mask 0 at holes, tanh output."""

    def __init__(self) -> None:
        super().__init__()
        self.gain = nn.Parameter(torch.ones(1))  # a parameter held directly by the root
        self.model = nn.Sequential(
            nn.Conv2d(4, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
            nn.Conv2d(8, 8, 3, stride=2, padding=1), nn.ReLU(),
            nn.Upsample(scale_factor=2.0, mode="nearest"),
            nn.Conv2d(8, 3, 3, padding=1),
        )  # fmt: skip

    def forward(self, image: Tensor, mask: Tensor) -> Tensor:
        hole = 1 - mask  # this model's masks are 0 at holes
        x = torch.cat([image * (1 - hole), hole], dim=1)
        return torch.tanh(self.model(x) * self.gain)


class Echo(nn.Module):
    """Returns its inputs, to check the conventions: (image, mask as RGB)."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(1))

    def forward(self, image: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        return image * self.scale, mask.expand(-1, 3, -1, -1) * self.scale


def save_scripted(module: nn.Module, path: Path) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # deprecated in recent torch versions
        torch.jit.script(module).save(str(path))
    return path


@pytest.fixture
def model_file(tmp_path: Path) -> Path:
    torch.manual_seed(0)
    return save_scripted(TinyInpainter(), tmp_path / "tiny.pt")


def backbone(path: Path, **options: object) -> TorchScriptBackbone:
    torch.manual_seed(0)
    defaults = {"value_range": (-1, 1), "hole_value": 0, "pad_multiple": 2}
    return TorchScriptBackbone(path, **{**defaults, "discriminator_width": 8, **options})


def test_conventions_are_converted(tmp_path: Path) -> None:
    path = save_scripted(Echo(), tmp_path / "echo.pt")
    net = backbone(path, output_index=0, pad_multiple=1)
    image, mask = torch.rand(1, 3, 5, 6), torch.zeros(1, 1, 5, 6)
    mask[..., 1:3, 2:4] = 1
    # [0, 1] → the model's [-1, 1] → back: the identity
    torch.testing.assert_close(net.generate(image, mask).image, image)
    # the model sees 0 at holes; as an image in [-1, 1] that reads 0.5 at holes, 1 elsewhere
    polarity = backbone(path, output_index=1, pad_multiple=1).generate(image, mask).image
    torch.testing.assert_close(polarity, (2 - mask.expand(-1, 3, -1, -1)) / 2)


def test_parameter_groups() -> None:
    names = ["gain", "model.0.weight", "model.0.bias", "model.1.weight", "model.3.weight"]
    assert parameter_groups(names) == {
        "gain": ["gain"],
        "model.0": ["model.0.weight", "model.0.bias"],
        "model.1": ["model.1.weight"],
        "model.3": ["model.3.weight"],
    }
    wrapped = ["model.generator.model.1.w", "model.generator.model.5.conv1.w"]
    assert list(parameter_groups(wrapped)) == [
        "model.generator.model.1",
        "model.generator.model.5",
    ]
    assert list(parameter_groups(wrapped, depth=2)) == ["model.generator"]


def test_layer_groups_are_parameter_name_prefixes(model_file: Path) -> None:
    net = backbone(model_file)
    check_layer_groups(net)
    assert list(net.layer_groups()) == [
        "generator.gain",
        "generator.model.0",
        "generator.model.1",
        "generator.model.3",
        "generator.model.6",
        *(f"discriminator.conv{i}" for i in range(1, 6)),
    ]
    assert list(backbone(model_file, discriminator=False, group_depth=1).layer_groups()) == [
        "generator.gain",
        "generator.model",
    ]


def test_gradients_flow_through_the_scripted_module(model_file: Path) -> None:
    net = copy.deepcopy(backbone(model_file)).train()  # the engine trains a deep copy
    assert all(p.is_leaf and p.requires_grad for p in net.parameters())
    image, mask = torch.rand(2, 3, 8, 8), torch.zeros(2, 1, 8, 8)
    mask[..., 2:5, 2:5] = 1
    net.generate(image, mask).image.mean().backward()
    grads = {n: p.grad for n, p in net.generator.named_parameters()}
    assert all(g is not None and g.abs().sum() > 0 for g in grads.values()), grads


def test_two_ttt_steps_change_the_parameters(model_file: Path) -> None:
    image, mask = photo_and_mask(size=64)
    net = backbone(model_file)
    result = tttkit.adapt(
        image, mask, backbone=net, strategy="baseline", steps=2, batch_size=2, lr=1e-2,
        sets=["losses.perceptual=0"],
    )  # fmt: skip
    assert len(result.history) == 2 and "d_total" in result.history[-1].losses
    tuned = dict(result.network.named_parameters())
    unchanged = [n for n, p in net.named_parameters() if torch.equal(p, tuned[n])]
    assert unchanged == []
    before, after = net.state_dict(), result.network.state_dict()
    key = "generator.model.1.running_mean"  # freeze_batchnorm keeps the scripted BN's statistics
    assert torch.equal(before[key], after[key])


def test_batchnorm_statistics_update_only_when_not_frozen(model_file: Path) -> None:
    image, mask = photo_and_mask(size=64)
    key = "generator.model.1.running_mean"
    net = backbone(model_file, freeze_batchnorm=False)
    result = tttkit.adapt(
        image, mask, backbone=net, strategy="baseline", steps=1, batch_size=2,
        sets=["losses.perceptual=0"],
    )  # fmt: skip
    assert not torch.equal(net.state_dict()[key], result.network.state_dict()[key])


def test_freezing_by_pattern(model_file: Path) -> None:
    image, mask = photo_and_mask(size=64)
    net = backbone(model_file)
    result = tttkit.adapt(
        image, mask, backbone=net, strategy="baseline", steps=1, batch_size=2, lr=1e-2,
        freeze="freeze-groups",
        sets=["losses.perceptual=0", 'freeze.params.patterns=["generator.model.[01]*"]'],
    )  # fmt: skip
    tuned = dict(result.network.named_parameters())
    for name, parameter in net.named_parameters():
        frozen = name.startswith(("generator.model.0.", "generator.model.1."))
        assert torch.equal(parameter, tuned[name]) == frozen, name


def test_checkpoint_round_trip(model_file: Path, tmp_path: Path) -> None:
    net = backbone(model_file)
    with torch.no_grad():
        net.generator.gain.fill_(0.5)
    path = tmp_path / "tuned.safetensors"
    save_backbone(net, "torchscript", path)
    fresh = backbone(model_file)
    load_weights(fresh, path, "torchscript")
    assert float(fresh.generator.gain.detach()) == 0.5


def test_unusable_files_are_refused(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        TorchScriptBackbone(tmp_path / "absent.pt")
    not_script = tmp_path / "state.pt"
    torch.save({"w": torch.zeros(1)}, not_script)
    with pytest.raises(InputError, match="not a loadable TorchScript model"):
        TorchScriptBackbone(not_script)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        frozen = torch.jit.freeze(torch.jit.script(TinyInpainter().eval()))
        frozen.save(str(tmp_path / "frozen.pt"))
    with pytest.raises(InputError, match="no parameters"):
        TorchScriptBackbone(tmp_path / "frozen.pt")


def test_registration(model_file: Path) -> None:
    host = PluginHost(autoload=False).load()
    entry = host.registry("backbones").entry("torchscript")
    assert entry.parameters()["path"] == "<required>"
    net = entry.obj(path=str(model_file), value_range=[-1, 1], hole_value=0)
    assert net.config["path"] == str(model_file.resolve())
    assert net.conventions.value_range == (-1.0, 1.0)
