"""Options declared once: the strategy overrides (:class:`Overrides`) and how a run executes
(:class:`RunOptions`). The library, the engine, every command and the evaluation harness take the
same two values, so an option can never exist in one place and not another.

This module imports nothing heavy: the command line reads it to build its options.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

#: The strategy used when the caller names none: the thesis's optimal settings sized for a CPU
#: (``tttkit strategies show default``); ``optimal`` is the thesis's own recipe.
DEFAULT_STRATEGY = "default"

if TYPE_CHECKING:
    import torch

    from tttkit.config import StrategySpec
    from tttkit.plugins import PluginHost


@dataclass(frozen=True)
class Overrides:
    """Changes to a strategy for one run; ``None`` leaves the strategy's own value.

    Attributes:
        steps: finetuning steps.
        lr: learning rate (``optim.lr``).
        batch_size: views per finetuning step.
        finetune_mask: a registered finetuning-mask strategy, with its default parameters.
        filler: a registered user-hole filler.
        augment: ``"none"`` or ``"name[:p],…"`` (:func:`tttkit.strategy.parse_augment`).
        freeze: a registered freezing policy.
        select: which output to return: ``"best"``, ``"last"`` or ``"raw"``.
        early_stop: stop after this many evaluations without a better validation score.
        refit: rerun the chosen step count on the whole known region.
        sets: ``path.to.field=value`` assignments (JSON values), applied after the flags.
    """

    steps: int | None = None
    lr: float | None = None
    batch_size: int | None = None
    finetune_mask: str | None = None
    filler: str | None = None
    augment: str | None = None
    freeze: str | None = None
    select: str | None = None
    early_stop: int | None = None
    refit: bool | None = None
    sets: tuple[str, ...] = ()

    @classmethod
    def names(cls) -> tuple[str, ...]:
        """The override names, as the library's keyword arguments and the CLI's flags
        (``batch_size`` ↔ ``--batch-size``)."""
        return tuple(f.name for f in dataclasses.fields(cls))

    @classmethod
    def from_mapping(cls, values: dict[str, Any]) -> Overrides:
        """From keyword arguments; an unknown name is a ``TypeError`` listing the valid ones."""
        unknown = sorted(set(values) - set(cls.names()))
        if unknown:
            raise TypeError(f"unknown override(s) {unknown}; valid: {', '.join(cls.names())}")
        data = dict(values)
        data["sets"] = tuple(data.get("sets") or ())
        return cls(**data)

    def as_kwargs(self) -> dict[str, Any]:
        """The overrides that are set, as keyword arguments of :func:`tttkit.strategy.override`."""
        out = {k: v for k, v in dataclasses.asdict(self).items() if v is not None}
        if not out.get("sets"):
            out.pop("sets", None)
        return out

    def apply(self, spec: StrategySpec, host: PluginHost | None = None) -> StrategySpec:
        """``spec`` with these overrides applied and checked (:func:`tttkit.strategy.override`)."""
        from tttkit.strategy import override

        return override(spec, host=host, **self.as_kwargs())


@dataclass(frozen=True)
class RunOptions:
    """How one test-time-training run executes; none of these change the strategy.

    Attributes:
        seed: seeds every random choice; the same seed gives the same result.
        device: ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"auto"`` (CUDA when there is one).
        precision: ``"auto"`` (bf16 autocast where the device computes bf16 natively: a CUDA
            device with bf16, a CPU with AVX512-BF16 or AMX; else fp32), ``"fp32"``
            or ``"bf16"`` (:mod:`tttkit.engine.execution`).
        channels_last: run the networks in channels-last memory layout (faster on some GPUs).
        show_progress: let interactive observers (the progress bar) draw.
        keep_outputs: keep every evaluation step's completed image in ``Result.evaluations``
            (set metrics such as FID need them).

    Values are checked where they are used (an unknown device or precision is an
    :class:`~tttkit.errors.InputError` naming the option).
    """

    seed: int = 0
    device: str | torch.device = "cpu"
    precision: str = "auto"
    channels_last: bool = False
    show_progress: bool = False
    keep_outputs: bool = False

    @classmethod
    def names(cls) -> tuple[str, ...]:
        """The option names, as the library's keyword arguments and the CLI's flags
        (``channels_last`` ↔ ``--channels-last``)."""
        return tuple(f.name for f in dataclasses.fields(cls))

    def replace(self, **changes: Any) -> RunOptions:
        """A copy with ``changes``."""
        return dataclasses.replace(self, **changes)
