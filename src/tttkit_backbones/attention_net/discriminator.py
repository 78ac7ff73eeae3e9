"""SN-PatchGAN discriminator (Yang et al.'s ``build_discriminator_256``).

Five 4×4 convolutions with spectral norm and biases; LeakyReLU(0.2) after all but the last:
``width·(1, 2, 4, 8)`` channels at strides 2, 2, 2, 1, then one channel at stride 1. Padding is
TensorFlow's ``SAME`` (output ``ceil(size / stride)``), which for a 4×4 kernel at stride 1 is
asymmetric (1 before, 2 after): that is what makes a 256² image give exactly 32×32 logits,
where symmetric padding would give 31×31 or 33×33.
"""

from __future__ import annotations

import math

import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm

KERNEL_SIZE = 4


def same_padding(size: int, kernel_size: int, stride: int) -> tuple[int, int]:
    """``(before, after)`` padding of TensorFlow's ``SAME`` mode along one axis."""
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + kernel_size - size, 0)
    return total // 2, total - total // 2


class DiscriminatorConv(nn.Module):
    """``SAME``-padded 4×4 spectral-norm convolution (+ LeakyReLU 0.2)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, activation: bool) -> None:
        super().__init__()
        self.stride = stride
        self.conv = spectral_norm(nn.Conv2d(in_channels, out_channels, KERNEL_SIZE, stride))
        self.act = nn.LeakyReLU(0.2) if activation else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        """Pad, convolve, activate."""
        top, bottom = same_padding(x.shape[-2], KERNEL_SIZE, self.stride)
        left, right = same_padding(x.shape[-1], KERNEL_SIZE, self.stride)
        return self.act(self.conv(F.pad(x, (left, right, top, bottom))))


class PatchDiscriminator(nn.Module):
    """Patch logits for an RGB image in ``[-1, 1]``.

    Args:
        width: channels of the first layer; doubled at each following hidden layer.
        hidden_layers: convolutions before the final 1-channel one (4 in the reference). The first
            three have stride 2, later ones stride 1; the final layer has stride 1.
    """

    def __init__(self, width: int = 64, hidden_layers: int = 4) -> None:
        super().__init__()
        if hidden_layers < 1:
            raise ValueError(f"hidden_layers must be at least 1, got {hidden_layers}")
        layers = []
        channels = 3
        for index in range(hidden_layers):
            out = width * 2**index
            layers.append(DiscriminatorConv(channels, out, 2 if index < 3 else 1, activation=True))
            channels = out
        layers.append(DiscriminatorConv(channels, 1, 1, activation=False))
        self.layers = nn.Sequential(*layers)

    def forward(self, image: Tensor) -> Tensor:
        """``(B, 3, H, W)`` → ``(B, 1, ceil(H / 2^s), ceil(W / 2^s))`` with s = min(3, layers)."""
        return self.layers(image)


__all__ = ["DiscriminatorConv", "PatchDiscriminator", "same_padding"]
