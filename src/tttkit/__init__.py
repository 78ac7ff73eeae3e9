"""tttkit: test-time training for image-inpainting networks, for any backbone.

Public API::

    import tttkit
    tttkit.get_strategy("optimal")          # a registered StrategySpec
    tttkit.registry("backbones").names()    # what plugins registered, per kind
    tttkit.hookimpl                         # decorator for plugin hook implementations
    tttkit.adapt(image, mask, backbone=..., strategy="optimal", steps=50)  # run TTT
    tttkit.ModuleBackbone(net, value_range=(0, 1), hole_value=1, working_size=256)  # your net
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from tttkit import _moved

# Light modules (no torch), imported before the functions below: ``tttkit.registry`` the
# submodule must be loaded before ``registry`` the function is defined, or loading it later
# would replace the function with the module.
from tttkit.config import (
    AugmentSpec,
    AugmentStep,
    Component,
    LossSpec,
    OptimSpec,
    StrategySpec,
)
from tttkit.errors import (
    CheckpointError,
    DuplicateNameError,
    InputError,
    MaskSamplingError,
    PluginContractError,
    PluginLoadError,
    PluginRunError,
    RegistryError,
    RunCancelled,
    SpecError,
    UnknownNameError,
)
from tttkit.events import Progress
from tttkit.options import Overrides, RunOptions
from tttkit.plugins import KINDS, PluginHost, get_host, hookimpl
from tttkit.plugins import configure as configure_plugins
from tttkit.registry import Registry
from tttkit.strategy import check_strategy, get_strategy, override

if TYPE_CHECKING:
    from tttkit.api import adapt
    from tttkit.backbone import Backbone, Conventions, GeneratorOutput, ModuleBackbone
    from tttkit.engine.loop import Result
    from tttkit.engine.self_validation import Selection

#: Public names that import torch, loaded on first use so that ``import tttkit`` (and the
#: command line's ``--help``) stays fast: name → (module, attribute).
_LAZY = {
    "adapt": ("tttkit.api", "adapt"),
    "Backbone": ("tttkit.backbone", "Backbone"),
    "Conventions": ("tttkit.backbone", "Conventions"),
    "GeneratorOutput": ("tttkit.backbone", "GeneratorOutput"),
    "ModuleBackbone": ("tttkit.backbone", "ModuleBackbone"),
    "Result": ("tttkit.engine.loop", "Result"),
    "Selection": ("tttkit.engine.self_validation", "Selection"),
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module, attribute = _LAZY[name]
        value = getattr(importlib.import_module(module), attribute)
        globals()[name] = value  # once loaded, a plain attribute
        return value
    raise AttributeError(f"module 'tttkit' has no attribute {name!r}")


__version__ = "0.1.0"

_moved.install()  # old module paths (tttkit.losses, tttkit.regions…) import with a warning


def registry(kind: str) -> Registry[Any]:
    """The registry of one kind: ``backbones``, ``finetune-masks``, ``fillers``,
    ``augmentations``, ``freezing-policies``, ``eval-masks``, ``reference-aligners`` or
    ``strategies``."""
    return get_host().registry(kind)


def backbones() -> Registry[Any]:
    """Registered backbone factories."""
    return registry("backbones")


def finetune_masks() -> Registry[Any]:
    """Registered finetuning-mask strategy factories."""
    return registry("finetune-masks")


def fillers() -> Registry[Any]:
    """Registered user-hole filler factories."""
    return registry("fillers")


def augmentations() -> Registry[Any]:
    """Registered augmentation factories."""
    return registry("augmentations")


def freezing_policies() -> Registry[Any]:
    """Registered freezing-policy factories."""
    return registry("freezing-policies")


def strategies() -> Registry[StrategySpec]:
    """Registered strategies (presets)."""
    return registry("strategies")


__all__ = [
    "KINDS",
    "AugmentSpec",
    "AugmentStep",
    "Backbone",
    "CheckpointError",
    "Component",
    "Conventions",
    "DuplicateNameError",
    "GeneratorOutput",
    "InputError",
    "LossSpec",
    "MaskSamplingError",
    "ModuleBackbone",
    "OptimSpec",
    "Overrides",
    "PluginContractError",
    "PluginHost",
    "PluginLoadError",
    "PluginRunError",
    "Progress",
    "Registry",
    "RegistryError",
    "Result",
    "RunCancelled",
    "RunOptions",
    "Selection",
    "SpecError",
    "StrategySpec",
    "UnknownNameError",
    "adapt",
    "augmentations",
    "backbones",
    "check_strategy",
    "configure_plugins",
    "fillers",
    "finetune_masks",
    "freezing_policies",
    "get_host",
    "get_strategy",
    "hookimpl",
    "override",
    "registry",
    "strategies",
]
