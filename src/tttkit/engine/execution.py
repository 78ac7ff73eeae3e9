"""Where and how the networks run: device, numeric precision, memory layout, allocator.

These settings change speed, not the method: a run's strategy is the same on every device.
What each one buys on which hardware is measured in ``docs/performance.md``.
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Iterator
from pathlib import Path

import torch
from torch import nn

from tttkit.engine.allocator import tune_allocator as tune_allocator
from tttkit.io import InputError

#: ``--precision`` choices. ``auto``: bf16 autocast where the hardware computes in bf16 natively
#: (a CUDA device that supports it, a CPU with AVX512-BF16 or AMX), fp32 elsewhere: CPUs without
#: native bf16 run bf16 convolutions hundreds of times slower (``docs/performance.md``).
PRECISIONS = ("auto", "fp32", "bf16")
#: CPU flags (as Linux lists them in ``/proc/cpuinfo``) of native bf16 arithmetic.
NATIVE_BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})
#: Set to ``0`` to make ``--precision auto`` keep fp32 on a CPU with native bf16.
ENV_CPU_BF16 = "TTTKIT_CPU_BF16"


#: Where Linux describes the CPU (a documented interface, where torch's detection is private).
CPUINFO = Path("/proc/cpuinfo")


def cpu_flags(cpuinfo: str | Path | None = None) -> frozenset[str]:
    """The CPU's feature flags from ``cpuinfo`` (default :data:`CPUINFO`); empty where there is
    no such file (not Linux) or it cannot be read."""
    try:
        text = Path(cpuinfo or CPUINFO).read_text(errors="replace")
    except OSError:
        return frozenset()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "flags":  # the same on every core of the machines tttkit targets
            return frozenset(value.split())
    return frozenset()


@functools.cache
def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes in bf16 natively (AVX512-BF16 or AMX), so bf16 autocast is
    faster than fp32 on it; ``TTTKIT_CPU_BF16=0`` says no."""
    if os.environ.get(ENV_CPU_BF16, "").strip() == "0":
        return False
    return bool(NATIVE_BF16_FLAGS & cpu_flags())


def resolve_device(device: str | torch.device) -> torch.device:
    """``"auto"`` → CUDA when available, else CPU; anything else as given."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError as error:
        raise InputError(f"--device {device!r}: {error} (use auto, cpu or cuda)") from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise InputError("--device cuda: no CUDA device is available (use --device auto or cpu)")
    return resolved


def resolve_precision(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for ``precision`` on ``device`` (``None``: plain fp32).

    ``auto`` is bf16 where the device computes in bf16 natively (:func:`native_bf16`), else fp32.
    """
    if precision not in PRECISIONS:
        raise InputError(f"--precision {precision!r}: expected one of {', '.join(PRECISIONS)}")
    if precision == "fp32" or (precision == "auto" and not native_bf16(device)):
        return None
    if device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise InputError("--precision bf16: this CUDA device has no bf16 support (use fp32)")
    return torch.bfloat16


def native_bf16(device: torch.device) -> bool:
    """Whether ``device`` computes in bf16 natively: a CUDA device with bf16 support, or a CPU
    with AVX512-BF16 or AMX (:func:`cpu_has_native_bf16`)."""
    if device.type == "cuda":
        return bool(torch.cuda.is_bf16_supported())
    return device.type == "cpu" and cpu_has_native_bf16()


@contextlib.contextmanager
def autocast(device: torch.device, dtype: torch.dtype | None) -> Iterator[None]:
    """Mixed precision for the forward passes (and losses) inside; a no-op for fp32."""
    if dtype is None:
        yield
        return
    with torch.autocast(device.type, dtype=dtype):
        yield


@contextlib.contextmanager
def no_weight_grads(module: nn.Module | None) -> Iterator[None]:
    """Run ``module`` without building gradients for its parameters (input gradients still flow).

    The generator's adversarial loss backpropagates *through* the discriminator to the generated
    image; the discriminator's own weight gradients from that pass would be thrown away by its
    next ``zero_grad``, so they are not computed at all.
    """
    if module is None:
        yield
        return
    switched = [p for p in module.parameters() if p.requires_grad]
    for param in switched:
        param.requires_grad_(False)
    try:
        yield
    finally:
        for param in switched:
            param.requires_grad_(True)


def to_memory_format(module: nn.Module, channels_last: bool) -> nn.Module:
    """Put convolution weights in channels-last layout when asked (faster on some GPUs)."""
    return module.to(memory_format=torch.channels_last) if channels_last else module


__all__ = [
    "PRECISIONS",
    "autocast",
    "no_weight_grads",
    "resolve_device",
    "resolve_precision",
    "to_memory_format",
    "tune_allocator",
]
