"""The engine: what runs test-time training. No plugin needs to import from here.

- :mod:`~tttkit.engine.loop` — one run's phases (fill, evaluate, train a step, result):
  :func:`run_ttt`, :class:`Result`;
- :mod:`~tttkit.engine.losses` — the thesis's losses (eq. 3.3–3.4) and the discriminator's;
- :mod:`~tttkit.engine.augment` — applies a strategy's augmentations to image and masks;
- :mod:`~tttkit.engine.contracts` — checks what the strategy's components hand a run;
- :mod:`~tttkit.engine.perceptual` — the VGG feature network of the perceptual loss;
- :mod:`~tttkit.engine.averaging` — the weight average over finetuning steps;
- :mod:`~tttkit.engine.self_validation` — the held-out area that chooses the output;
- :mod:`~tttkit.engine.execution` — device, precision, memory layout, threads;
- :mod:`~tttkit.engine.pretrain` — pretraining a backbone on a folder of photos.

The names below load on first use, so that importing a light submodule (the command line reads
:mod:`~tttkit.engine.execution`) does not import the whole loop.
"""

from __future__ import annotations

import importlib
import warnings
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tttkit.engine.loop import Evaluation, Result, run_ttt
    from tttkit.engine.self_validation import Refit, Selection

_EXPORTS = {
    "Evaluation": "tttkit.engine.loop",
    "Result": "tttkit.engine.loop",
    "run_ttt": "tttkit.engine.loop",
    "Refit": "tttkit.engine.self_validation",
    "Selection": "tttkit.engine.self_validation",
}


def finetune(*args: Any, **kwargs: Any) -> Result:
    """Deprecated: :func:`run_ttt`, whose run options (``seed``, ``device``,
    ``precision``, ``channels_last``, ``show_progress``, ``keep_outputs``) are one
    :class:`tttkit.options.RunOptions`. Takes them as keywords, as it used to."""
    from tttkit.engine.loop import run_ttt
    from tttkit.options import RunOptions

    warnings.warn(
        "tttkit.engine.finetune is deprecated: use tttkit.engine.run_ttt(backbone, "
        "image, mask, spec, RunOptions(...))",
        DeprecationWarning,
        stacklevel=2,
    )
    names = RunOptions.names()
    run = {key: kwargs.pop(key) for key in names if key in kwargs}
    return run_ttt(*args, RunOptions(**run), **kwargs)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["Evaluation", "Refit", "Result", "Selection", "finetune", "run_ttt"]
