"""An example third-party tttkit plugin: the ``tiny-unet`` and ``wrapped-unet`` backbones, the
``encoder-frozen`` freezing policy and the ``example-quick`` strategy.

Everything a plugin needs is here: subclass :class:`tttkit.Backbone`, declare its conventions,
name its layer groups, and register it (and any strategy) through hook implementations; or,
for a network you already have, wrap it with :class:`tttkit.ModuleBackbone`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import torch
from torch import Tensor, nn

import tttkit
from tttkit import Backbone, Conventions, GeneratorOutput, StrategySpec
from tttkit_strategies.presets import BASELINE


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


class PlainUNet(nn.Module):
    """A network as a project has it, in its own conventions: ``forward(image, mask)`` with
    RGB in ``[-1, 1]`` and 1 at holes, returning RGB in ``[-1, 1]`` (tanh)."""

    def __init__(self, width: int = 16) -> None:
        super().__init__()
        self.encoder = nn.Sequential(_conv(4, width), _conv(width, 2 * width, stride=2))
        self.decoder = nn.Sequential(
            nn.Upsample(scale_factor=2, mode="nearest"), _conv(2 * width, width),
            nn.Conv2d(width, 3, 3, 1, 1), nn.Tanh(),
        )  # fmt: skip

    def forward(self, image: Tensor, mask: Tensor) -> Tensor:
        return self.decoder(self.encoder(torch.cat([image * (1 - mask), mask], dim=1)))


class WrappedUNet(tttkit.ModuleBackbone):
    """:class:`PlainUNet` through the wrapper: its conventions stated, its layer groups one per
    child module (``generator.encoder``, ``generator.decoder``), no discriminator.

    Args:
        width: channels of the first level.
    """

    def __init__(self, width: int = 16) -> None:
        super().__init__(PlainUNet(width), value_range=(-1, 1), hole_value=1, working_size=64,
                         pad_multiple=2)  # fmt: skip
        self.config = {"width": width}  # what rebuilds it: WrappedUNet(**config)


class FreezeEncoder:
    """Freeze the generator's encoder groups (and the discriminator): only the decoder trains.

    Args:
        encoder: a substring naming the encoder's layer groups.
    """

    def __init__(self, encoder: str = "encoder") -> None:
        self.encoder = encoder

    def __call__(self, groups: Mapping[str, nn.Module]) -> set[str]:
        frozen = {g for g in groups if g.startswith("discriminator.") or self.encoder in g}
        if not any(self.encoder in g for g in groups):  # a ValueError is a usage error
            raise ValueError(f"no layer group contains {self.encoder!r}")
        return frozen


@tttkit.hookimpl
def tttkit_register_backbones(register: Callable[..., None]) -> None:
    """Register the tiny U-Net, and the plain one through the wrapper."""
    register("tiny-unet", TinyUNet, description="tiny two-level U-Net (example plugin)")
    register("wrapped-unet", WrappedUNet, description="a plain nn.Module, wrapped (example plugin)")


@tttkit.hookimpl
def tttkit_register_freezing_policies(register: Callable[..., None]) -> None:
    """Register the freezing policy."""
    register("encoder-frozen", FreezeEncoder, description="train the decoder only (example plugin)")


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
