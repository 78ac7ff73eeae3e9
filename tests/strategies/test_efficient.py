"""Parameter-efficient finetuning policies: what trains, what gets gradients, and that LoRA's
merged network is the adapter network."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from tests.helpers import photo_and_mask, tiny_backbone
from tttkit.components import ParameterAdapter
from tttkit.engine import run_ttt
from tttkit.options import RunOptions
from tttkit.strategy import get_strategy, override
from tttkit_strategies.efficient import LoRA, LoRAConv2d, NormOnly
from tttkit_strategies.freezing import FreezeEarly


def _trained_like(seed: int = 0):  # type: ignore[no-untyped-def]
    """The tiny backbone with its zero-initialized output heads given weights, as training
    gives them: a fresh compact network's output ignores every layer below its heads."""
    net = tiny_backbone(seed)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in net.parameters():
            if parameter.dim() > 1 and not parameter.any():
                parameter.normal_(0, 0.05, generator=generator)
    return net


def _fill(net, image, mask) -> torch.Tensor:  # type: ignore[no-untyped-def]
    with torch.no_grad():
        return net.eval().generate(image[None], mask[None]).image


def _trainable(net: nn.Module) -> set[str]:
    return {name for name, p in net.named_parameters() if p.requires_grad}


def test_the_policies_are_parameter_adapters() -> None:
    assert isinstance(LoRA(), ParameterAdapter) and isinstance(NormOnly(), ParameterAdapter)
    assert not isinstance(FreezeEarly(), ParameterAdapter)


def test_lora_starts_at_the_pretrained_network_and_merges_to_the_adapter_network() -> None:
    image, mask = photo_and_mask(64)
    net = _trained_like()
    before = _fill(net, image, mask)
    policy = LoRA(rank=2)
    groups = net.layer_groups()
    policy.prepare(net, groups)
    adapters = [m for m in net.modules() if isinstance(m, LoRAConv2d)]
    assert adapters, "no convolution was adapted"
    torch.testing.assert_close(_fill(net, image, mask), before)  # B starts at zero
    generator = torch.Generator().manual_seed(0)
    for adapter in adapters:  # what training would do: move the low-rank factors
        with torch.no_grad():
            adapter.up.weight.normal_(0, 0.05, generator=generator)
    adapted = _fill(net, image, mask)
    assert (adapted - before).abs().max() > 1e-3
    policy.finalize(net)
    assert not any(isinstance(m, LoRAConv2d) for m in net.modules())
    assert net.state_dict().keys() == tiny_backbone().state_dict().keys()  # its own structure
    torch.testing.assert_close(_fill(net, image, mask), adapted, atol=1e-5, rtol=1e-4)


def test_only_the_adapters_train_and_frozen_weights_get_no_gradient() -> None:
    image, mask = photo_and_mask(64)
    net = tiny_backbone()
    LoRA(rank=2).prepare(net, net.layer_groups())
    trainable = _trainable(net.generator)
    assert trainable and all(".down." in n or ".up." in n for n in trainable)
    net.train()
    net.generate(image[None], mask[None]).image.mean().backward()
    for name, parameter in net.generator.named_parameters():
        assert (parameter.grad is not None) == (name in trainable), name
    assert all(p.requires_grad for p in net.discriminator.parameters())  # not a target


def test_norm_only_trains_only_normalization_affines() -> None:
    net = tiny_backbone()
    NormOnly().prepare(net, net.layer_groups())
    trainable = _trainable(net.generator)
    norms = {
        f"{name}.{p}" for name, module in net.generator.named_modules()
        if isinstance(module, nn.modules.instancenorm._InstanceNorm)
        for p, _ in module.named_parameters(recurse=False)
    }  # fmt: skip
    assert trainable == norms and trainable
    with_biases = tiny_backbone()
    NormOnly(biases=True).prepare(with_biases, with_biases.layer_groups())
    assert _trainable(with_biases.generator) > trainable


