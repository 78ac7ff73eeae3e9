"""`tttkit inpaint FOLDER|GLOB --out DIR`: the plan, the progress, workers, Ctrl-C, the exit
code (:mod:`tttkit.batch` holds the pairing and the summary)."""

from __future__ import annotations

import os
import signal
import threading
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import typer
from rich.markup import escape

from tttkit.batch import Job, Plan, append_summary, plan, run_job, shard
from tttkit.cli._common import read_holes, stderr, stdout
from tttkit.errors import InputError
from tttkit.io import IMAGE_SUFFIXES
from tttkit.options import RunOptions


@dataclass(frozen=True)
class Settings:
    """What every photo of a batch is filled with (picklable: workers receive it)."""

    backbone: str | None
    weights: str | None
    strategy: str
    windows: str
    max_pixels: int | None
    resize_mask: bool
    run: RunOptions
    overrides: dict[str, Any] = field(default_factory=dict)


def fill(job: Job, settings: Settings) -> dict[str, Any]:
    """Fill one photo and write its output; the summary row's details."""
    import torch

    from tttkit.api import adapt
    from tttkit.io import read_image, write_image

    photo = read_image(job.photo, max_pixels=settings.max_pixels, dtype=torch.uint8)
    size = tuple(photo.shape[-2:])
    holes = read_holes(job.mask, job.photo, size, settings.resize_mask, settings.max_pixels)
    result = adapt(
        photo, holes, backbone=settings.backbone, weights=settings.weights,
        strategy=settings.strategy, windows=settings.windows, label=job.key,
        options=settings.run.replace(show_progress=False), **settings.overrides,
    )  # fmt: skip
    job.out.parent.mkdir(parents=True, exist_ok=True)
    write_image(job.out, result.finetuned)
    selection = result.selection
    scores = dict(selection.validation) if selection is not None and selection.validation else {}
    return {
        "size": [size[1], size[0]],
        "windows": len(result.windows) if result.windows else 1,
        "steps": result.strategy.steps,
        "output_step": result.output_step,
        "validation_score": scores.get(result.output_step),
        "notices": result.notices,
    }


def _worker_start(threads: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when to stop
    import torch

    torch.set_num_threads(threads)


def _worker_fill(job: Job, settings: Settings) -> dict[str, Any]:
    """One photo's summary row (in this process, or in a worker)."""
    return run_job(job, lambda j: fill(j, settings))


class _StopAfterCurrent:
    """First Ctrl-C: finish the photos in flight, then stop; a second one stops at once."""

    def __init__(self) -> None:
        self.requested = threading.Event()
        self._previous: Any = None

    def __enter__(self) -> _StopAfterCurrent:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, *_: object) -> None:
        self.requested.set()
        signal.signal(signal.SIGINT, self._previous or signal.default_int_handler)
        stderr.print(
            "[yellow]stopping after the photo(s) in flight[/] (Ctrl-C again to stop at once)"
        )

    def __exit__(self, *_: object) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


def _rank_world() -> tuple[int, int]:
    return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))


def refuse_single_photo_options(given: dict[str, Any]) -> None:
    """Options that mean one photo are refused for many, not silently ignored."""
    named = [option for option, value in given.items() if value]
    if named:
        raise InputError(
            f"{', '.join(named)}: for one photo at a time; a folder or glob of photos takes "
            "--mask, --out and the strategy's options (its summary.jsonl is the record)"
        )


def _on_this_gpu(settings: Settings, world: int) -> Settings:
    """Under torchrun on GPUs, each process fills on its own (``LOCAL_RANK``)."""
    from dataclasses import replace

    from tttkit.engine.execution import resolve_device

    if world > 1 and resolve_device(settings.run.device).type == "cuda":
        device = f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}"
        return replace(settings, run=settings.run.replace(device=device))
    return settings


def print_plan(batch: Plan, out: Path, rank: int, world: int) -> None:
    """Before any work: what will be done, what is done, and what is skipped and why."""
    stderr.print(
        f"{batch.photos} photo(s), {batch.masks} mask(s): {len(batch.jobs)} to fill, "
        f"{len(batch.done)} done already, {len(batch.skipped)} skipped → {escape(str(out))}"
        + (f" (process {rank + 1} of {world}: every {world}th)" if world > 1 else "")
    )
    for key, why in batch.skipped:
        stderr.print(f"  [red]skipped[/] {escape(key)}: {escape(why)}")


def inpaint_batch(
    source: Path, mask: Path | None, out: Path | None, settings: Settings, jobs: int, resize: bool
) -> None:
    """The batch command: plan, fill, summarise; exit 1 if any photo failed or was skipped."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    what = f"IMAGE {source} is a directory" if source.is_dir() else f"IMAGE {source} is a glob"
    if out is None:
        raise InputError(f"{what}: many photos need an output folder (--out DIR)")
    if out.suffix.lower() in IMAGE_SUFFIXES:
        raise InputError(f"{what}: many photos go into a folder, not --out {out}")
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out}: a batch writes into a folder, and this is a file")
    batch = plan(source, mask, out, resize)
    rank, world = _rank_world()
    settings = _on_this_gpu(settings, world)
    todo = shard(batch, rank, world)
    print_plan(batch, out, rank, world)
    out.mkdir(parents=True, exist_ok=True)
    skipped = batch.skipped if rank == 0 else []  # rank 0 records them for every process
    failed = filled = 0
    for key, why in skipped:
        append_summary(out, {"key": key, "status": "skipped", "error": why}, rank)
    with (
        _StopAfterCurrent() as stop,
        Progress(
            "[bold]photos", BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
            console=stderr,
        ) as progress,
    ):  # fmt: skip
        task = progress.add_task("photos", total=len(todo))

        def record(row: dict[str, Any]) -> None:
            nonlocal failed, filled
            append_summary(out, row, rank)
            if row["status"] == "done":
                filled += 1
                line = f"{escape(row['key'])}: {row['seconds']:.1f} s, step {row['output_step']}"
            else:
                failed += 1
                line = f"[red]{escape(row['key'])}: failed[/]: {escape(row['error'])}"
            progress.console.print(line)
            progress.advance(task)

        try:
            if jobs <= 1:
                for job in todo:
                    if stop.requested.is_set():
                        break
                    record(_worker_fill(job, settings))
            else:
                _in_workers(todo, settings, jobs, stop.requested, record)
        except KeyboardInterrupt:
            progress.stop()
            stderr.print(
                f"[yellow]interrupted[/] after {filled} photo(s) filled: the photo in flight was "
                "not written; run the same command to continue (finished photos are kept)"
            )
            raise typer.Exit(130) from None
    left = len(todo) - filled - failed
    stdout.print(
        f"filled {filled}, failed {failed + len(skipped)}, done before {len(batch.done)}"
        + (f"; stopped with {left} left: run the same command to continue" if left else "")
    )
    if failed or skipped or left:
        raise typer.Exit(1)


def _in_workers(
    todo: list[Job], settings: Settings, jobs: int, stop: threading.Event, record: Any
) -> None:
    import multiprocessing

    threads = max(1, int(os.environ.get("OMP_NUM_THREADS") or 0) or (os.cpu_count() or 1) // jobs)
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(jobs, context, _worker_start, (threads,)) as pool:
        queue = list(todo)
        running: set[Future[dict[str, Any]]] = set()
        while queue or running:
            while queue and len(running) < jobs and not stop.is_set():
                running.add(pool.submit(_worker_fill, queue.pop(0), settings))
            if not running:
                break
            finished, running = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                record(future.result())
