"""The executor of augmentation pipelines (thesis §4.3, §4.6): runs an :class:`AugmentSpec`.

It knows no concrete augmentation: each step's components are resolved by name through the
registry (``resolve``) and instantiated once with their parameters. Per view, the pipeline

1. augments at all with probability ``spec.p``;
2. runs the steps in order. A step is skipped when an augmentation named in its ``unless`` was
   already applied; otherwise it fires with probability ``step.p``: one of its ``ops`` is chosen
   uniformly and applied, and, if it was applied, each other alternative follows with probability
   ``step.then_other_p`` (in the order listed). An augmentation returning ``None`` (it found no
   acceptable sample) counts as not applied;
3. after every geometric augmentation, fills the image where the view is ``empty`` with
   ``spec.empty_fill``: ``"zero"`` or ``"random"`` (uniform values, thesis §4.3.2).

All randomness comes from the ``torch.Generator`` passed in, so a seed reproduces the result.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import torch
from torch import Tensor

from tttkit.components import Augmentation, View
from tttkit.config import AugmentSpec, AugmentStep, Component
from tttkit.registry import unknown_parameter

__all__ = ["EMPTY_FILLS", "AugmentCall", "AugmentPipeline", "AugmentedBatch", "plain_call"]

#: Accepted values of :attr:`AugmentSpec.empty_fill`.
EMPTY_FILLS = ("zero", "random")

#: How the pipeline calls one augmentation: ``(name, augmentation, view, generator) -> view
#: | None``. The run passes :meth:`tttkit.engine.contracts.StepChecks.augment`, which checks
#: what the augmentation returns; by default it is simply called.
AugmentCall = Callable[[str, Augmentation, View, torch.Generator], "View | None"]


def plain_call(
    name: str, augmentation: Augmentation, view: View, generator: torch.Generator
) -> View | None:
    """The :data:`AugmentCall` that trusts the augmentation: it only calls it."""
    return augmentation(view, generator)


class AugmentedBatch(NamedTuple):
    """A batch after :meth:`AugmentPipeline.apply_batch`; tensors are ``(B, C, H, W)``.

    Attributes:
        image: the augmented images, empty pixels filled.
        user_mask: the user masks, moved with the geometry.
        finetune_mask: the finetuning masks, moved with the geometry, or ``None`` if none were
            given (they are drawn after augmentation).
        empty: 1 where a geometric augmentation left no content.
        applied: per view, the names of the augmentations applied, in order.
    """

    image: Tensor
    user_mask: Tensor
    finetune_mask: Tensor | None
    empty: Tensor
    applied: tuple[tuple[str, ...], ...]


class _Op(NamedTuple):
    name: str
    augmentation: Augmentation


def _coin(generator: torch.Generator, p: float) -> bool:
    """True with probability ``p``; certain outcomes draw nothing from the generator."""
    if p >= 1.0:
        return True
    if p <= 0.0:
        return False
    return torch.rand((), generator=generator, device=generator.device).item() < p


def _instantiate(
    component: Component, resolve: Callable[[str], Callable[..., Augmentation]]
) -> _Op:
    """Build one augmentation from its component, checking parameter names up front."""
    name = component.name
    factory = resolve(name)
    params = dict(component.params)
    problem = unknown_parameter(factory, params, f"augmentation {name!r}")
    if problem:
        raise ValueError(problem)
    try:
        augmentation = factory(**params)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"augmentation {name!r}: {exc}") from exc
    if not callable(augmentation) or not isinstance(getattr(augmentation, "geometric", None), bool):
        raise TypeError(
            f"augmentation {name!r}: the factory returned {type(augmentation).__name__}, which "
            "is not an Augmentation (a callable with a boolean `geometric` attribute)"
        )
    return _Op(name, augmentation)


class AugmentPipeline:
    """Applies an :class:`AugmentSpec` to views (see the module docstring for the semantics).

    Args:
        spec: the pipeline.
        resolve: returns the registered factory of an augmentation name (e.g. the augmentation
            registry's lookup); it may raise for unknown names.

    Raises:
        ValueError: an unknown ``empty_fill``, a parameter an augmentation does not take, or a
            parameter value its factory rejects; the message names the augmentation.
    """

    def __init__(
        self, spec: AugmentSpec, resolve: Callable[[str], Callable[..., Augmentation]]
    ) -> None:
        if spec.empty_fill not in EMPTY_FILLS:
            raise ValueError(
                f"augment.empty_fill must be one of {', '.join(EMPTY_FILLS)}, "
                f"got {spec.empty_fill!r}"
            )
        self.spec = spec
        self._steps: tuple[tuple[AugmentStep, tuple[_Op, ...]], ...] = tuple(
            (step, tuple(_instantiate(c, resolve) for c in step.ops)) for step in spec.steps
        )

    @property
    def enabled(self) -> bool:
        """Whether any augmentation can happen."""
        return self.spec.enabled

    def __call__(
        self, view: View, generator: torch.Generator, call: AugmentCall = plain_call
    ) -> tuple[View, tuple[str, ...]]:
        """Augment one view; return it with the names of the augmentations applied, in order.

        ``call`` applies one augmentation (:data:`AugmentCall`; the run's checks it).
        """
        if not self.enabled or not _coin(generator, self.spec.p):
            return view, ()
        applied: list[str] = []
        for step, ops in self._steps:
            if not ops or any(name in applied for name in step.unless):
                continue
            if not _coin(generator, step.p):
                continue
            chosen = int(torch.randint(len(ops), (), generator=generator, device=generator.device))
            view, ok = self._apply(ops[chosen], view, generator, applied, call)
            if not ok:
                continue  # nothing happened, so nothing to follow up on
            for i, op in enumerate(ops):
                if i != chosen and _coin(generator, step.then_other_p):
                    view, _ = self._apply(op, view, generator, applied, call)
        return view, tuple(applied)

    def _apply(
        self,
        op: _Op,
        view: View,
        generator: torch.Generator,
        applied: list[str],
        call: AugmentCall,
    ) -> tuple[View, bool]:
        result = call(op.name, op.augmentation, view, generator)
        if result is None:
            return view, False
        if op.augmentation.geometric:
            result = self._fill_empty(result, generator)
        applied.append(op.name)
        return result, True

    def _fill_empty(self, view: View, generator: torch.Generator) -> View:
        """Fill the image where the view is empty, as ``spec.empty_fill`` says."""
        empty = view.empty > 0.5
        if not bool(empty.any()):
            return view
        image = view.image
        if self.spec.empty_fill == "zero":
            fill = torch.zeros((), dtype=image.dtype, device=image.device)
        else:
            # Drawn on the generator's device, then moved: the same seed gives the same values.
            fill = torch.rand(image.shape, generator=generator, device=generator.device)
            fill = fill.to(device=image.device, dtype=image.dtype)
        return view.with_(image=torch.where(empty, fill, image))

    def apply_batch(
        self,
        images: Tensor,
        user_masks: Tensor,
        finetune_masks: Tensor | None,
        generator: torch.Generator,
        empty: Tensor | None = None,
        call: AugmentCall = plain_call,
    ) -> AugmentedBatch:
        """Augment each view of a batch independently.

        Args:
            images: ``(B, 3, H, W)`` in ``[0, 1]``.
            user_masks: ``(B, 1, H, W)``.
            finetune_masks: ``(B, 1, H, W)``, or ``None`` when they are drawn after augmentation.
            generator: the source of randomness.
            empty: ``(B, 1, H, W)`` pixels already without content; none by default.
            call: applies one augmentation (:data:`AugmentCall`); the run's checks it.
        """
        if empty is None:
            empty = torch.zeros_like(user_masks)
        views: list[View] = []
        applied: list[tuple[str, ...]] = []
        for b in range(images.shape[0]):
            view = View(
                image=images[b : b + 1],
                user_mask=user_masks[b : b + 1],
                finetune_mask=None if finetune_masks is None else finetune_masks[b : b + 1],
                empty=empty[b : b + 1],
            )
            view, names = self(view, generator, call)
            views.append(view)
            applied.append(names)
        return AugmentedBatch(
            image=torch.cat([v.image for v in views]),
            user_mask=torch.cat([v.user_mask for v in views]),
            finetune_mask=(
                None
                if finetune_masks is None
                else torch.cat([v.finetune_mask for v in views if v.finetune_mask is not None])
            ),
            empty=torch.cat([v.empty for v in views]),
            applied=tuple(applied),
        )
