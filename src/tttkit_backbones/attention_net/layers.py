"""Convolution building blocks of the attention network's generator.

Every generator convolution follows Yang et al.'s ``gen_conv``: convolution with a bias, then an
affine instance norm, then the activation. The bias is redundant in front of the instance norm
(the norm subtracts the per-channel mean), but it is kept: the thesis's parameter count
(17,849,825) includes it, and checkpoints converted from their code carry it.
"""

from __future__ import annotations

from torch import Tensor, nn

# TensorFlow's ``tf.contrib.layers.instance_norm`` uses 1e-6 (PyTorch's default is 1e-5); keeping
# theirs makes a converted checkpoint reproduce their activations.
NORM_EPS = 1e-6


def instance_norm(channels: int) -> nn.InstanceNorm2d:
    """Affine instance norm without running statistics, as in the reference code."""
    return nn.InstanceNorm2d(channels, eps=NORM_EPS, affine=True)


class ConvBlock(nn.Module):
    """Reflect-padded convolution → optional affine instance norm → optional activation.

    The padding is ``dilation * (kernel_size - 1) // 2`` on every side, so a stride-1 block keeps
    the size and a 4×4 stride-2 block halves an even size exactly (pad 1, as the reference's
    ``REFLECT`` mode does).

    Args:
        in_channels: input channels.
        out_channels: output channels.
        kernel_size: square kernel size.
        stride: convolution stride.
        dilation: dilation rate.
        activation: module applied last (``None`` for a linear output).
        norm: whether to apply the affine instance norm.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        dilation: int = 1,
        activation: nn.Module | None = None,
        norm: bool = True,
    ) -> None:
        super().__init__()
        self.conv = nn.Conv2d(
            in_channels,
            out_channels,
            kernel_size,
            stride=stride,
            dilation=dilation,
            padding=dilation * (kernel_size - 1) // 2,
            padding_mode="reflect",
        )
        self.norm = instance_norm(out_channels) if norm else nn.Identity()
        self.act = activation if activation is not None else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        """Apply convolution, norm and activation."""
        return self.act(self.norm(self.conv(x)))


class UpBlock(nn.Module):
    """4×4 stride-2 transposed convolution → affine instance norm → ReLU; doubles H and W.

    Padding 1 gives exactly ``2 * size``, like TensorFlow's ``SAME`` transposed convolution.
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = nn.ConvTranspose2d(in_channels, out_channels, 4, stride=2, padding=1)
        self.norm = instance_norm(out_channels)
        self.act = nn.ReLU()

    def forward(self, x: Tensor) -> Tensor:
        """Upsample by two."""
        return self.act(self.norm(self.conv(x)))


class ResidualBlock(nn.Module):
    """3×3 dilation-2 conv → IN → ReLU → 3×3 conv → IN, plus the identity skip.

    The dilated first convolution widens the receptive field at the bottleneck without extra
    parameters; there is no activation after the sum (the reference's ``resnet_block21``).
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = ConvBlock(channels, channels, 3, dilation=2, activation=nn.ReLU())
        self.conv2 = ConvBlock(channels, channels, 3)

    def forward(self, x: Tensor) -> Tensor:
        """Residual update of ``x``."""
        return x + self.conv2(self.conv1(x))


__all__ = ["NORM_EPS", "ConvBlock", "ResidualBlock", "UpBlock", "instance_norm"]
