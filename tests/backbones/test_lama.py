"""Tests of the LaMa backbone: official key layout, checkpoint loading, FFC shapes, TTT steps.

Big LaMa (51 M parameters) is only built on the meta device; everything that runs uses a tiny
configuration (ngf 8, 2 blocks) at 64².
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

import tttkit
from tests.helpers import photo_and_mask, write_module
from tttkit.backbone import check_layer_groups
from tttkit.checkpoint import CheckpointError
from tttkit.plugins import PluginHost
from tttkit_backbones.lama import (
    FFC,
    FourierUnit,
    LaMa,
    SpectralTransform,
    big_lama,
    lama_fourier,
    load_lama_checkpoint,
)
from tttkit_strategies.freezing import FreezeEarly, FreezePartial

TINY = {"ngf": 8, "n_blocks": 2, "ndf": 8}


def tiny(seed: int = 0, **overrides: object) -> LaMa:
    torch.manual_seed(seed)
    net = LaMa(**{**TINY, **overrides})
    with torch.no_grad():  # non-trivial BatchNorm statistics, so loading them is checked too
        for name, buffer in net.named_buffers():
            if name.endswith("running_mean"):
                buffer.uniform_(-0.01, 0.01)  # small: a large mean would zero every ReLU
            elif name.endswith("running_var"):
                buffer.uniform_(0.5, 1.5)
    return net


def lightning_checkpoint(net: LaMa, path: Path, **extra: torch.Tensor) -> Path:
    """What LaMa's training writes: a Lightning dict whose state_dict also holds loss modules."""
    state = {**net.state_dict(), **extra}
    meta = {"epoch": 3, "global_step": 1000, "pytorch-lightning_version": "1.2.9"}
    torch.save({**meta, "state_dict": state}, path)
    return path


# -- the official layout -----------------------------------------------------------------------


def test_big_lama_matches_the_official_layout() -> None:
    with torch.device("meta"):
        net = big_lama()
    counts = net.parameter_counts()
    # The LaMa paper reports 51 M parameters for Big LaMa (27 M for LaMa-Fourier, below).
    assert counts == {"generator": 50_975_875, "discriminator": 6_962_369, "total": 57_938_244}
    state = net.state_dict()
    shapes = {k: tuple(v.shape) for k, v in state.items()}
    expected = {
        "generator.model.1.ffc.convl2l.weight": (64, 4, 7, 7),
        "generator.model.1.bn_l.running_mean": (64,),
        "generator.model.2.ffc.convl2l.weight": (128, 64, 3, 3),
        "generator.model.3.ffc.convl2l.weight": (256, 128, 3, 3),
        "generator.model.4.ffc.convl2l.weight": (128, 256, 3, 3),
        "generator.model.4.ffc.convl2g.weight": (384, 256, 3, 3),
        "generator.model.4.bn_g.num_batches_tracked": (),
        "generator.model.5.conv1.ffc.convl2l.weight": (128, 128, 3, 3),
        "generator.model.5.conv1.ffc.convg2l.weight": (128, 384, 3, 3),
        "generator.model.5.conv1.ffc.convg2g.conv1.0.weight": (192, 384, 1, 1),
        "generator.model.5.conv1.ffc.convg2g.conv1.1.bias": (192,),
        "generator.model.5.conv1.ffc.convg2g.fu.conv_layer.weight": (384, 384, 1, 1),
        "generator.model.5.conv1.ffc.convg2g.fu.bn.running_var": (384,),
        "generator.model.5.conv1.ffc.convg2g.conv2.weight": (384, 192, 1, 1),
        "generator.model.22.conv2.bn_g.weight": (384,),
        "generator.model.24.weight": (512, 256, 3, 3),  # ConvTranspose2d: (in, out, k, k)
        "generator.model.25.running_mean": (256,),
        "generator.model.30.weight": (128, 64, 3, 3),
        "generator.model.34.weight": (3, 64, 7, 7),
        "generator.model.34.bias": (3,),
        "discriminator.model0.0.weight": (64, 3, 4, 4),
        "discriminator.model1.1.running_var": (128,),
        "discriminator.model4.0.weight": (512, 512, 4, 4),
        "discriminator.model5.0.weight": (1, 512, 4, 4),
    }
    assert {k: shapes[k] for k in expected} == expected
    indices = {int(k.split(".")[2]) for k in state if k.startswith("generator.")}
    assert indices == {*range(1, 23), 24, 25, 27, 28, 30, 31, 34}
    assert not any(".lfu." in k or ".gate." in k for k in state)  # enable_lfu: false, no gates
    assert len([k for k in state if k.startswith("generator.")]) == 989
    check_layer_groups(net)
    groups = list(net.layer_groups())
    assert groups[0] == "generator.encoder" and groups[1:19] == [
        f"generator.residual.{i}" for i in range(1, 19)
    ]
    assert groups[19:] == [f"generator.decoder.{i}" for i in range(1, 5)] + [
        f"discriminator.conv{i}" for i in range(1, 7)
    ]


