"""Loading the perceptual loss's VGG from local files: layouts, search order, errors, caching."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from kornia.filters import gaussian_blur2d
from safetensors.torch import save_file

import tttkit
from tests.helpers import photo_and_mask, tiny_backbone
from tttkit.engine import perceptual
from tttkit.engine.loop import Result
from tttkit.engine.losses import PerceptualLoss
from tttkit.engine.perceptual import (
    ENV_WEIGHTS,
    PerceptualWeightsError,
    build_vgg_features,
    load_feature_network,
    vgg_layer_names,
)
from tttkit.io import read_image
from tttkit.strategy import get_strategy

REAL_WEIGHTS = Path("/work/shared/weights/vgg16_imagenet_features.safetensors")
EXAMPLES = Path(perceptual.__file__).parents[1] / "data" / "examples"
# Modules kept for the default layers (up to relu5_1) in torchvision's layouts.
KEPT = {"vgg16": 26, "vgg19": 30}


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No weights from the environment or the real torch hub cache; a fresh network cache."""
    hub = tmp_path / "hub"
    monkeypatch.delenv(ENV_WEIGHTS, raising=False)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(hub))
    perceptual.clear_cache()
    yield hub
    perceptual.clear_cache()


def random_state(arch: str, seed: int = 0) -> dict[str, torch.Tensor]:
    """A VGG ``features`` state dict with small random values (no module initialisation)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.device("meta"):
        shapes = {k: v.shape for k, v in build_vgg_features(arch).state_dict().items()}
    return {k: torch.randn(s, generator=generator) * 0.02 for k, s in shapes.items()}


def save(state: dict[str, torch.Tensor], path: Path, layout: str) -> Path:
    if layout == "full":  # a whole torchvision VGG: features.* plus a classifier to ignore
        state = {f"features.{k}": v for k, v in state.items()}
        state["classifier.0.weight"] = torch.zeros(4, 8)
    if path.suffix == ".safetensors":
        save_file(state, str(path))
    else:
        torch.save(state, path)
    return path


@pytest.mark.parametrize(
    ("arch", "suffix", "layout"),
    [
        ("vgg16", ".safetensors", "features"),
        ("vgg16", ".pth", "full"),
        ("vgg19", ".pt", "features"),
        ("vgg19", ".safetensors", "full"),
    ],
)
def test_loads_both_architectures_and_layouts(
    tmp_path: Path, arch: str, suffix: str, layout: str
) -> None:
    state = random_state(arch)
    path = save(state, tmp_path / f"weights{suffix}", layout)
    net = load_feature_network(path)
    assert net.arch == arch and net.source == str(path)
    assert len(net) == KEPT[arch]  # cut after relu5_1
    assert not net.training and not any(p.requires_grad for p in net.parameters())
    assert torch.equal(net[0].weight, state["0.weight"])
    last_conv = max(i for i, m in enumerate(net) if isinstance(m, torch.nn.Conv2d))
    assert torch.equal(net[last_conv].bias, state[f"{last_conv}.bias"])
    assert load_feature_network(path, arch=arch) is net  # cached


def test_loads_legacy_torch_save_format(tmp_path: Path) -> None:
    state = random_state("vgg16")
    path = tmp_path / "legacy.pth"
    torch.save(state, path, _use_new_zipfile_serialization=False)  # cannot be memory-mapped
    assert torch.equal(load_feature_network(path)[2].weight, state["2.weight"])


def test_layers_choose_where_the_network_is_cut(tmp_path: Path) -> None:
    path = save(random_state("vgg16"), tmp_path / "w.safetensors", "features")
    net = load_feature_network(path, layers=("relu1_1", "relu2_1"))
    assert len(net) == vgg_layer_names(build_vgg_features("vgg16"))["relu2_1"] + 1 == 7
    with pytest.raises(PerceptualWeightsError, match="relu9_1"):
        load_feature_network(path, layers=("relu9_1",))


def test_explicit_arch_must_match(tmp_path: Path) -> None:
    path = save(random_state("vgg16"), tmp_path / "w.safetensors", "features")
    with pytest.raises(PerceptualWeightsError, match="vgg16.*not a vgg19"):
        load_feature_network(path, arch="vgg19")
    with pytest.raises(ValueError, match="vgg11"):
        load_feature_network(path, arch="vgg11")


def test_files_that_are_not_vgg_fail_naming_the_file(tmp_path: Path) -> None:
    other = tmp_path / "resnet.pth"
    torch.save(torch.nn.Linear(4, 2).state_dict(), other)
    with pytest.raises(PerceptualWeightsError, match=r"resnet\.pth.*found 0 convolution"):
        load_feature_network(other)

    state = random_state("vgg16")
    state["0.weight"] = torch.zeros(32, 3, 3, 3)  # 13 convolutions, wrong widths
    narrow = save(state, tmp_path / "narrow.safetensors", "features")
    with pytest.raises(PerceptualWeightsError, match=r"narrow\.safetensors.*layout"):
        load_feature_network(narrow)

    garbage = tmp_path / "garbage.pt"
    garbage.write_text("not a checkpoint")
    with pytest.raises(PerceptualWeightsError, match=r"garbage\.pt"):
        load_feature_network(garbage)

    tensor_only = tmp_path / "tensor.pt"
    torch.save(torch.zeros(3), tensor_only)
    with pytest.raises(PerceptualWeightsError, match=r"tensor\.pt holds a Tensor"):
        load_feature_network(tensor_only)


def test_missing_weights_say_how_to_provide_or_disable(isolated: Path) -> None:
    with pytest.raises(PerceptualWeightsError) as info:
        load_feature_network()
    message = str(info.value)
    assert "--perceptual-weights" in message and "losses.perceptual=0" in message
    assert (
        ENV_WEIGHTS in message and str(isolated / "checkpoints" / "vgg19-dcbb9e9d.pth") in message
    )
    with pytest.raises(PerceptualWeightsError, match=r"nowhere\.pth does not exist"):
        load_feature_network("nowhere.pth")


def test_environment_variable_is_searched(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = save(random_state("vgg19"), tmp_path / "env.pt", "full")
    monkeypatch.setenv(ENV_WEIGHTS, str(path))
    assert load_feature_network().source == str(path)
    monkeypatch.setenv(ENV_WEIGHTS, str(tmp_path / "gone.pt"))
    with pytest.raises(PerceptualWeightsError, match=ENV_WEIGHTS):
        load_feature_network()


def test_torchvision_cache_file_is_found(isolated: Path) -> None:
    checkpoints = isolated / "checkpoints"
    checkpoints.mkdir(parents=True)
    path = save(random_state("vgg19"), checkpoints / "vgg19-dcbb9e9d.pth", "full")
    net = load_feature_network()
    assert net.arch == "vgg19" and net.source == str(path)


def test_cache_rebuilds_a_network_moved_in_place(tmp_path: Path) -> None:
    path = save(random_state("vgg16"), tmp_path / "w.safetensors", "features")
    net = load_feature_network(path, layers=("relu1_1",))
    net.to("meta")  # a caller moving the cached module elsewhere in place
    again = load_feature_network(path, layers=("relu1_1",))
    assert again is not net and again[0].weight.device.type == "cpu"


def test_perceptual_gradients_reach_the_prediction_not_the_network(tmp_path: Path) -> None:
    torch.manual_seed(0)
    path = save(random_state("vgg16"), tmp_path / "w.safetensors", "features")
    loss = PerceptualLoss(load_feature_network(path, layers=("relu1_1", "relu2_1")),
                          layers=("relu1_1", "relu2_1"))  # fmt: skip
    loss.train()
    assert not loss.features.training
    pred = torch.rand(2, 3, 32, 32, requires_grad=True)
    value = loss(pred, torch.rand(2, 3, 32, 32))
    value.backward()
    assert value.item() > 0 and pred.grad is not None and pred.grad.abs().sum() > 0
    assert all(p.grad is None for p in loss.parameters())


@pytest.mark.skipif(not REAL_WEIGHTS.is_file(), reason="the project's VGG-16 file is not here")
def test_real_vgg16_tells_a_photo_from_its_blurred_version() -> None:
    net = load_feature_network(REAL_WEIGHTS)
    assert net.arch == "vgg16"
    photo = read_image(EXAMPLES / "building.jpg")[None]
    photo = torch.nn.functional.interpolate(photo, size=(64, 64), mode="area")
    loss = PerceptualLoss(net)
    light = gaussian_blur2d(photo, (5, 5), (1.0, 1.0))
    heavy = gaussian_blur2d(photo, (9, 9), (3.0, 3.0))
    with torch.no_grad():
        same, near, far = loss(photo, photo), loss(light, photo), loss(heavy, photo)
    assert same.item() == 0.0
    assert 0 < near.item() < far.item()


# -- a strategy whose perceptual term is optional (the default) ---------------------------------


def _adapt_default(**extra: object) -> Result:
    image, mask = photo_and_mask(48)
    options: dict[str, object] = {"steps": 1, "batch_size": 1, **extra}
    return tttkit.adapt(image, mask, backbone=tiny_backbone(), **options)


def test_the_default_uses_its_perceptual_term_when_weights_are_found(
    tmp_path: Path, monkeypatch
) -> None:
    path = save(random_state("vgg16"), tmp_path / "vgg16.safetensors", "features")
    monkeypatch.setenv(ENV_WEIGHTS, str(path))
    result = _adapt_default()
    assert get_strategy("default").losses.perceptual_optional
    assert result.strategy.losses.perceptual == 0.1
    assert "g_perceptual" in result.history[0].losses
    assert not [n for n in result.notices if "perceptual" in n]


def test_without_weights_the_default_runs_without_the_term_and_says_so(isolated: Path) -> None:
    result = _adapt_default()
    assert result.strategy.losses.perceptual == 0.0  # what really ran, not what was asked
    assert "g_perceptual" not in result.history[0].losses
    said = [n for n in result.notices if "without its perceptual term" in n]
    assert said and "--perceptual-weights" in said[0], result.notices


def test_a_raw_fill_needs_no_weights_and_says_nothing(isolated: Path) -> None:
    result = _adapt_default(steps=0)
    assert not [n for n in result.notices if "perceptual" in n]


def test_a_named_file_that_is_missing_is_refused_even_when_the_term_is_optional(
    isolated: Path, tmp_path: Path
) -> None:
    with pytest.raises(PerceptualWeightsError, match="nowhere.safetensors"):
        _adapt_default(perceptual_weights=tmp_path / "nowhere.safetensors")


def test_a_strategy_whose_term_is_required_refuses_to_run_without_weights(isolated: Path) -> None:
    image, mask = photo_and_mask(48)
    with pytest.raises(PerceptualWeightsError, match="losses.perceptual=0"):
        tttkit.adapt(image, mask, backbone=tiny_backbone(), strategy="optimal", steps=1)
