"""Tests of the execution settings: device, precision, memory layout, allocator, weight grads."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from tests.helpers import photo_and_mask, tiny_backbone
from tttkit.engine import run_ttt
from tttkit.engine.execution import (
    no_weight_grads,
    resolve_device,
    resolve_precision,
    tune_allocator,
)
from tttkit.io import InputError
from tttkit.options import RunOptions
from tttkit.strategy import get_strategy, override


def _quick():
    return override(get_strategy("baseline"), steps=2, sets=["losses.perceptual=0"])


def test_precision_choices_on_the_cpu() -> None:
    cpu = torch.device("cpu")
    assert resolve_precision("auto", cpu) is None  # bf16 is no faster on CPUs without AMX
    assert resolve_precision("fp32", cpu) is None
    assert resolve_precision("bf16", cpu) is torch.bfloat16
    with pytest.raises(InputError, match="--precision 'fp8'"):
        resolve_precision("fp8", cpu)


def test_bad_device_names_the_option() -> None:
    with pytest.raises(InputError, match="--device"):
        resolve_device("gpu0")


def test_bf16_and_channels_last_runs_complete_the_image() -> None:
    image, mask = photo_and_mask()
    plain = run_ttt(tiny_backbone(), image, mask, _quick(), RunOptions(seed=1))
    layout = run_ttt(tiny_backbone(), image, mask, _quick(), RunOptions(seed=1, channels_last=True))
    # Same arithmetic in another memory layout: equal up to summation order.
    torch.testing.assert_close(layout.finetuned, plain.finetuned, atol=1e-4, rtol=0)
    half = run_ttt(tiny_backbone(), image, mask, _quick(), RunOptions(seed=1, precision="bf16"))
    known = mask.expand_as(image) == 0
    assert half.finetuned.dtype == torch.float32
    assert torch.equal(half.finetuned[known], image[known])
    assert torch.isfinite(half.finetuned).all()
    # The untrained network's fill agrees to bf16's 8 mantissa bits (training then diverges).
    assert (half.raw - plain.raw).abs().mean() < 0.02


def test_no_weight_grads_lets_input_gradients_through_and_restores_flags() -> None:
    critic = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Conv2d(4, 1, 3))
    critic[0].bias.requires_grad_(False)  # frozen by a policy: must stay frozen
    image = torch.rand(1, 3, 16, 16, requires_grad=True)
    with no_weight_grads(critic):
        critic(image).mean().backward()
    assert image.grad is not None and image.grad.abs().sum() > 0
    assert all(p.grad is None for p in critic.parameters())
    flags = [p.requires_grad for p in critic.parameters()]
    assert flags == [True, False, True, True]


def test_tune_allocator_reports_whether_it_applied() -> None:
    import platform

    applied = tune_allocator()
    assert isinstance(applied, bool)
    if platform.system() == "Linux" and platform.libc_ver()[0] == "glibc":
        assert applied
