"""The ``head`` policy: a trainable structure on the frozen network's output (thesis §5)."""

from __future__ import annotations

import pytest
import torch

from tests.helpers import photo_and_mask
from tests.strategies.test_efficient import _fill, _trained_like
from tttkit.backbone import OUTPUT_HEAD
from tttkit.components import ParameterAdapter
from tttkit.engine import run_ttt
from tttkit.options import RunOptions
from tttkit.strategy import get_strategy, override
from tttkit_strategies.output_head import Head, OutputHead


def _headed():  # type: ignore[no-untyped-def]
    net = _trained_like()
    policy = Head(width=8, dilations=(1, 2))
    groups = net.layer_groups()
    for name in policy(groups):
        groups[name].requires_grad_(False)
    policy.prepare(net, groups)
    return net


def test_the_head_starts_as_the_identity_of_the_backbones_fill() -> None:
    image, mask = photo_and_mask(64)
    plain = _trained_like()
    assert isinstance(Head(), ParameterAdapter)
    assert torch.equal(_fill(_headed(), image, mask), _fill(plain, image, mask))  # bit for bit


def test_only_the_heads_parameters_get_gradients_and_the_backbone_records_no_graph() -> None:
    image, mask = photo_and_mask(64)
    net = _headed().train()
    head = getattr(net.generator, OUTPUT_HEAD)
    inside: list[bool] = []  # whether the generator's own layers' outputs carry a graph
    in_head = {id(m) for m in head.modules()}
    for module in net.generator.modules():
        if id(module) not in in_head and not any(m is head for m in module.modules()):
            module.register_forward_hook(
                lambda m, a, out: inside.append(getattr(out, "requires_grad", False))
            )
    out = net.generate(image[None], mask[None]).image
    (out - image[None]).abs().mean().backward()
    assert inside and not any(inside)  # forward only: autograd kept nothing for the backbone
    for name, parameter in net.named_parameters():
        in_head = name.startswith(f"generator.{OUTPUT_HEAD}.")
        assert (parameter.grad is not None) == in_head, name
    # the head's zero-initialised last layer receives a gradient from the first step
    assert head.body[-1].weight.grad.abs().sum() > 0


def test_the_head_changes_only_the_holes() -> None:
    image, mask = photo_and_mask(64)
    head = OutputHead(width=4, dilations=(1,))
    with torch.no_grad():
        head.body[-1].weight.normal_(0, 0.5)
        out = head(image[None], image[None], mask[None])
    known = mask.expand_as(image)[None] < 0.5
    assert torch.equal(out[known], image[None][known])
    assert (out - image[None])[~known].abs().max() > 1e-3


def test_a_run_with_the_head_trains_it_and_returns_the_network_that_made_the_fill() -> None:
    image, mask = photo_and_mask(64)
    user = _trained_like()
    before = {k: v.clone() for k, v in user.state_dict().items()}
    spec = override(get_strategy("default"), steps=3, freeze="head")
    result = run_ttt(user, image, mask, spec, RunOptions(seed=1, precision="fp32"))
    assert not torch.equal(result.finetuned, result.raw)  # it trained
    network = result.network
    assert network is not None and hasattr(network.generator, OUTPUT_HEAD)
    holes = mask.expand_as(image) > 0.5
    refill = _fill(network, image, mask)[0]
    torch.testing.assert_close(refill[holes], result.finetuned[holes], atol=2e-4, rtol=1e-3)
    # the backbone's own weights did not move, and the user's network has no head
    for key, value in network.state_dict().items():
        if not key.startswith(f"generator.{OUTPUT_HEAD}."):
            assert torch.equal(value, before[key]), key
    assert not hasattr(user.generator, OUTPUT_HEAD)


def test_bad_head_settings_name_the_policy() -> None:
    with pytest.raises(ValueError, match="head: width"):
        Head(width=0)
    with pytest.raises(ValueError, match="dilations"):
        Head(dilations=())
