"""What run-lifecycle observers receive (see the ``tttkit_run_*`` hooks)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol


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


@dataclass(frozen=True)
class Progress:
    """One moment of a run, as an ``on_progress`` callback of :func:`tttkit.adapt` sees it:
    after the raw network's fill (step 0) and after every finetuning step.

    Attributes:
        label: the run's label (a photo done window by window names the window).
        step: steps taken so far; 0 is the raw network's fill, before any training.
        total_steps: steps planned for this run (a refit run plans its own).
        loss: the total loss of the step just taken (``None`` at step 0).
        seconds: wall time since this run started.
        preview: at evaluation steps (step 0 included), ``(3, h, w)`` float in ``[0, 1]``: the
            window the network works on with its holes filled by the current network, on
            the CPU; ``None`` at other steps.
        window: 1-based number of the window being completed.
        windows: how many windows the photo is completed in (1 for a plain run).
    """

    label: str
    step: int
    total_steps: int
    loss: float | None
    seconds: float
    preview: Any = None  # a torch.Tensor; typed loosely so this module needs no torch
    window: int = 1
    windows: int = 1


class CancelSignal(Protocol):
    """What ``adapt(cancel=…)`` takes: anything with ``is_set()``, e.g. a ``threading.Event``."""

    def is_set(self) -> bool:
        """Whether the run should stop before its next step."""
        ...


#: The type of an ``on_progress`` callback.
ProgressCallback = Callable[[Progress], None]
