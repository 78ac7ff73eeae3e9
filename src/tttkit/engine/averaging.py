"""An exponential moving average of the weights being finetuned (Polyak averaging).

A test-time-training run takes a few dozen steps of a small batch: the weights after any one step
carry that step's noise, and the fill they give drifts by a few percent from one evaluation to
the next. Evaluating an average of the recent weights instead smooths that walk; since the
average starts at the pretrained weights it also leans towards them early in a run.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import torch
from torch import nn


class WeightAverage:
    """Shadow copies of ``params`` updated as ``shadow ← decay·shadow + (1 − decay)·param``.

    Args:
        params: the parameters being trained.
        decay: in ``[0, 1)``; 0 keeps no history (the shadow is the live weights).
    """

    def __init__(self, params: Sequence[nn.Parameter], decay: float) -> None:
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"weight_average must lie in [0, 1), got {decay}")
        self.params = list(params)
        self.decay = decay
        self.shadow = [p.detach().clone() for p in self.params]

    @torch.no_grad()
    def update(self) -> None:
        """Fold the current weights into the average (call after each optimizer step)."""
        if self.params:
            torch._foreach_lerp_(self.shadow, [p.detach() for p in self.params], 1.0 - self.decay)

    @torch.no_grad()
    def commit(self) -> None:
        """Make the average the parameters' values for good (at the end of a run)."""
        if self.params:
            torch._foreach_copy_([p.data for p in self.params], self.shadow)

    @contextmanager
    def applied(self) -> Iterator[None]:
        """Within the block the parameters hold the average; the live weights come back after."""
        if not self.params:
            yield
            return
        live = [p.detach().clone() for p in self.params]
        with torch.no_grad():
            torch._foreach_copy_([p.data for p in self.params], self.shadow)
        try:
            yield
        finally:
            with torch.no_grad():
                torch._foreach_copy_([p.data for p in self.params], live)
