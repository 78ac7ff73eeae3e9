"""Strategy overrides, declared once: the library, every command and the evaluation harness
take the same set (:class:`Overrides`), so a flag can never exist in one place and not another.

This module imports nothing heavy: the command line reads it to build its options.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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
    def keys(cls) -> tuple[str, ...]:
        """The override names, as the library's keyword arguments and the CLI's flags
        (``batch_size`` ↔ ``--batch-size``)."""
        return tuple(f.name for f in dataclasses.fields(cls))

    @classmethod
    def from_mapping(cls, values: dict[str, Any]) -> Overrides:
        """From keyword arguments; an unknown name is a ``TypeError`` listing the valid ones."""
        unknown = sorted(set(values) - set(cls.keys()))
        if unknown:
            raise TypeError(f"unknown override(s) {unknown}; valid: {', '.join(cls.keys())}")
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
