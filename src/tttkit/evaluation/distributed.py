"""Running one evaluation over several processes (``torchrun``), or just one.

Under ``torchrun`` (``WORLD_SIZE`` > 1 in the environment) the default process group is
initialised from the environment — gloo on CPU, NCCL on GPU, each process on GPU ``LOCAL_RANK``.
The collectives used are few and small: barriers, and rank 0 sharing a verdict (e.g. "the
settings differ") so that every process stops with the same error instead of waiting forever.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TypeVar

import torch
import torch.distributed as dist

from tttkit.engine.execution import resolve_device
from tttkit.io import InputError

T = TypeVar("T")

#: How long a process waits at a barrier for the others. Processes finish their share at
#: different times (one image more or less, slower GPUs); the default 30 minutes of torch is
#: too short for TTT at 150 steps per image.
BARRIER_TIMEOUT = timedelta(hours=24)


@dataclass
class Context:
    """This process's place in the run.

    Attributes:
        rank: process index (0 merges results and computes set metrics).
        world: number of processes.
        device: where this process computes.
        owns_group: whether :func:`start` created the process group (and :func:`stop` ends it).
    """

    rank: int = 0
    world: int = 1
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    owns_group: bool = False

    @property
    def active(self) -> bool:
        """Whether there are other processes to coordinate with."""
        return self.world > 1


def start(device: str | torch.device = "auto") -> Context:
    """Join the process group when started by ``torchrun``; otherwise a single-process context."""
    resolved = resolve_device(device)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    owns = False
    if world > 1 and not dist.is_initialized():
        backend = "nccl" if resolved.type == "cuda" else "gloo"
        dist.init_process_group(backend, timeout=BARRIER_TIMEOUT)
        owns = True
    if dist.is_available() and dist.is_initialized():
        if resolved.type == "cuda":
            resolved = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
            torch.cuda.set_device(resolved)
        return Context(dist.get_rank(), dist.get_world_size(), resolved, owns)
    return Context(device=resolved)


def barrier(context: Context) -> None:
    """Wait for every process (no-op when alone)."""
    if context.active:
        dist.barrier()


def on_rank_zero(context: Context, task: Callable[[], T]) -> T | None:
    """Run ``task`` on rank 0 only; a user error there is raised on every process.

    Returns the task's value on rank 0 and ``None`` elsewhere.
    """
    value, error = None, None
    if context.rank == 0:
        try:
            value = task()
        except InputError as exc:
            error = str(exc)
    if context.active:
        shared = [error]
        dist.broadcast_object_list(shared, src=0)
        error = shared[0]
    if error is not None:
        raise InputError(error)
    return value


def stop(context: Context) -> None:
    """Leave the process group if :func:`start` created it."""
    if context.owns_group and dist.is_initialized():
        dist.destroy_process_group()
