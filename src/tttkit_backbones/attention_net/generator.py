"""The multi-scale attention generator (thesis §3.3, Fig. 3.3; Yang, Qi & Shi, AAAI 2020).

For the thesis size (``width=64``, two downsamplings) and a 256² input::

    11 ch ─ 7×7 conv 64 ─ 4×4 s2 conv 128 ─ 4×4 s2 conv 256 ─ 8 residual blocks (256 ch, 64²)
    decoder 1 (64²):  attention(256) ─ 5×5 conv 256 ─ [heads] ─ concat ─ 4×4 s2 deconv → 128
    decoder 2 (128²): attention(128) ─ 5×5 conv 128 ─ [heads] ─ concat ─ 4×4 s2 deconv → 64
    decoder 3 (256²): attention(64)  ─ 5×5 conv 64  ─ 1×1 RGB head (tanh) = output [+ grad head]

"concat" joins the attention output with the 5×5 conv's output before the transposed conv.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .attention import make_attention
from .inputs import INPUT_CHANNELS
from .layers import ConvBlock, ResidualBlock, UpBlock


class Head(nn.Module):
    """1×1 output head, a ``gen_conv`` like the rest: conv (+ affine instance norm) (+ tanh).

    The reference normalises its heads too, so the pre-tanh RGB of every image has the learned
    per-channel mean and spread; the thesis's parameter count includes those 2×3 norm
    parameters. ``norm=False`` drops them. ``zero=True`` starts the head at exactly zero (a
    residual head: the network starts as the identity on whatever the residual is added to).
    """

    def __init__(
        self, in_channels: int, out_channels: int, tanh: bool, norm: bool, zero: bool = False
    ) -> None:
        super().__init__()
        self.block = ConvBlock(
            in_channels, out_channels, 1, activation=nn.Tanh() if tanh else None, norm=norm
        )
        if zero:
            nn.init.zeros_(self.block.conv.weight)
            nn.init.zeros_(self.block.conv.bias)

    def forward(self, x: Tensor) -> Tensor:
        """Project features to the head's output."""
        return self.block(x)


