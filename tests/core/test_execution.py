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


CPUINFO = """processor\t: 0
vendor_id\t: AuthenticAMD
flags\t\t: fpu sse2 avx2 avx512f {extra}
processor\t: 1
flags\t\t: fpu sse2 avx2 avx512f {extra}
"""


@pytest.fixture
def cpu_with(monkeypatch: pytest.MonkeyPatch, tmp_path):  # type: ignore[no-untyped-def]
    """Make tttkit read a /proc/cpuinfo with the given extra flags."""
    from tttkit.engine import execution

    def use(extra: str) -> None:
        info = tmp_path / "cpuinfo"
        info.write_text(CPUINFO.format(extra=extra))
        monkeypatch.setattr(execution, "CPUINFO", info)
        execution.cpu_has_native_bf16.cache_clear()

    yield use
    execution.cpu_has_native_bf16.cache_clear()


def test_cpu_flags_are_read_from_cpuinfo(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from tttkit.engine.execution import cpu_flags

    info = tmp_path / "cpuinfo"
    info.write_text(CPUINFO.format(extra="avx512_bf16"))
    assert {"avx2", "avx512f", "avx512_bf16"} <= cpu_flags(info)
    assert cpu_flags(tmp_path / "missing") == frozenset()  # not Linux, or unreadable: no flags


@pytest.mark.parametrize(
    ("extra", "auto"),
    [("", None), ("avx512_bf16", torch.bfloat16), ("amx_bf16 amx_tile", torch.bfloat16)],
    ids=["avx2-avx512", "avx512-bf16", "amx"],
)
def test_auto_precision_on_the_cpu_follows_native_bf16(cpu_with, extra, auto) -> None:  # type: ignore[no-untyped-def]
    cpu_with(extra)
    cpu = torch.device("cpu")
    assert resolve_precision("auto", cpu) is auto  # bf16 only where it is native (fast)
    assert resolve_precision("fp32", cpu) is None
    assert resolve_precision("bf16", cpu) is torch.bfloat16  # asked for: always honoured


def test_native_bf16_can_be_turned_off(cpu_with, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    cpu_with("avx512_bf16")
    monkeypatch.setenv("TTTKIT_CPU_BF16", "0")
    from tttkit.engine.execution import cpu_has_native_bf16

    cpu_has_native_bf16.cache_clear()
    assert resolve_precision("auto", torch.device("cpu")) is None


def test_unknown_precision_names_the_option() -> None:
    with pytest.raises(InputError, match="--precision 'fp8'"):
        resolve_precision("fp8", torch.device("cpu"))


def test_bad_device_names_the_option() -> None:
    with pytest.raises(InputError, match="--device"):
        resolve_device("gpu0")


def test_bf16_and_channels_last_runs_complete_the_image() -> None:
    image, mask = photo_and_mask()
    fp32 = RunOptions(seed=1, precision="fp32")
    plain = run_ttt(tiny_backbone(), image, mask, _quick(), fp32)
    layout = run_ttt(tiny_backbone(), image, mask, _quick(), fp32.replace(channels_last=True))
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
