"""Stopping a run inside a step, not only between steps.

A finetuning step on a CPU can take seconds (a forward and a backward pass through the whole
network, twice with a discriminator); a Cancel that waits for the step to end feels ignored.
While a run trains, :func:`checked_inside_steps` puts a check of the caller's cancel signal in
front of every layer's forward pass and behind every layer's gradient, so a run stops within
one layer's work of the signal being set: :class:`tttkit.errors.RunCancelled` propagates out of
``forward`` or ``backward`` like any exception, and the run's own copy of the network (the
only thing touched) is dropped.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

from torch import Tensor, nn

from tttkit.errors import RunCancelled
from tttkit.events import CancelSignal


@contextlib.contextmanager
def checked_inside_steps(
    network: nn.Module, cancel: CancelSignal | None, completed_steps: Callable[[], int]
) -> Iterator[None]:
    """Check ``cancel`` at every leaf module of ``network`` while the block runs.

    Args:
        network: the run's own network (hooks are added to it and removed on exit).
        cancel: the caller's signal; ``None`` adds nothing.
        completed_steps: the number of steps finished so far, for the exception.

    Raises:
        RunCancelled: from inside a forward or backward pass once ``cancel`` is set.
    """
    if cancel is None:
        yield
        return

    def check() -> None:
        if cancel.is_set():
            raise RunCancelled(completed_steps())

    def before_forward(_module: nn.Module, _args: Any) -> None:
        check()

    def gradient_check(_grad: Tensor) -> None:
        check()  # returns None: the gradient is left as it is

    def after_forward(_module: nn.Module, _args: Any, output: Any) -> None:
        if isinstance(output, Tensor) and output.requires_grad:
            output.register_hook(gradient_check)

    leaves = [m for m in network.modules() if next(m.children(), None) is None]
    handles = [m.register_forward_pre_hook(before_forward) for m in leaves]
    handles += [m.register_forward_hook(after_forward) for m in leaves]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()
