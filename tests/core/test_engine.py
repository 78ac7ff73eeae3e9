from __future__ import annotations

import pytest
import torch

import tttkit
from tests.helpers import photo_and_mask, tiny_backbone
from tttkit.engine import run_ttt
from tttkit.errors import PluginContractError
from tttkit.imageops import dilate
from tttkit.io import InputError
from tttkit.options import RunOptions
from tttkit.strategy import get_strategy, override


def quick(name: str = "baseline", **changes: object):
    return override(get_strategy(name), steps=3, sets=[f"{k}={v}" for k, v in changes.items()])


def run(spec, **kwargs):
    image, mask = photo_and_mask()
    return run_ttt(tiny_backbone(), image, mask, spec, **kwargs)


def test_result_composites_raw_and_finetuned_into_the_image(perceptual_env) -> None:
    image, mask = photo_and_mask()
    from tttkit.engine.perceptual import load_feature_network

    result = run_ttt(
        tiny_backbone(), image, mask, quick(), ground_truth=image,
        perceptual=load_feature_network(),
    )  # fmt: skip
    known = mask.expand_as(image) == 0
    assert torch.equal(result.raw[known], image[known])
    assert torch.equal(result.finetuned[known], image[known])
    assert not torch.equal(result.raw, result.finetuned)  # training changed the fill
    assert [r.step for r in result.history] == [1, 2, 3]
    assert [e.step for e in result.evaluations] == [0, 3]  # step 0 and the last step
    assert set(result.metrics(0)) == {"l1", "psnr", "ssim", "l1_hole"}
    assert {"g_l1", "g_structural", "g_perceptual", "g_adversarial", "d_total", "total"} <= set(
        result.history[0].losses
    )


def test_backbone_is_never_mutated_and_seeds_reproduce() -> None:
    spec = quick(**{"losses.perceptual": 0})
    image, mask = photo_and_mask()
    net = tiny_backbone()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    first = run_ttt(net, image, mask, spec, RunOptions(seed=3))
    assert all(torch.equal(v, net.state_dict()[k]) for k, v in before.items())
    second = run_ttt(net, image, mask, spec, RunOptions(seed=3))
    assert torch.equal(first.raw, second.raw) and torch.equal(first.finetuned, second.finetuned)
    third = run_ttt(net, image, mask, spec, RunOptions(seed=4))
    assert torch.equal(first.raw, third.raw) and not torch.equal(first.finetuned, third.finetuned)


def test_frozen_groups_do_not_change_and_observers_see_the_run() -> None:
    spec = override(quick(**{"losses.perceptual": 0, "optim.lr": 0.01}), freeze="freeze-early")
    image, mask = photo_and_mask()
    net = tiny_backbone()
    seen = {}

    class Spy:
        @tttkit.hookimpl
        def tttkit_run_end(self, run, result):
            seen["done"] = True

    host = tttkit.get_host()
    host.register(Spy(), "spy")
    try:
        result = run_ttt(net, image, mask, spec, host=host)
    finally:
        host.unregister("spy")
    assert seen == {"done": True}
    before, after = net.layer_groups(), result.network.layer_groups()
    frozen = {"generator.encoder", "generator.residual.1", "generator.residual.2",
              "discriminator.conv1", "discriminator.conv2"}  # fmt: skip
    for name in before:
        same = all(
            torch.equal(p, q)
            for p, q in zip(before[name].parameters(), after[name].parameters(), strict=True)
        )
        assert same == (name in frozen), name


def test_empty_mask_returns_image_unchanged_with_notice() -> None:
    image, _ = photo_and_mask()
    result = run_ttt(tiny_backbone(), image, torch.zeros(1, 64, 64), quick())
    assert torch.equal(result.finetuned, image) and "empty" in result.notices[0]


def test_mask_covering_nearly_everything_is_rejected() -> None:
    image, _ = photo_and_mask()
    mask = torch.ones(1, 64, 64)
    mask[..., :4, :4] = 0
    with pytest.raises(InputError, match="covers 100% of the image"):
        run_ttt(tiny_backbone(), image, mask, quick())


def test_perceptual_loss_without_network_is_an_error() -> None:
    with pytest.raises(ValueError, match="perceptual"):
        run(quick())


def test_dilate() -> None:
    mask = torch.zeros(1, 1, 9, 9)
    mask[..., 4, 4] = 1
    assert dilate(mask, 2).sum() == 25 and torch.equal(dilate(mask, 0), mask)


def test_bundled_weights_are_used_when_present(tmp_path, monkeypatch) -> None:
    from tttkit.api import resolve_backbone
    from tttkit.checkpoint import save_backbone
    from tttkit.plugins import PluginHost

    net = tiny_backbone(seed=5)
    path = tmp_path / "bundled.safetensors"
    save_backbone(net, "tiny", path)

    class Plugin:
        @tttkit.hookimpl
        def tttkit_register_backbones(self, register):
            register("tiny", lambda: tiny_backbone(seed=9), weights=path)

    host = PluginHost(autoload=False).load()
    host.register(Plugin(), "tiny-plugin")
    _, loaded = resolve_backbone("tiny", None, get_strategy("baseline"), host)
    assert all(
        torch.equal(a, b)
        for a, b in zip(loaded.state_dict().values(), net.state_dict().values(), strict=True)
    )
    path.unlink()  # declared, then missing (a wheel without its package data): said so
    with pytest.raises(PluginContractError, match="declares shipped weights") as info:
        resolve_backbone("tiny", None, get_strategy("baseline"), host)
    assert str(path) in str(info.value) and "package data" in str(info.value)
    assert info.value.plugin == "tiny-plugin"
    _, fresh = resolve_backbone("tiny", None, get_strategy("zero-shot"), host)  # needs none
    assert fresh is not None
