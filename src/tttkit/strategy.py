"""Strategies in one place: the spec (defined in :mod:`tttkit.config`, data only, re-exported
here), looking one up by name, overriding it from the command line, and checking its components
against the registries.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from tttkit.config import (
    SELECTIONS,
    AugmentSpec,
    AugmentStep,
    Component,
    SpecError,
    StrategySpec,
    apply,
    parse_assignment,
)
from tttkit.config import LossSpec as LossSpec
from tttkit.config import OptimSpec as OptimSpec
from tttkit.plugins import PluginHost, get_host
from tttkit.registry import check_parameters, close_matches, factory_parameters

#: Which registry each component field of a spec draws from.
COMPONENT_KINDS: dict[str, str] = {
    "finetune_mask": "finetune-masks",
    "filler": "fillers",
    "freeze": "freezing-policies",
}

#: Probability given to an augmentation named in ``--augment`` without an explicit ``:p``.
DEFAULT_AUGMENT_P = 0.5


def get_strategy(name: str, host: PluginHost | None = None) -> StrategySpec:
    """The registered strategy ``name`` (raises ``UnknownNameError`` with suggestions)."""
    spec: StrategySpec = (host or get_host()).registry("strategies").get(name)
    return spec


def parse_augment(text: str) -> AugmentSpec:
    """Parse ``--augment``: ``none``, or ``name[:p],name[:p],…`` (independent steps).

    Each named augmentation becomes its own step with probability ``p``
    (default :data:`DEFAULT_AUGMENT_P`) and its registered default parameters.
    """
    text = text.strip()
    if text in ("", "none"):
        return AugmentSpec(p=0.0, steps=())
    steps = []
    for item in text.split(","):
        name, _, p_text = item.strip().partition(":")
        try:
            p = float(p_text) if p_text else DEFAULT_AUGMENT_P
        except ValueError:
            raise SpecError(
                f"--augment: probability of {name!r} must be a number, got {p_text!r}"
            ) from None
        if not 0.0 <= p <= 1.0:
            raise SpecError(f"--augment: probability of {name!r} must lie in [0, 1], got {p}")
        steps.append(AugmentStep(ops=(Component(name),), p=p))
    return AugmentSpec(p=1.0, steps=tuple(steps))


def override(
    spec: StrategySpec,
    *,
    steps: int | None = None,
    lr: float | None = None,
    batch_size: int | None = None,
    finetune_mask: str | None = None,
    filler: str | None = None,
    augment: str | None = None,
    freeze: str | None = None,
    select: str | None = None,
    early_stop: int | None = None,
    refit: bool | None = None,
    sets: Iterable[str] = (),
    host: PluginHost | None = None,
) -> StrategySpec:
    """Apply command-line overrides to a spec and check the result.

    The common flags replace one field each (a component flag picks the named component with its
    default parameters); each ``sets`` item is ``path.to.field=value`` (value parsed as JSON,
    else taken as a string) and is applied after the flags.
    """
    changes: dict[str, Any] = {}
    if steps is not None:
        changes["steps"] = steps
    if lr is not None:
        changes["optim.lr"] = lr
    if batch_size is not None:
        changes["batch_size"] = batch_size
    if select is not None:
        changes["select"] = select
    if early_stop is not None:
        changes["early_stop"] = early_stop
    if refit is not None:
        changes["refit"] = refit
    components = (("finetune_mask", finetune_mask), ("filler", filler), ("freeze", freeze))
    for field_name, value in components:
        if value is not None:
            changes[field_name] = {"name": value, "params": {}}
    if augment is not None:
        pipeline = parse_augment(augment)
        changes["augment.p"] = pipeline.p
        changes["augment.steps"] = pipeline.steps
    for item in sets:
        path, value = parse_assignment(item)
        changes[path] = value
    result = apply(spec, changes) if changes else spec
    check_strategy(result, host)
    return result


def check_strategy(spec: StrategySpec, host: PluginHost | None = None) -> None:
    """Raise :class:`SpecError` unless every component is registered and takes its parameters."""
    host = host or get_host()
    for field_name, kind in COMPONENT_KINDS.items():
        _check_component(getattr(spec, field_name), field_name, kind, host)
    _check_augment(spec, host)
    if spec.backbone is not None and spec.backbone not in host.registry("backbones"):
        suggestions = close_matches(spec.backbone, host.registry("backbones").names())
        hint = f" — did you mean {suggestions[0]!r}?" if suggestions else ""
        raise SpecError(f"backbone: unknown backbone {spec.backbone!r}{hint}")
    if spec.select not in SELECTIONS:
        raise SpecError(f"select must be one of {', '.join(SELECTIONS)}, got {spec.select!r}")
    if spec.optim.name not in ("adam", "sgd"):
        raise SpecError(f"optim.name must be 'adam' or 'sgd', got {spec.optim.name!r}")
    if spec.optim.lr < 0:
        raise SpecError(f"optim.lr must be non-negative, got {spec.optim.lr}")


def _check_augment(spec: StrategySpec, host: PluginHost) -> None:
    for i, step in enumerate(spec.augment.steps):
        if not step.ops:
            raise SpecError(f"augment.steps[{i}] names no augmentation")
        for j, op in enumerate(step.ops):
            _check_component(op, f"augment.steps[{i}].ops[{j}]", "augmentations", host)
        for p_name in ("p", "then_other_p"):
            if not 0.0 <= getattr(step, p_name) <= 1.0:
                raise SpecError(f"augment.steps[{i}].{p_name} must lie in [0, 1]")
    if not 0.0 <= spec.augment.p <= 1.0:
        raise SpecError("augment.p must lie in [0, 1]")
    if spec.augment.empty_fill not in ("zero", "random"):
        raise SpecError(
            f"augment.empty_fill must be 'zero' or 'random', got {spec.augment.empty_fill!r}"
        )


def _check_component(component: Component, where: str, kind: str, host: PluginHost) -> None:
    registry = host.registry(kind)
    if component.name not in registry:
        suggestions = close_matches(component.name, registry.names())
        hint = (
            (" — did you mean " + " or ".join(map(repr, suggestions)) + "?") if suggestions else ""
        )
        if not suggestions:
            hint = f" (choose from: {', '.join(registry.names())})"
        raise SpecError(f"{where}: unknown {registry.kind} {component.name!r}{hint}")
    entry = registry.entry(component.name)
    what = f"{registry.kind} {component.name!r}"
    problem = check_parameters(entry.obj, component.params, what)
    if problem:
        raise SpecError(f"{where}: {problem}")
    # The plugin's own checks of its values, before any long work; any other exception is
    # the plugin's, named in one line.
    with host.naming_failures(f"building {what}", plugin=entry.plugin):
        try:
            entry.obj(**dict(component.params))
        except (TypeError, ValueError) as exc:
            raise SpecError(f"{where}: {what} refused its parameters: {exc}") from None


def resolved_params(
    component: Component, kind: str, host: PluginHost | None = None
) -> dict[str, Any]:
    """A component's full parameters: the factory's defaults updated by the spec's values."""
    factory = (host or get_host()).registry(kind).get(component.name)
    return {**factory_parameters(factory), **dict(component.params)}


def describe(spec: StrategySpec, host: PluginHost | None = None) -> Mapping[str, Any]:
    """The spec as a dict, plus the changes relative to its parent preset (if registered)."""
    host = host or get_host()
    out: dict[str, Any] = spec.to_dict()
    if spec.parent and spec.parent in host.registry("strategies"):
        parent = get_strategy(spec.parent, host)
        out["changes_from_parent"] = {
            path: {"parent": old, "this": new} for path, (old, new) in parent.diff(spec).items()
        }
    return out
