"""tttkit: test-time training for image-inpainting networks, for any backbone.

Public API::

    import tttkit
    tttkit.get_strategy("optimal")          # a registered StrategySpec
    tttkit.registry("backbones").names()    # what plugins registered, per kind
    tttkit.hookimpl                         # decorator for plugin hook implementations
    tttkit.adapt(image, mask, backbone=..., strategy="optimal", steps=50)  # run TTT
"""

from __future__ import annotations

from typing import Any

from tttkit.api import adapt
from tttkit.backbone import Backbone, Conventions, GeneratorOutput
from tttkit.config import AugmentSpec, AugmentStep, Component, LossSpec, OptimSpec, StrategySpec
from tttkit.errors import (
    CheckpointError,
    DuplicateNameError,
    InputError,
    MaskSamplingError,
    PluginContractError,
    PluginLoadError,
    RegistryError,
    SpecError,
    UnknownNameError,
)
from tttkit.options import Overrides
from tttkit.plugins import KINDS, PluginHost, get_host, hookimpl
from tttkit.plugins import configure as configure_plugins
from tttkit.registry import Registry
from tttkit.strategy import check_strategy, get_strategy, override

__version__ = "0.1.0"


def registry(kind: str) -> Registry[Any]:
    """The registry of one kind: ``backbones``, ``finetune-masks``, ``fillers``,
    ``augmentations``, ``freezing-policies`` or ``strategies``."""
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
    "OptimSpec",
    "Overrides",
    "PluginContractError",
    "PluginHost",
    "PluginLoadError",
    "Registry",
    "RegistryError",
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
