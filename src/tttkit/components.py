"""The interfaces of strategy components, as the engine calls them.

Every tensor here is in the engine's convention: RGB in ``[0, 1]`` with shape ``(B, 3, H, W)``,
masks ``(B, 1, H, W)`` of ``0.0``/``1.0`` where ``1`` marks a hidden pixel. Randomness always comes
from the ``torch.Generator`` passed in, so a seed reproduces a run.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Protocol, runtime_checkable

import torch
from torch import Tensor, nn

# Defined in tttkit.errors; still importable from here, where it was first defined.
from tttkit.errors import MaskSamplingError as MaskSamplingError


class FinetuneMaskStrategy(Protocol):
    """Draws one finetuning mask per view (thesis §3.2.2)."""

    def __call__(self, user_mask: Tensor, forbidden: Tensor, generator: torch.Generator) -> Tensor:
        """Return ``(B, 1, H, W)`` finetuning masks that never cover ``forbidden`` pixels.

        Args:
            user_mask: ``(B, 1, H, W)``, 1 at the user's holes (for strategies shaped after them).
            forbidden: ``(B, 1, H, W)``, 1 where a finetuning mask must not go: the user mask
                dilated by the strategy's hole margin, and pixels a geometric augmentation left
                without content.
            generator: the source of randomness.

        Raises:
            MaskSamplingError: no acceptable mask could be drawn (e.g. the known region is too
                small for the requested coverage).
        """
        ...


@dataclass(frozen=True)
class FillContext:
    """What a filler may use besides the image.

    Attributes:
        generator: the source of randomness.
        predict: the current network's completion ``predict(image, mask) -> image`` (``[0, 1]``),
            for fillers that use a coarse approximation; ``None`` outside a run.
    """

    generator: torch.Generator
    predict: Callable[[Tensor, Tensor], Tensor] | None = None


class Filler(Protocol):
    """Fills the user's holes with placeholder content during finetuning (thesis §4.4)."""

    def __call__(self, image: Tensor, user_mask: Tensor, context: FillContext) -> Tensor:
        """Return ``image`` with the pixels under ``user_mask`` replaced; others unchanged."""
        ...


@dataclass(frozen=True)
class View:
    """One training view while it is augmented; tensors are ``(1, C, H, W)``.

    Attributes:
        image: the (filled) user image.
        user_mask: 1 at the user's holes; moves with geometric augmentations.
        finetune_mask: 1 where the view is hidden for training, or ``None`` while the finetuning
            mask is drawn after augmentation.
        empty: 1 where a geometric augmentation left no image content.
    """

    image: Tensor
    user_mask: Tensor
    finetune_mask: Tensor | None
    empty: Tensor

    def with_(self, **changes: Tensor | None) -> View:
        """A copy with some fields replaced."""
        return replace(self, **changes)


@runtime_checkable
class Augmentation(Protocol):
    """A random transformation of a view (thesis §4.3).

    ``geometric`` augmentations move pixels, so they transform the masks too (nearest sampling)
    and mark pixels they leave empty; the others change only the image.
    """

    geometric: bool

    def __call__(self, view: View, generator: torch.Generator) -> View | None:
        """Return the transformed view, or ``None`` when no acceptable sample was found."""
        ...


class FreezingPolicy(Protocol):
    """Chooses the backbone layer groups that stay fixed during finetuning (thesis §4.5)."""

    def __call__(self, groups: Mapping[str, nn.Module]) -> set[str]:
        """Return the names of the frozen groups among ``groups`` (a backbone's layer groups)."""
        ...
