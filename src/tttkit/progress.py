"""Built-in observer plugin: a rich progress bar for finetuning runs.

It draws only for runs whose :class:`~tttkit.events.RunInfo` asks for progress (the CLI does,
the library API does not by default), on standard error so ``--json`` output stays clean.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from tttkit.events import RunInfo, StepRecord
from tttkit.plugins import hookimpl

#: Where bars draw; ``None`` means standard error. Tests may point it at a recording console.
console: Console | None = None

_bars: dict[int, tuple[Progress, TaskID]] = {}


@hookimpl
def tttkit_run_start(run: RunInfo) -> None:
    """Start a progress bar when the run asks for one."""
    if not run.show_progress:
        return
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[status]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console or Console(stderr=True),
    )
    task = progress.add_task(
        escape(f"{run.label} [{run.strategy}]"), total=run.total_steps, status=""
    )
    progress.start()
    _bars[id(run)] = (progress, task)


@hookimpl
def tttkit_step_end(run: RunInfo, record: StepRecord) -> None:
    """Advance the run's progress bar and show its total loss."""
    bar = _bars.get(id(run))
    if bar is None:
        return
    progress, task = bar
    total = record.losses.get("total")
    status = f"loss {total:.4f}" if total is not None else ""
    progress.update(task, completed=record.step, status=status)


@hookimpl
def tttkit_run_end(run: RunInfo, result: Any) -> None:
    """Close the run's progress bar."""
    bar = _bars.pop(id(run), None)
    if bar is not None:
        bar[0].stop()
