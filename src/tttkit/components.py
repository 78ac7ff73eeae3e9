"""The interfaces of strategy components, as the engine calls them.

Every tensor here is in the engine's convention: RGB in ``[0, 1]`` with shape ``(B, 3, H, W)``,
masks ``(B, 1, H, W)`` of ``0.0``/``1.0`` where ``1`` marks a hidden pixel. Randomness always comes
from the ``torch.Generator`` passed in, so a seed reproduces a run.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Protocol, runtime_checkable

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

    def map_pixels(self, move: Callable[[Tensor], Tensor]) -> View:
        """The view moved by ``move``, an exact rearrangement of pixels (a flip, a quarter turn,
        a shift that fills with zeros) applied alike to the image and every mask.

        For a geometric augmentation: masks stay 0/1 because no pixel is interpolated. A move
        that brings in pixels from outside the frame must mark them in ``empty`` itself (a shift
        fills ``empty`` with zeros: pass ``view.with_(empty=…)``), or use :meth:`warp`.
        """
        return View(
            image=move(self.image),
            user_mask=move(self.user_mask),
            finetune_mask=None if self.finetune_mask is None else move(self.finetune_mask),
            empty=move(self.empty),
        )

    def warp(self, matrix: Tensor, interpolation: str = "bilinear") -> View:
        """The view warped by an affine ``matrix`` ``(2, 3)`` (source → destination pixels,
        as kornia's ``warp_affine``): rotation, shear, scaling, sub-pixel translation.

        The image is resampled with ``interpolation`` (``"bilinear"`` or ``"nearest"``) and
        border padding, so pixels next to the frame do not blend with black; the masks with
        nearest neighbours, so they stay 0/1. A destination pixel whose source lies outside the
        frame, or was already empty, becomes ``empty``, and the image and both masks are zero
        there.
        """
        from kornia.geometry.transform import warp_affine

        image = self.image
        _, _, h, w = image.shape
        m = matrix.to(device=image.device, dtype=torch.float32).reshape(1, 2, 3)
        warped_image = warp_affine(
            image.float(), m, (h, w), mode=interpolation, padding_mode="border", align_corners=True
        ).to(image.dtype)
        # One nearest warp for all masks; "content" = not empty, so zero padding marks vacated
        # pixels.
        parts = [1 - self.empty, self.user_mask]
        if self.finetune_mask is not None:
            parts.append(self.finetune_mask)
        stacked = torch.cat([p.to(self.empty.dtype) for p in parts], dim=1)
        warped = warp_affine(
            stacked.float(), m, (h, w), mode="nearest", padding_mode="zeros", align_corners=True
        ).to(self.empty.dtype)
        content = warped[:, 0:1]
        finetune_mask = None
        if self.finetune_mask is not None:
            finetune_mask = (warped[:, 2:3] * content).to(self.finetune_mask.dtype)
        return View(
            image=warped_image * content.to(image.dtype),
            user_mask=(warped[:, 1:2] * content).to(self.user_mask.dtype),
            finetune_mask=finetune_mask,
            empty=1 - content,
        )


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


@runtime_checkable
class ParameterAdapter(Protocol):
    """A freezing policy that also decides what trains *inside* the groups it leaves trainable
    (parameter-efficient finetuning: only norm affines, low-rank adapters…).

    The engine calls :meth:`prepare` on its copy of the network after freezing the groups the
    policy returned and before collecting the trainable parameters, and :meth:`finalize` on the
    network it returns, after the chosen weights are loaded: whatever ``prepare`` added must be
    folded back, so the returned network has the backbone's own structure — except a structure
    on top of the generator's output (:data:`tttkit.backbone.OUTPUT_HEAD`), which cannot be
    folded in and stays, making the fills it made. A layer group may be
    a view (a list made of the network's modules), so a module is replaced where the network
    holds it, found from ``network``.
    """

    def __call__(self, groups: Mapping[str, nn.Module]) -> set[str]:
        """The names of the groups frozen whole, as a plain freezing policy."""
        ...

    def prepare(self, network: nn.Module, groups: Mapping[str, nn.Module]) -> None:
        """Freeze or add parameters inside ``groups`` (``network``'s layer groups)."""
        ...

    def finalize(self, network: nn.Module) -> None:
        """Fold what :meth:`prepare` added into ``network``'s own parameters."""
        ...


class EvalMaskKind(Protocol):
    """Draws the simulated user mask of one evaluation image (``tttkit masks --kind``).

    Unlike a finetuning mask it knows nothing of the image: the harness seeds ``generator`` from
    the run seed and the image's key, so a mask depends only on the seed, the key and the size.
    """

    def __call__(self, size: int, generator: torch.Generator) -> Tensor:
        """Return a ``(1, size, size)`` mask of ``0.0``/``1.0``, 1 at the holes, with at least
        one hole, drawing every random number from ``generator``."""
        ...


#: The registered finetuning-mask strategy that also simulates users' holes (thesis §4.1) for
#: pretraining and evaluation, found by name so that the core imports no built-in plugin.
FREE_FORM = "free-form"


def free_form_masks(**params: Any) -> Callable[..., Tensor]:
    """The registered :data:`FREE_FORM` strategy built with ``params`` (``alpha``, ``beta``…)."""
    from tttkit.plugins import get_host

    return get_host().registry("finetune-masks").get(FREE_FORM)(**params)  # type: ignore[no-any-return]


@dataclass(frozen=True)
class Alignment:
    """Where a reference photo's pixels land in the target photo, as a reference aligner finds.

    Attributes:
        matrix: ``3×3`` (nested lists or an array) mapping a reference pixel ``(x, y, 1)`` to
            the target's pixel coordinates, homogeneous; ``None`` when the reference does not
            match the target (it is then not used).
        note: why, in a few words for the user ("412 matching points", "too few matching
            points (7)").
    """

    matrix: Any
    note: str


class ReferenceAligner(Protocol):
    """Brings another shot of the same scene into the target photo's frame (``--reference``).

    Called once per reference with full-resolution ``(3, H, W)`` uint8 photos (they may be
    large: work on a reduced copy) and the target's holes ``(1, H, W)`` (uint8, 1 = hole, where
    the target shows something else than the scene: match on the known pixels only).
    """

    def __call__(self, target: Tensor, holes: Tensor, reference: Tensor) -> Alignment:
        """Return the reference-to-target mapping, or ``Alignment(None, why)``."""
        ...
