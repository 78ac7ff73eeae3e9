"""Parameter-efficient finetuning as freezing policies: only what they leave trainable learns.

* ``norm-only``: only the affine parameters of normalization layers (and, optionally, biases) in
  the target groups train, as test-time adaptation methods do (TENT trains batch-norm affines;
  BitFit, biases).
* ``lora``: low-rank adapters on the convolutions of the target groups (Hu et al., LoRA, applied
  to 2-D convolutions): each conv ``W`` gains ``ΔW = (alpha / rank) · B ∘ A`` with ``A`` a
  ``rank``-channel conv of ``W``'s kernel, stride and padding and ``B`` a 1×1 conv starting at
  zero, so step 0 is the pretrained network. Only ``A`` and ``B`` train; at the end they are
  merged into ``W`` and the adapters removed, so the returned network has the backbone's own
  structure and speed.

Groups are chosen by glob over the backbone's layer groups (default: the generator's); the
others keep training whole unless the strategy's other settings freeze them. Frozen weights
get no gradient, and autograd does no work below the first layer that has something to train.
"""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Callable, Mapping

import torch
from torch import Tensor, nn

from tttkit.plugins import hookimpl

#: Normalization layers whose affine parameters ``norm-only`` trains.
NORM_TYPES: tuple[type[nn.Module], ...] = (
    nn.modules.batchnorm._BatchNorm,
    nn.modules.instancenorm._InstanceNorm,
    nn.GroupNorm,
    nn.LayerNorm,
)


def _targets(groups: Mapping[str, nn.Module], patterns: tuple[str, ...]) -> dict[str, nn.Module]:
    """The groups matching any pattern; a pattern matching none is an error naming the groups."""
    chosen: dict[str, nn.Module] = {}
    for pattern in patterns:
        matched = {k: v for k, v in groups.items() if fnmatch.fnmatchcase(k, pattern)}
        if not matched:
            raise ValueError(
                f"target pattern {pattern!r} matches no layer group of this backbone; its "
                f"groups are: {', '.join(groups)}"
            )
        chosen.update(matched)
    return chosen


class NormOnly:
    """Train only normalization affines (and biases, with ``biases``) in the target groups.

    Args:
        targets: glob patterns over layer-group names.
        biases: also train every bias in the target groups (BitFit).
    """

    def __init__(self, targets: tuple[str, ...] = ("generator.*",), biases: bool = False) -> None:
        self.targets, self.biases = tuple(targets), biases

    def __call__(self, groups: Mapping[str, nn.Module]) -> set[str]:
        return set()  # nothing frozen whole; prepare() freezes inside the targets

    def prepare(self, network: nn.Module, groups: Mapping[str, nn.Module]) -> None:
        trainable = 0
        for group in _targets(groups, self.targets).values():
            for module in group.modules():
                is_norm = isinstance(module, NORM_TYPES)
                for name, parameter in module.named_parameters(recurse=False):
                    keep = is_norm or (self.biases and name == "bias")
                    parameter.requires_grad_(keep and parameter.requires_grad)
                    trainable += parameter.numel() if keep else 0
        if trainable == 0:
            what = "normalization layers or biases" if self.biases else "normalization layers"
            raise ValueError(
                f"norm-only: the target groups {list(self.targets)} have no {what} with "
                "parameters to train (try biases=true, or another freezing policy)"
            )

    def finalize(self, network: nn.Module) -> None:
        """Nothing was added."""