class DecoderStage(nn.Module):
    """One decoder scale: attention → 5×5 conv block → heads → (concat → transposed conv up).

    Args:
        channels: feature channels at this scale.
        attention: ``"self"`` or ``"contextual"``.
        upsample: whether a transposed conv to the next, finer scale follows (all but the last).
        rgb_head: whether this scale predicts RGB (always on the last stage).
        gradient_head: whether this scale predicts the 6 Sobel channels.
        head_norm: instance norm inside the heads.
        residual_rgb: the RGB head predicts a correction to a base image (linear, no norm,
            zero at initialisation) instead of a tanh image.
    """

    def __init__(
        self,
        channels: int,
        attention: str,
        upsample: bool,
        rgb_head: bool,
        gradient_head: bool,
        head_norm: bool,
        residual_rgb: bool = False,
    ) -> None:
        super().__init__()
        self.attention = make_attention(attention, channels)
        self.conv = ConvBlock(channels, channels, 5, activation=nn.ReLU())
        self.rgb = None
        if rgb_head:
            self.rgb = (
                Head(channels, 3, tanh=False, norm=False, zero=True)
                if residual_rgb
                else Head(channels, 3, tanh=True, norm=head_norm)
            )
        self.gradients = Head(channels, 6, tanh=False, norm=head_norm) if gradient_head else None
        self.up = UpBlock(2 * channels, channels // 2) if upsample else None

    def forward(
        self, x: Tensor, mask: Tensor
    ) -> tuple[Tensor | None, Tensor | None, Tensor | None]:
        """Return ``(features for the next scale or None, rgb or None, gradients or None)``."""
        x = self.attention(x, mask)
        features = self.conv(x)
        rgb = self.rgb(features) if self.rgb is not None else None
        gradients = self.gradients(features) if self.gradients is not None else None
        following = self.up(torch.cat((x, features), dim=1)) if self.up is not None else None
        return following, rgb, gradients


class AttentionGenerator(nn.Module):
    """Encoder, residual bottleneck and multi-scale attention decoder.

    Args:
        width: channels of the first convolution; doubled at every downsampling.
        residual_blocks: number of residual blocks at the bottleneck.
        downsamplings: number of 4×4 stride-2 encoder convolutions; the decoder has one scale more.
        attention: ``"self"`` or ``"contextual"``.
        aux_heads: RGB heads on the coarser scales and gradient heads on every scale (Yang et al.'s
            pyramid supervision); without them only the final RGB head exists (the thesis).
        head_norm: instance norm inside the 1×1 heads (the reference has it).
        residual_rgb: every RGB head predicts a correction added, inside the holes only, to a
            base image passed to :meth:`forward` (average-pooled to the coarser scales; the sum
            clamped to ``[-1, 1]``) instead of a tanh image.
    """

    def __init__(
        self,
        width: int,
        residual_blocks: int,
        downsamplings: int,
        attention: str,
        aux_heads: bool,
        head_norm: bool,
        residual_rgb: bool = False,
    ) -> None:
        super().__init__()
        self.downsamplings = downsamplings
        self.residual_rgb = residual_rgb
        layers: list[nn.Module] = [ConvBlock(INPUT_CHANNELS, width, 7, activation=nn.ReLU())]
        channels = width
        for _ in range(downsamplings):
            layers.append(ConvBlock(channels, 2 * channels, 4, stride=2, activation=nn.ReLU()))
            channels *= 2
        self.encoder = nn.Sequential(*layers)
        self.residual = nn.Sequential(*(ResidualBlock(channels) for _ in range(residual_blocks)))
        stages = []
        for index in range(downsamplings + 1):
            last = index == downsamplings
            stages.append(
                DecoderStage(
                    channels,
                    attention,
                    upsample=not last,
                    rgb_head=aux_heads or last,
                    gradient_head=aux_heads,
                    head_norm=head_norm,
                    residual_rgb=residual_rgb,
                )
            )
            channels //= 2
        self.decoder = nn.ModuleList(stages)

    def forward(
        self, x: Tensor, mask: Tensor, base: Tensor | None = None
    ) -> tuple[Tensor, list[Tensor], list[Tensor]]:
        """Run the generator.

        Args:
            x: ``(B, 11, H, W)`` input from :func:`~.inputs.build_input`; H and W multiples of
                ``2 ** (downsamplings + 1)``.
            mask: ``(B, 1, H, W)``, 1 = hole (used by contextual attention).
            base: ``(B, 3, H, W)`` image the residual RGB heads correct (required with
                ``residual_rgb``, ignored otherwise).

        Returns:
            ``(rgb, pyramid, gradients)``: the full-size tanh RGB, the coarser RGB predictions
            (coarsest first), and the gradient predictions of every scale (coarsest first).
        """
        if self.residual_rgb and base is None:
            raise ValueError("a generator with residual RGB heads needs the base image")
        features = self.residual(self.encoder(x))
        pyramid: list[Tensor] = []
        gradients: list[Tensor] = []
        rgb: Tensor | None = None
        for index, stage in enumerate(self.decoder):
            factor = 2 ** (self.downsamplings - index)
            # "Any hole in the cell" keeps contextual attention from matching half-hole cells.
            scale_mask = F.max_pool2d(mask, factor) if factor > 1 else mask
            following, rgb, grad = stage(features, scale_mask)
            if rgb is not None and self.residual_rgb:
                # Corrections inside the holes only: known pixels come back exactly, so no loss
                # on the background pulls the correction towards zero everywhere.
                assert base is not None
                base_s = F.avg_pool2d(base, factor) if factor > 1 else base
                rgb = (base_s + rgb * scale_mask).clamp(-1.0, 1.0)
            if grad is not None:
                gradients.append(grad)
            if following is None:
                break
            if rgb is not None:
                pyramid.append(rgb)
            features = following
        assert rgb is not None  # the last stage always has its RGB head
        return rgb, pyramid, gradients


__all__ = ["AttentionGenerator", "DecoderStage", "Head"]
