"""Where and how the networks run: device, numeric precision, memory layout, allocator.

These settings change speed, not the method: a run's strategy is the same on every device.
What each one buys on which hardware is measured in ``docs/performance.md``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn

from tttkit.engine.allocator import tune_allocator as tune_allocator
from tttkit.io import InputError

#: ``--precision`` choices. ``auto``: bf16 autocast on a CUDA device that supports it, fp32
#: elsewhere (CPUs without AVX512-BF16 run bf16 convolutions hundreds of times slower).
PRECISIONS = ("auto", "fp32", "bf16")


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
    """The autocast dtype for ``precision`` on ``device`` (``None``: plain fp32)."""
    if precision not in PRECISIONS:
        raise InputError(f"--precision {precision!r}: expected one of {', '.join(PRECISIONS)}")
    cuda_bf16 = device.type == "cuda" and torch.cuda.is_bf16_supported()
    if precision == "fp32" or (precision == "auto" and not cuda_bf16):
        return None
    if device.type == "cuda" and not cuda_bf16:
        raise InputError("--precision bf16: this CUDA device has no bf16 support (use fp32)")
    return torch.bfloat16


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
