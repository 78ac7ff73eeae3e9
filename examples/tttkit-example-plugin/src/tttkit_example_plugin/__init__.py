"""An example third-party tttkit plugin: the ``tiny-unet`` backbone and ``example-quick`` strategy.

Everything a plugin needs is here: subclass :class:`tttkit.Backbone`, declare its conventions,
name its layer groups, and register it (and any strategy) through hook implementations.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

import tttkit
from tttkit import Backbone, Conventions, GeneratorOutput, StrategySpec
from tttkit_strategies.ablations import BASELINE


def _conv(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1), nn.LeakyReLU(0.2))


class TinyUNet(Backbone):
    """A two-level U-Net for small images: masked RGB + mask in, RGB out, all in [0, 1].

    Args:
        width: channels of the first level (the second has twice as many).
    """

    def __init__(self, width: int = 16) -> None:
        # This network reads [0, 1] images and needs sizes divisible by 2.
        super().__init__(
            Conventions(value_range=(0.0, 1.0), hole_value=1, pad_multiple=2, working_size=64),
            {"width": width},
        )
        # Every module lives once in the tree (under `generator`): a module registered twice
        # would be saved twice, and safetensors refuses tensors that share memory.
        self.generator = nn.ModuleDict({
            "encoder": nn.Sequential(_conv(4, width), _conv(width, 2 * width, stride=2)),
            "decoder": nn.Sequential(
                nn.Upsample(scale_factor=2, mode="nearest"), _conv(2 * width, width),
                nn.Conv2d(width, 3, 3, 1, 1), nn.Sigmoid(),
            ),
        })  # fmt: skip
        self.discriminator = nn.Sequential(
            _conv(3, width, stride=2), _conv(width, 2 * width, stride=2),
            nn.Conv2d(2 * width, 1, 3, 1, 1),
        )  # fmt: skip

    def native_generate(self, image: Tensor, mask: Tensor) -> GeneratorOutput:
        x = torch.cat([image * (1 - mask), mask], dim=1)
        return GeneratorOutput(image=self.generator["decoder"](self.generator["encoder"](x)))

    def native_discriminate(self, image: Tensor) -> Tensor:
        return self.discriminator(image)

    def layer_groups(self) -> dict[str, nn.Module]:
        return {
            "generator.encoder": self.generator["encoder"],
            "generator.decoder": self.generator["decoder"],
            "discriminator.conv1": self.discriminator[0],
            "discriminator.conv2": self.discriminator[1],
            "discriminator.conv3": self.discriminator[2],
        }


@tttkit.hookimpl
def tttkit_register_backbones(register: Callable[..., None]) -> None:
    """Register the tiny U-Net."""
    register("tiny-unet", TinyUNet, description="tiny two-level U-Net (example plugin)")


@tttkit.hookimpl
def tttkit_register_strategies(register: Callable[[StrategySpec], None]) -> None:
    """Register a quick strategy derived from the thesis baseline."""
    register(
        BASELINE.derive(
            "example-quick",
            "the thesis baseline, shortened to 20 steps of 2 views, without the perceptual "
            "loss so that it runs offline (example plugin)",
            {"steps": 20, "batch_size": 2, "losses.perceptual": 0.0},
        )
    )