def test_lama_fourier_size() -> None:
    with torch.device("meta"):
        net = lama_fourier()
    assert net.parameter_counts()["generator"] == 27_048_835
    assert net.config["n_blocks"] == 9 and net.conventions.pad_multiple == 8


def test_thesis_freezing_policies_apply_to_lama() -> None:
    groups = tiny().layer_groups()
    early = FreezeEarly()(groups)
    assert "generator.encoder" in early and "generator.residual.2" in early
    assert FreezePartial()(groups) >= {"discriminator.conv3", "generator.residual.1"}


# -- Fourier convolutions --------------------------------------------------------------------------


def test_fourier_unit_keeps_lamas_real_imaginary_channel_layout() -> None:
    """Channel 2c is the real part of input channel c, 2c + 1 its imaginary part: keeping only
    even channels (real parts) must give each channel's even part, (x(n) + x(−n)) / 2."""
    torch.manual_seed(0)
    unit = FourierUnit(3, 3).eval()
    unit.relu = torch.nn.Identity()  # linear, so the expected result is exact
    with torch.no_grad():
        unit.conv_layer.weight.zero_()
        for channel in range(0, 6, 2):
            unit.conv_layer.weight[channel, channel] = 1.0
        unit.bn.running_var.fill_(1.0 - unit.bn.eps)  # BatchNorm becomes the identity
    x = torch.randn(1, 3, 7, 9)
    reflected = torch.roll(torch.flip(x, dims=(-2, -1)), shifts=(1, 1), dims=(-2, -1))
    torch.testing.assert_close(unit(x), (x + reflected) / 2, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("size", [(7, 9), (8, 8), (13, 6)])
def test_spectral_transform_and_ffc_keep_odd_sizes(size: tuple[int, int]) -> None:
    torch.manual_seed(0)
    x = torch.randn(2, 12, *size)
    assert SpectralTransform(12, 12)(x).shape == x.shape
    ffc = FFC(16, 16, 3, 0.75, 0.75, padding=1)
    local, global_ = ffc((torch.randn(2, 4, *size), torch.randn(2, 12, *size)))
    assert local.shape == (2, 4, *size) and global_.shape == (2, 12, *size)


def test_generator_pads_odd_images_to_a_multiple_of_eight() -> None:
    net = tiny().eval()
    assert net.conventions.to_dict() == {
        "value_range": (0.0, 1.0),
        "hole_value": 1,
        "pad_multiple": 8,
        "working_size": 256,
        "pad_mode": "symmetric",
        "trains_on_crops": True,
    }
    image, mask = torch.rand(1, 3, 61, 67), torch.zeros(1, 1, 61, 67)
    mask[..., 20:40, 10:30] = 1
    with torch.no_grad():
        out = net.generate(image, mask).image
    assert out.shape == image.shape and out.min() >= 0 and out.max() <= 1


def test_padding_is_lamas_own_symmetric_mode() -> None:
    """Official LaMa pads to a multiple of 8 with np.pad(mode="symmetric") (the edge pixel
    repeated), as in its evaluation data code; torch's reflect would change the fill."""
    import numpy as np

    net = tiny().eval()
    image = torch.rand(1, 3, 250, 237)
    padded = net._pad(image)
    expected = np.pad(image.numpy(), ((0, 0), (0, 0), (0, 6), (0, 3)), mode="symmetric")
    assert padded.shape == (1, 3, 256, 240)
    assert np.array_equal(padded.numpy(), expected)


# -- checkpoints -----------------------------------------------------------------------------


def test_lightning_checkpoint_loads_strictly(tmp_path: Path) -> None:
    source = tiny(seed=1)
    path = lightning_checkpoint(
        source,
        tmp_path / "best.ckpt",
        **{
            "loss_resnet_pl.impl.conv1.weight": torch.zeros(2, 3, 3, 3),
            "val_evaluator.scores.ssim.weight": torch.zeros(1),
        },
    )
    target = tiny(seed=2)
    load_lama_checkpoint(target, path)
    for (name, a), b in zip(source.state_dict().items(), target.state_dict().values(), strict=True):
        assert torch.equal(a, b), name


def test_lightning_1x_metadata_needs_no_lightning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Lightning 1.x keys ``callbacks`` by callback class: weights_only=True alone refuses the
    file; the loader reads it without importing (or having) Lightning."""
    package = tmp_path / "fake_site" / "pytorch_lightning" / "callbacks"
    package.mkdir(parents=True)
    (package.parent / "__init__.py").write_text("")
    (package / "__init__.py").write_text("")
    write_module(package, "model_checkpoint", "class ModelCheckpoint:\n    pass\n")
    monkeypatch.syspath_prepend(str(tmp_path / "fake_site"))
    from pytorch_lightning.callbacks.model_checkpoint import ModelCheckpoint  # type: ignore

    source = tiny(seed=1)
    path = tmp_path / "best.ckpt"
    callbacks = {ModelCheckpoint: {"best_model_score": torch.tensor(0.1), "monitor": "val"}}
    torch.save({"callbacks": callbacks, "state_dict": source.state_dict()}, path)
    for name in [m for m in sys.modules if m.startswith("pytorch_lightning")]:
        del sys.modules[name]  # created by this test: gone for good, not restored afterwards
    monkeypatch.setattr(sys, "path", [p for p in sys.path if "fake_site" not in p])

    with pytest.raises(Exception, match="ModelCheckpoint"):
        torch.load(path, weights_only=True)
    target = tiny(seed=2)
    load_lama_checkpoint(target, path)
    assert torch.equal(
        target.generator.model[1].ffc.convl2l.weight,
        source.state_dict()["generator.model.1.ffc.convl2l.weight"],
    )
    assert "pytorch_lightning" not in sys.modules


def test_bare_generator_state_dict_loads_with_a_warning(tmp_path: Path) -> None:
    source, target = tiny(seed=1), tiny(seed=2)
    path = tmp_path / "generator.pth"
    torch.save(source.generator.state_dict(), path)  # keys "model.N…"
    disc_before = {k: v.clone() for k, v in target.discriminator.state_dict().items()}
    with pytest.warns(UserWarning, match="no discriminator weights"):
        load_lama_checkpoint(target, path)
    for key, value in source.generator.state_dict().items():
        assert torch.equal(value, target.generator.state_dict()[key])
    for key, value in disc_before.items():
        assert torch.equal(value, target.discriminator.state_dict()[key])


def test_wrong_checkpoint_fails_with_a_diff(tmp_path: Path) -> None:
    state = tiny().state_dict()
    renamed = "generator.model.1.ffc.conv_l2l.weight"  # a typo'd key: missing + unexpected
    state[renamed] = state.pop("generator.model.1.ffc.convl2l.weight")
    del state["discriminator.model5.0.bias"]
    path = tmp_path / "renamed.ckpt"
    torch.save({"state_dict": state}, path)
    with pytest.raises(CheckpointError) as info:
        load_lama_checkpoint(tiny(), path)
    message = str(info.value)
    assert "missing keys: discriminator.model5.0.bias, generator.model.1.ffc.convl2l.weight" in (
        message
    )
    assert "unexpected keys: generator.model.1.ffc.conv_l2l.weight" in message

    more_blocks = lightning_checkpoint(tiny(n_blocks=3), tmp_path / "3blocks.ckpt")
    with pytest.raises(CheckpointError, match=r"unexpected keys: generator\.model\.") as info:
        load_lama_checkpoint(tiny(), more_blocks)
    assert "shape mismatches" in str(info.value)  # the upsampling layers moved by one block


# -- test-time training ------------------------------------------------------------------------


def test_tiny_lama_runs_two_ttt_steps() -> None:
    image, mask = photo_and_mask(size=64)
    net = tiny()
    result = tttkit.adapt(
        image, mask, backbone=net, strategy="baseline", steps=2, batch_size=2, lr=1e-3,
        sets=["losses.perceptual=0"],
    )  # fmt: skip
    assert len(result.history) == 2 and result.finetuned.shape == (3, 64, 64)
    assert "d_total" in result.history[0].losses  # LaMa's discriminator was trained too
    tuned = result.network
    assert tuned is not None
    trained = dict(tuned.named_parameters())
    unchanged = [k for k, p in net.named_parameters() if torch.equal(p, trained[k])]
    assert unchanged == []  # every path, the spectral ones included, gets gradients
    before, after = net.state_dict(), tuned.state_dict()
    # freeze_batchnorm: the statistics learnt in pretraining are not replaced by one photo's
    for key in before:
        if key.endswith(("running_mean", "running_var")):
            assert torch.equal(before[key], after[key]), key


def test_training_mode_keeps_batchnorm_frozen_unless_asked() -> None:
    net = tiny().train()
    norms = [m for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert net.training and not any(m.training for m in norms)
    assert all(m.training for m in tiny(freeze_batchnorm=False).train().modules())


# -- registration ------------------------------------------------------------------------------


def test_registration_lists_both_sizes() -> None:
    host = PluginHost(autoload=False).load()
    registry = host.registry("backbones")
    with torch.device("meta"):
        big, fourier = registry.get("lama")(), registry.get("lama-fourier")()
    assert big.config["n_blocks"] == 18 and fourier.config["n_blocks"] == 9
    assert registry.entry("lama").parameters()["ngf"] == 64