def test_a_target_that_matches_nothing_is_an_error_naming_the_groups() -> None:
    net = tiny_backbone()
    with pytest.raises(ValueError, match="generator.encoder"):
        LoRA(targets=("decoder.*",)).prepare(net, net.layer_groups())


def _convolution_backwards(net, image, mask) -> int:  # type: ignore[no-untyped-def]
    from torch.profiler import ProfilerActivity, profile

    net.train()
    loss = net.generate(image[None], mask[None]).image.mean()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        loss.backward()
    return sum(e.count for e in prof.key_averages() if e.key == "ConvolutionBackward0")


def test_the_backward_pass_stops_below_the_first_trainable_layer() -> None:
    """The profiler counts the convolution backward passes autograd runs: freezing the encoder
    and the residual blocks leaves out theirs, whole."""
    image, mask = photo_and_mask(64)
    whole = _convolution_backwards(tiny_backbone(), image, mask)
    net = tiny_backbone()
    groups = net.layer_groups()
    for name in FreezeEarly()(groups):
        groups[name].requires_grad_(False)
    early_convs = sum(
        isinstance(m, nn.Conv2d)
        for name in ("generator.encoder", "generator.residual.1", "generator.residual.2")
        for m in groups[name].modules()
    )
    frozen = _convolution_backwards(net, image, mask)
    assert early_convs > 0 and frozen <= whole - early_convs


@pytest.mark.parametrize("policy", ["lora", "norm-only"])
def test_a_run_returns_the_backbones_own_structure_making_the_returned_fill(policy: str) -> None:
    image, mask = photo_and_mask(64)
    spec = override(get_strategy("default"), steps=3, freeze=policy)
    result = run_ttt(_trained_like(), image, mask, spec, RunOptions(seed=2, precision="fp32"))
    network = result.network
    assert network is not None
    assert not any(isinstance(m, LoRAConv2d) for m in network.modules())
    holes = mask.expand_as(image) > 0.5
    refill = _fill(network, image, mask)[0]
    torch.testing.assert_close(refill[holes], result.finetuned[holes], atol=2e-4, rtol=1e-3)
    assert not torch.equal(result.finetuned, result.raw)  # it did train


def test_lora_adapts_the_network_where_groups_are_views_of_its_modules() -> None:
    """LaMa's groups are lists made of its Sequential's modules: the adapters must go into the
    network itself, and merge back into it."""
    import tttkit

    torch.manual_seed(0)
    net = tttkit.registry("backbones").get("lama")(ngf=8, n_blocks=1, max_features=32)
    image, mask = photo_and_mask(32)
    policy = LoRA(rank=2)
    policy.prepare(net, net.layer_groups())
    adapters = [m for m in net.modules() if isinstance(m, LoRAConv2d)]
    assert adapters
    with torch.no_grad():
        for adapter in adapters:
            adapter.up.weight.normal_(0, 0.05)
    adapted = _fill(net, image, mask)
    policy.finalize(net)
    assert not any(isinstance(m, LoRAConv2d) for m in net.modules())
    torch.testing.assert_close(_fill(net, image, mask), adapted, atol=1e-4, rtol=1e-3)


def test_last_k_trains_only_the_last_generator_groups() -> None:
    from tttkit_strategies.freezing import TrainLastGroups

    groups = tiny_backbone().layer_groups()
    generator_groups = [g for g in groups if g.startswith("generator.")]
    frozen = TrainLastGroups(k=2)(groups)
    assert frozen == set(generator_groups[:-2])  # the discriminator is not a generator group
    with pytest.raises(ValueError, match="k"):
        TrainLastGroups(k=0)


def test_the_command_line_lists_the_parameter_efficient_policies() -> None:
    from typer.testing import CliRunner

    from tttkit.cli import app

    result = CliRunner().invoke(app, ["list", "freezing-policies", "--json"])
    assert result.exit_code == 0, result.stderr
    listed = result.stdout
    for name in ("norm-only", "lora", "last-k"):
        assert f'"{name}"' in listed
