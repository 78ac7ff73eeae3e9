"""Hook specifications: everything a tttkit plugin can provide.

A plugin is a module (or object) with functions decorated by :data:`tttkit.hookimpl` whose names
match the hooks below. Built-in plugins and third-party ones (entry-point group ``tttkit``) load
through the same path. A plugin function may accept any subset of a hook's parameters.

Registration hooks receive a ``register`` callback instead of returning lists, so tttkit can
record which plugin registered each name and report duplicates naming both plugins.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

import pluggy

if TYPE_CHECKING:
    from tttkit.backbone import Backbone
    from tttkit.config import StrategySpec
    from tttkit.engine.loop import Result
    from tttkit.events import RunInfo, StepRecord

hookspec = pluggy.HookspecMarker("tttkit")


class RegisterFactory(Protocol):
    """The ``register`` callback of component hooks (masks, fillers, augmentations, freezing)."""

    def __call__(self, name: str, factory: Callable[..., Any], description: str = "") -> None:
        """Register ``factory`` under ``name``; ``factory(**params)`` builds the component."""


class RegisterBackbone(Protocol):
    """The ``register`` callback of :func:`tttkit_register_backbones`."""

    def __call__(
        self,
        name: str,
        factory: Callable[..., Backbone],
        description: str = "",
        weights: str | os.PathLike[str] | None = None,
    ) -> None:
        """Register a backbone factory, with the path of weights it ships (if any)."""


class RegisterStrategy(Protocol):
    """The ``register`` callback of :func:`tttkit_register_strategies`."""

    def __call__(self, spec: StrategySpec) -> None:
        """Register a strategy under ``spec.name``."""


# -- components --------------------------------------------------------------------------------


@hookspec
def tttkit_register_backbones(register: RegisterBackbone) -> None:
    """Register inpainting backbones.

    Args:
        register: call ``register(name, factory, description="", weights=None)`` once per
            backbone. ``factory(**config)`` returns a :class:`tttkit.backbone.Backbone`; its
            keyword parameters are the backbone's configuration (recorded in checkpoints).
            ``weights`` is the path of pretrained weights shipped with the plugin, used when
            the user gives none.
    """


@hookspec
def tttkit_register_finetune_masks(register: RegisterFactory) -> None:
    """Register finetuning-mask strategies: how the known region is hidden for training.

    Args:
        register: call ``register(name, factory, description="")``; ``factory(**params)``
            returns a :class:`tttkit.components.FinetuneMaskStrategy`.
    """


@hookspec
def tttkit_register_fillers(register: RegisterFactory) -> None:
    """Register user-hole fillers: what stands in the user's holes during finetuning.

    Args:
        register: call ``register(name, factory, description="")``; ``factory(**params)``
            returns a :class:`tttkit.components.Filler`.
    """


@hookspec
def tttkit_register_augmentations(register: RegisterFactory) -> None:
    """Register augmentations, the building blocks of augmentation pipelines.

    Args:
        register: call ``register(name, factory, description="")``; ``factory(**params)``
            returns a :class:`tttkit.components.Augmentation`.
    """


@hookspec
def tttkit_register_freezing_policies(register: RegisterFactory) -> None:
    """Register freezing policies: which backbone parameters stay fixed during finetuning.

    Args:
        register: call ``register(name, factory, description="")``; ``factory(**params)``
            returns a :class:`tttkit.components.FreezingPolicy`.
    """


@hookspec
def tttkit_register_eval_masks(register: RegisterFactory) -> None:
    """Register evaluation-mask kinds: how ``tttkit masks --kind NAME`` simulates users' holes.

    Args:
        register: call ``register(name, factory, description="")``; ``factory(**params)``
            returns a :class:`tttkit.components.EvalMaskKind`, called as
            ``kind(size, generator)`` for a ``(1, size, size)`` mask of 0/1 (1 = hole). Draw
            every random number from ``generator``: tttkit seeds it from the run seed and the
            image's key, so the same seed gives the same masks.
    """


@hookspec
def tttkit_register_reference_aligners(register: RegisterFactory) -> None:
    """Register reference aligners: how another shot of the scene (``--reference``) is brought
    into the target photo's frame before test-time training draws views from it.

    Args:
        register: call ``register(name, factory, description="")``; ``factory(**params)``
            returns a :class:`tttkit.components.ReferenceAligner`, called as
            ``aligner(target, holes, reference)`` with full-resolution uint8 photos; it
            returns a :class:`tttkit.components.Alignment` (a 3×3 reference-to-target mapping,
            or ``None`` and why the reference does not match, so that it is skipped).
    """


@hookspec
def tttkit_register_strategies(register: RegisterStrategy) -> None:
    """Register named strategies (presets).

    Args:
        register: call ``register(spec)`` with a :class:`tttkit.config.StrategySpec`; its
            ``name`` and ``description`` are the registered name and description. Derive from an
            existing preset object with ``spec.derive(...)`` (e.g. from
            ``tttkit_strategies.presets.BASELINE``) so the new one states only what it changes;
            do not look strategies up through the registry inside this hook, as it is being built.
    """


# -- run lifecycle observers ----------------------------------------------------------------------


@hookspec
def tttkit_run_start(run: RunInfo) -> None:
    """Called once before the first finetuning step of a run.

    Args:
        run: what is about to run (strategy, number of steps, label, whether to show progress).
    """


@hookspec
def tttkit_step_end(run: RunInfo, record: StepRecord) -> None:
    """Called after every finetuning step.

    Args:
        run: the run, as passed to :func:`tttkit_run_start`.
        record: the step's number, losses, learning rate, timing and, on evaluation steps, metrics.
    """


@hookspec
def tttkit_run_end(run: RunInfo, result: Result | None) -> None:
    """Called once after the last step, also when the run stops early or fails.

    Args:
        run: the run, as passed to :func:`tttkit_run_start`.
        result: the run's result object, or ``None`` when the run failed.
    """