class LoRAConv2d(nn.Module):
    """A frozen convolution plus a trainable low-rank update of its weight.

    ``forward(x) = conv(x) + scale · B(A(x))``: ``A`` has the conv's kernel, stride, padding
    and dilation with ``rank`` output channels, ``B`` is 1×1 and starts at zero.
    """

    def __init__(self, conv: nn.Conv2d, rank: int, alpha: float) -> None:
        super().__init__()
        self.conv = conv
        self.scale = alpha / rank
        self.down = nn.Conv2d(
            conv.in_channels, rank, conv.kernel_size, conv.stride, conv.padding,
            conv.dilation, bias=False, padding_mode=conv.padding_mode,
        )  # fmt: skip
        self.up = nn.Conv2d(rank, conv.out_channels, 1, bias=False)
        nn.init.kaiming_uniform_(self.down.weight, a=math.sqrt(5))
        nn.init.zeros_(self.up.weight)
        weight = conv.weight
        self.down.to(device=weight.device, dtype=weight.dtype)
        self.up.to(device=weight.device, dtype=weight.dtype)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(x) + self.scale * self.up(self.down(x))

    def delta(self) -> Tensor:
        """``ΔW`` in the conv's weight layout ``(out, in, kh, kw)``."""
        up = self.up.weight.flatten(1)  # (out, rank)
        down = self.down.weight.flatten(1)  # (rank, in·kh·kw)
        return (self.scale * up @ down).reshape_as(self.conv.weight)

    def merged(self) -> nn.Conv2d:
        """The conv with the update folded into its weight."""
        with torch.no_grad():
            self.conv.weight.add_(self.delta().to(self.conv.weight.dtype))
        return self.conv


def _eligible(module: nn.Module) -> bool:
    """Plain convolutions: no groups (a low-rank update of a depthwise conv is not low-rank
    in the same sense) and no parametrization (spectral norm recomputes the weight)."""
    return (
        type(module) is nn.Conv2d
        and module.groups == 1
        and not nn.utils.parametrize.is_parametrized(module)
    )


def _replace_children(root: nn.Module, swap: Callable[[nn.Module], nn.Module | None]) -> None:
    """Replace every descendant ``m`` for which ``swap(m)`` is not ``None``, where its parent
    holds it."""
    for name, child in list(root.named_children()):
        new = swap(child)
        if new is not None:
            setattr(root, name, new)
        elif not isinstance(child, LoRAConv2d):  # a shared module met again: adapted once
            _replace_children(child, swap)


class LoRA:
    """Low-rank adapters on the convolutions of the target groups; everything else there is
    frozen. Merged into the weights at the end.

    Args:
        rank: channels of each update (its rank).
        alpha: the update's scale is ``alpha / rank``.
        targets: glob patterns over layer-group names.
        min_channels: convolutions with fewer output channels stay frozen without an adapter
            (an RGB head would get an update of nearly full rank).
    """

    def __init__(
        self,
        rank: int = 4,
        alpha: float = 4.0,
        targets: tuple[str, ...] = ("generator.*",),
        min_channels: int = 8,
    ) -> None:
        if rank < 1:
            raise ValueError(f"rank must be at least 1, got {rank}")
        if not (alpha > 0 and math.isfinite(alpha)):
            raise ValueError(f"alpha must be a positive number, got {alpha}")
        self.rank, self.alpha = rank, alpha
        self.targets, self.min_channels = tuple(targets), min_channels

    def __call__(self, groups: Mapping[str, nn.Module]) -> set[str]:
        return set()

    def prepare(self, network: nn.Module, groups: Mapping[str, nn.Module]) -> None:
        chosen: set[int] = set()
        for group in _targets(groups, self.targets).values():
            group.requires_grad_(False)
            chosen |= {
                id(m) for m in group.modules()
                if _eligible(m) and m.out_channels >= self.min_channels
            }  # fmt: skip
        if not chosen:
            raise ValueError(
                f"lora: the target groups {list(self.targets)} have no plain Conv2d with at "
                f"least {self.min_channels} output channels to adapt"
            )
        # Replaced where the network holds them (a group may be a list made for naming).
        _replace_children(
            network,
            lambda m: (
                LoRAConv2d(m, min(self.rank, m.out_channels), self.alpha)
                if id(m) in chosen
                else None
            ),
        )

    def finalize(self, network: nn.Module) -> None:
        _replace_children(network, lambda m: m.merged() if isinstance(m, LoRAConv2d) else None)


@hookimpl
def tttkit_register_freezing_policies(register) -> None:  # type: ignore[no-untyped-def]
    """Parameter-efficient finetuning policies."""
    register("norm-only", NormOnly, description="train only norm affines (and biases, optional)")
    register("lora", LoRA, description="low-rank adapters on convolutions, merged at the end")
