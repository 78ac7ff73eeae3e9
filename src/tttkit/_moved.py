"""Old module paths that still import, with a :class:`DeprecationWarning` naming the new one.

The engine's modules moved into :mod:`tttkit.engine` (the top level is the plugin surface and
the API), and ``tttkit.regions`` became :mod:`tttkit.windows` ("region" now names only the
self-validation area). Code written against the old paths keeps working for now.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import warnings
from types import ModuleType

#: Old module name → new module name.
MOVED = {
    "tttkit.augment": "tttkit.engine.augment",
    "tttkit.averaging": "tttkit.engine.averaging",
    "tttkit.execution": "tttkit.engine.execution",
    "tttkit.losses": "tttkit.engine.losses",
    "tttkit.perceptual": "tttkit.engine.perceptual",
    "tttkit.pretrain": "tttkit.engine.pretrain",
    "tttkit.validation": "tttkit.engine.self_validation",
    "tttkit.regions": "tttkit.windows",
}


class _Alias(importlib.abc.Loader):
    def __init__(self, new: str) -> None:
        self.new = new

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> None:
        """The default (empty) module; :meth:`exec_module` replaces it."""

    def exec_module(self, module: ModuleType) -> None:
        """Put the new module in the old name's place (the import system returns what
        ``sys.modules`` holds after this), so both names are one module object."""
        warnings.warn(
            f"{module.__name__} moved to {self.new}; import it from there",
            DeprecationWarning,
            stacklevel=2,
        )
        sys.modules[module.__name__] = importlib.import_module(self.new)


class _MovedFinder(importlib.abc.MetaPathFinder):
    def find_spec(
        self, fullname: str, path: object = None, target: object = None
    ) -> importlib.machinery.ModuleSpec | None:
        new = MOVED.get(fullname)
        if new is None:
            return None
        return importlib.machinery.ModuleSpec(fullname, _Alias(new))


def install() -> None:
    """Let the old paths import (once per process)."""
    if not any(isinstance(finder, _MovedFinder) for finder in sys.meta_path):
        sys.meta_path.append(_MovedFinder())
