"""A trainable structure on top of the frozen network: the ``head`` freezing policy.

The thesis's first idea for future work (§5): "design a structure on top of the network
tailored to this finetuning task, and only optimize the parameters of this smaller structure
… reduce computation time because there would be less parameters to optimize". Here the whole
generator is frozen and a small convolutional head refines its fill:

    output = fill + mask · head(fill, known pixels, mask)

Its last layer starts at zero, so at step 0 the output *is* the backbone's fill, bit for bit.
The head works in tttkit's conventions (RGB in ``[0, 1]``, 1 = hole), so it fits any backbone.
With every generator weight frozen, autograd records nothing inside the generator: a step is
the generator's forward pass plus the head's forward and backward, not the generator's
backward. Dilated convolutions give the head a receptive field of ``1 + 2·Σ dilations``
pixels to continue what surrounds a hole.

Unlike LoRA, the head cannot be folded into the backbone's weights: the returned network keeps
it (``generator.output_head``), so it makes the fills it returned.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor, nn

from tttkit.backbone import OUTPUT_HEAD
from tttkit.plugins import hookimpl


class OutputHead(nn.Module):
    """A residual refinement of a fill, zero at initialisation.

    Args:
        width: channels of the hidden layers.
        dilations: one 3×3 convolution per entry, with that dilation.
    """

    def __init__(self, width: int = 32, dilations: tuple[int, ...] = (1, 2, 4, 8)) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(7, width, 3, padding=1), nn.GELU()]
        for dilation in dilations:
            layers += [nn.Conv2d(width, width, 3, padding=dilation, dilation=dilation), nn.GELU()]
        last = nn.Conv2d(width, 3, 1)
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)
        self.body = nn.Sequential(*layers, last)

    def forward(self, fill: Tensor, image: Tensor, mask: Tensor) -> Tensor:
        """``fill`` refined inside ``mask``'s holes; ``image`` is read only where known."""
        mask = mask.to(fill.dtype)
        known = image.to(fill.dtype) * (1.0 - mask)
        return fill + mask * self.body(torch.cat((fill, known, mask), dim=1))


class Head:
    """Freeze the whole generator and train an :class:`OutputHead` on its output.

    Args:
        width: the head's hidden channels.
        dilations: the dilations of its 3×3 convolutions (their number is its depth).
    """

    def __init__(self, width: int = 32, dilations: tuple[int, ...] = (1, 2, 4, 8)) -> None:
        if width < 1 or not dilations or min(dilations) < 1:
            raise ValueError(
                f"head: width must be ≥ 1 and dilations a non-empty list of integers ≥ 1 "
                f"(got width={width}, dilations={list(dilations)})"
            )
        self.width, self.dilations = width, tuple(int(d) for d in dilations)

    def __call__(self, groups: Mapping[str, nn.Module]) -> set[str]:
        return {name for name in groups if name.split(".")[0] == "generator"}

    def prepare(self, network: nn.Module, groups: Mapping[str, nn.Module]) -> None:
        generator = network.generator
        if isinstance(generator, torch.jit.ScriptModule):
            raise ValueError(
                "head: this backbone's generator is a TorchScript module, which cannot take a "
                "trainable head; use another freezing policy"
            )
        generator.requires_grad_(False)
        parameter = next(generator.parameters(), None)
        head = OutputHead(self.width, self.dilations)
        if parameter is not None:
            head.to(device=parameter.device)
        generator.add_module(OUTPUT_HEAD, head)

    def finalize(self, network: nn.Module) -> None:
        """The head stays: it cannot be folded into the backbone's weights (module docstring)."""


@hookimpl
def tttkit_register_freezing_policies(register) -> None:  # type: ignore[no-untyped-def]
    """The thesis's structure on top of the frozen network."""
    register(
        "head",
        Head,
        description="freeze the generator; train a small residual head on its fill",
    )
