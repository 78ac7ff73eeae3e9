"""What run-lifecycle observers receive (see the ``tttkit_run_*`` hooks)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass
class RunInfo:
    """A finetuning run as observers see it.

    Attributes:
        label: short human label (e.g. the image file name).
        strategy: name of the strategy being run.
        total_steps: number of finetuning steps planned.
        show_progress: whether interactive displays (the rich progress bar) should draw.
        extra: free-form details for observers (backbone name, device, …).
    """

    label: str
    strategy: str
    total_steps: int
    show_progress: bool = False
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass
class StepRecord:
    """One finished finetuning step.

    Attributes:
        step: 1-based number of the step just taken.
        losses: loss terms of the step by name (floats).
        lr: learning rate used.
        seconds: wall time of the step.
        metrics: evaluation metrics by name, on evaluation steps only.
    """

    step: int
    losses: Mapping[str, float]
    lr: float
    seconds: float
    metrics: Mapping[str, float] | None = None
