"""The built-in presets as objects, for plugins to derive their strategies from.

Importable anywhere, including inside a registration hook, where the registries are still being
built and ``tttkit.get_strategy`` is refused::

    from tttkit_strategies.presets import BASELINE

    @tttkit.hookimpl
    def tttkit_register_strategies(register):
        register(BASELINE.derive("mine", "baseline, 20 steps", {"steps": 20}))
"""

from __future__ import annotations

from tttkit.config import StrategySpec
from tttkit.errors import UnknownNameError
from tttkit.registry import close_matches
from tttkit_strategies.ablations import (
    ALL_PRESETS,
    BASELINE,
    COMBO_I,
    OPTIMAL,
    ZERO_SHOT,
    ZERO_SHOT_SMALL,
)
from tttkit_strategies.defaults import DEFAULT, FAST

__all__ = [
    "BASELINE",
    "COMBO_I",
    "DEFAULT",
    "FAST",
    "OPTIMAL",
    "ZERO_SHOT",
    "ZERO_SHOT_SMALL",
    "preset",
]

_BY_NAME: dict[str, StrategySpec] = {spec.name: spec for spec in (*ALL_PRESETS, DEFAULT, FAST)}


def preset(name: str) -> StrategySpec:
    """The built-in preset ``name`` (every one ``tttkit list strategies`` shows from tttkit)."""
    if name not in _BY_NAME:
        raise UnknownNameError("built-in preset", name, close_matches(name, list(_BY_NAME)))
    return _BY_NAME[name]
