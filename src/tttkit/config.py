"""Strategy specifications: immutable, JSON-serializable recipes for one TTT run.

A :class:`StrategySpec` names its components (finetuning-mask strategy, user-hole filler,
augmentation pipeline, freezing policy) by their registered names with parameters, and holds the
losses, optimisation and schedule settings. Presets derive from one another with
:meth:`StrategySpec.derive`, which takes dotted paths, so every preset states exactly what it
changes.
"""

from __future__ import annotations

import dataclasses
import json
import math
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from tttkit.errors import SpecError
from tttkit.registry import SCALARS, close_matches, is_number


def freeze(value: Any) -> Any:
    """Recursively turn dicts into read-only mappings and lists into tuples."""
    if isinstance(value, Mapping):
        return types.MappingProxyType({str(k): freeze(v) for k, v in value.items()})
    if isinstance(value, (list, tuple)):
        return tuple(freeze(v) for v in value)
    return value


def thaw(value: Any) -> Any:
    """Inverse of :func:`freeze`: plain dicts and lists, ready for JSON."""
    if isinstance(value, Mapping):
        return {k: thaw(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return [thaw(v) for v in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: thaw(getattr(value, f.name)) for f in dataclasses.fields(value)}
    return value


def _check_number(
    name: str, value: Any, low: float, high: float | None = None, open_low: bool = False
) -> None:
    """Raise :class:`SpecError` unless ``value`` is a finite number in range."""
    if not (is_number(value) and math.isfinite(value)):
        raise SpecError(f"{name} must be a finite number, got {value!r}")
    if value < low or (open_low and value == low) or (high is not None and value > high):
        bound = f"> {low}" if open_low else f"≥ {low}"
        raise SpecError(
            f"{name} must be {bound}"
            + (f" and ≤ {high}" if high is not None else "")
            + f", got {value!r}"
        )


def _params_field() -> Any:
    return field(default_factory=lambda: types.MappingProxyType({}))


#: Output selection rules (``StrategySpec.select``): the best-scoring evaluation step on the
#: held-out validation area, the last step, or the raw network
#: (:mod:`tttkit.engine.self_validation`).
SELECTIONS = ("best", "last", "raw")


@dataclass(frozen=True)
class Component:
    """A registered component chosen by name, with keyword parameters for its factory."""

    name: str
    params: Mapping[str, Any] = _params_field()

    def __post_init__(self) -> None:
        object.__setattr__(self, "params", freeze(self.params))


@dataclass(frozen=True)
class AugmentStep:
    """One step of an augmentation pipeline.

    Attributes:
        ops: the augmentation (one component), or alternatives of which one is chosen uniformly.
        p: probability that the step fires for a view.
        then_other_p: after the chosen alternative, each other alternative is applied too with this
            probability (the thesis's "one flip, then the other with p 0.4").
        unless: skip the step when any of these augmentations was already applied to the view
            (the thesis's "translation only when crop was not applied").
    """

    ops: tuple[Component, ...]
    p: float = 1.0
    then_other_p: float = 0.0
    unless: tuple[str, ...] = ()


@dataclass(frozen=True)
class AugmentSpec:
    """An augmentation pipeline applied to each view of a batch independently.

    Attributes:
        p: probability of augmenting a view at all; when it does, each step rolls its own ``p``.
        steps: the steps, applied in order.
        mask_follows_geometry: geometric augmentations move the finetuning mask with the image;
            when false the finetuning mask is drawn afterwards on the transformed frame, away from
            empty pixels (thesis combination G).
        empty_fill: what fills pixels a geometric augmentation leaves empty: ``"zero"`` or
            ``"random"`` (thesis §4.3.2).
    """

    p: float = 1.0
    steps: tuple[AugmentStep, ...] = ()
    mask_follows_geometry: bool = True
    empty_fill: str = "zero"

    @property
    def enabled(self) -> bool:
        """Whether any augmentation can happen."""
        return self.p > 0 and bool(self.steps)


@dataclass(frozen=True)
class LossSpec:
    """Loss weights and options (thesis §2.7, §3.2.3).

    Attributes:
        l1, structural, perceptual, adversarial: weights; 0 disables a term.
        background: also apply the losses on the background ``B = (F ∪ U)ᶜ`` (thesis §4.5.4).
        structural_alpha: weight of the edge-focused term of the pyramid structure loss
            (thesis eq. 2.16; the thesis's β = 20 scales the edge map and cancels in its
            normalisation, so it has no field).
        structural_gradient_weight: weight of the plain gradient term (1 in the thesis's
            equation; Yang et al.'s code uses 0.1 with ``structural_alpha`` 1).
        structural_sigma: standard deviation of the Gaussian that spreads the edge map.
        perceptual_optional: when no VGG weights are on the machine (none named, none in
            ``$TTTKIT_PERCEPTUAL_WEIGHTS`` or torchvision's cache), run without the perceptual
            term and say so in the run's notices, instead of refusing. For recipes that must
            work out of the box (tttkit cannot ship VGG weights); a named file that is missing
            or broken is still refused.
    """

    l1: float = 1.0
    structural: float = 1.0
    perceptual: float = 0.1
    adversarial: float = 0.4
    background: bool = False
    structural_alpha: float = 0.1
    structural_gradient_weight: float = 1.0
    structural_sigma: float = 1.0
    perceptual_optional: bool = False

    def __post_init__(self) -> None:
        for name in ("l1", "structural", "perceptual", "adversarial", "structural_alpha",
                     "structural_gradient_weight"):  # fmt: skip
            _check_number(f"losses.{name}", getattr(self, name), low=0.0)
        _check_number("losses.structural_sigma", self.structural_sigma, low=0.0, open_low=True)


@dataclass(frozen=True)
class OptimSpec:
    """Optimizer and learning-rate schedule.

    Attributes:
        name: ``"adam"`` or ``"sgd"``.
        lr: initial learning rate of generator and discriminator.
        betas: Adam betas (Yang et al. use ``(0, 0.9)``).
        lr_milestones: steps at which the learning rate is multiplied by ``lr_gamma``.
        lr_gamma: the multiplier.
    """

    name: str = "adam"
    lr: float = 1e-6
    betas: tuple[float, float] = (0.0, 0.9)
    lr_milestones: tuple[int, ...] = ()
    lr_gamma: float = 0.5

    def __post_init__(self) -> None:
        _check_number("optim.lr", self.lr, low=0.0)
        _check_number("optim.lr_gamma", self.lr_gamma, low=0.0, open_low=True)
        for i, beta in enumerate(self.betas):
            _check_number(f"optim.betas[{i}]", beta, low=0.0, high=1.0)
            if beta >= 1.0:
                raise SpecError(f"optim.betas[{i}] must be below 1, got {beta!r}")
        if any(not isinstance(m, int) or m < 0 for m in self.lr_milestones):
            raise SpecError(f"optim.lr_milestones must be steps ≥ 0, got {self.lr_milestones!r}")

    def lr_at(self, step: int) -> float:
        """Learning rate in force at ``step`` (0-based)."""
        return self.lr * self.lr_gamma ** sum(step >= m for m in self.lr_milestones)


@dataclass(frozen=True)
class StrategySpec:
    """A complete, named TTT recipe.

    Attributes:
        name: registered name.
        description: one line saying what the strategy is (and what it changes).
        parent: the preset it derives from, if any.
        finetune_mask: how finetuning masks are drawn.
        filler: what fills the user's holes during finetuning.
        augment: the augmentation pipeline.
        freeze: which parameters stay fixed.
        losses: loss weights.
        optim: optimizer and schedule.
        steps: number of finetuning steps.
        batch_size: views per step, each with its own finetuning mask.
        eval_every: evaluation interval in steps (metrics, and checkpoints of the output).
        reinitialize: start from random weights instead of the pretrained ones (zero-shot).
        hole_margin: pixels of known border kept between the user's holes and any finetuning
            mask (the binary dilation of the user mask, thesis Fig. 3.2).
        backbone: the backbone this strategy is meant for, used when the caller names none
            (``None``: the default backbone).
        select: which output to return: ``"last"`` (the thesis: after the last step),
            ``"best"`` (the evaluation step whose fill of a held-out validation area of the
            image scores best, step 0 included) or ``"raw"``. Anything but ``"last"`` holds
            that region out of training, like the user's holes.
        early_stop: stop after this many evaluations without a better validation score
            (0: never); holds the validation area out too.
        validation_fraction: the share of the image the validation area may take at most.
        validation_copies: how many moved copies of the holes make up the validation area
            (sharing ``validation_fraction``).
        refit: when a run holds the validation area out (``select="best"`` or
            ``early_stop``), rerun its chosen step count (the best step, or the step it stopped
            at) on the whole known region, validation area included, to make the output; the
            held-out run only decides. Up to twice the training time.
        weight_average: decay of an exponential moving average of the finetuned weights
            (:mod:`tttkit.engine.averaging`); evaluations and the output use the average. 0: off.
        crop_size: train on random ``crop_size``² crops of the photo instead of the whole
            photo (cheaper steps for large backbones); filling the holes stays at full size.
            Only for backbones whose conventions allow it (``Conventions.trains_on_crops``:
            fully convolutional networks). 0: whole views.
    """

    name: str
    description: str = ""
    parent: str | None = None
    finetune_mask: Component = Component("free-form")
    filler: Component = Component("random-pixels")
    augment: AugmentSpec = AugmentSpec()
    freeze: Component = Component("none")
    losses: LossSpec = LossSpec()
    optim: OptimSpec = OptimSpec()
    steps: int = 150
    batch_size: int = 4
    eval_every: int = 5
    reinitialize: bool = False
    hole_margin: int = 3
    backbone: str | None = None
    select: str = "last"
    early_stop: int = 0
    validation_fraction: float = 0.1
    validation_copies: int = 1
    refit: bool = False
    weight_average: float = 0.0
    crop_size: int = 0

    def __post_init__(self) -> None:
        for name in (
            "crop_size",
            "steps",
            "batch_size",
            "eval_every",
            "hole_margin",
            "early_stop",
            "validation_copies",
        ):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise SpecError(
                    f"{self.name}: {name} must be a non-negative integer, got {value!r}"
                )
        if self.batch_size < 1 or self.eval_every < 1 or self.validation_copies < 1:
            raise SpecError(
                f"{self.name}: batch_size, eval_every and validation_copies must be at least 1"
            )
        if not 0.0 < self.validation_fraction <= 0.5:
            raise SpecError(
                f"{self.name}: validation_fraction must lie in (0, 0.5], "
                f"got {self.validation_fraction!r}"
            )
        if not 0.0 <= self.weight_average < 1.0:
            raise SpecError(
                f"{self.name}: weight_average must lie in [0, 1), got {self.weight_average!r}"
            )

    def derive(
        self, name: str, description: str, changes: Mapping[str, Any] | None = None
    ) -> StrategySpec:
        """A new preset: this one with ``changes`` applied (dotted paths, see :func:`apply`)."""
        base = dataclasses.replace(self, name=name, description=description, parent=self.name)
        return apply(base, changes or {})

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-friendly dict."""
        return thaw(self)

    def to_json(self, indent: int | None = 2) -> str:
        """JSON text; :meth:`from_json` reads it back to an equal spec."""
        return json.dumps(self.to_dict(), indent=indent, sort_keys=False)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StrategySpec:
        """Rebuild a spec from :meth:`to_dict` output, validating every field."""
        return _build(cls, data, path="")

    @classmethod
    def from_json(cls, text: str) -> StrategySpec:
        """Rebuild a spec from :meth:`to_json` output."""
        return cls.from_dict(json.loads(text))

    def diff(self, other: StrategySpec) -> dict[str, tuple[Any, Any]]:
        """Dotted paths whose values differ: ``{path: (self value, other value)}``."""
        ours, theirs = _flatten(self.to_dict()), _flatten(other.to_dict())
        keys = [k for k in {**ours, **theirs} if k not in ("name", "description", "parent")]
        return {k: (ours.get(k), theirs.get(k)) for k in keys if ours.get(k) != theirs.get(k)}


def _flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(data, dict):
        out: dict[str, Any] = {}
        for key, value in data.items():
            out.update(_flatten(value, f"{prefix}{key}."))
        return out or {prefix.rstrip("."): {}}
    return {prefix.rstrip("."): data}


# -- building and overriding ------------------------------------------------------------------


def _build(cls: type, data: Mapping[str, Any], path: str) -> Any:
    """Construct dataclass ``cls`` from plain data, checking names and types."""
    if not isinstance(data, Mapping):
        raise SpecError(f"{path or 'spec'}: expected an object, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = [k for k in data if k not in fields]
    if unknown:
        raise SpecError(_unknown_field_message(path, unknown[0], list(fields)))
    kwargs = {key: _coerce(hints[key], value, f"{path}{key}") for key, value in data.items()}
    return cls(**kwargs)


def _unknown_field_message(path: str, key: str, known: list[str]) -> str:
    where = f"{path.rstrip('.')}." if path else ""
    message = f"unknown field {where}{key}"
    suggestions = close_matches(key, known)
    if suggestions:
        message += " — did you mean " + " or ".join(f"{where}{s}" for s in suggestions) + "?"
    else:
        message += f" (fields: {', '.join(known)})"
    return message


def _coerce(hint: Any, value: Any, path: str) -> Any:
    """Check ``value`` against a type hint, converting JSON shapes (lists → tuples)."""
    origin = typing.get_origin(hint)
    if dataclasses.is_dataclass(hint):
        if dataclasses.is_dataclass(value) and isinstance(value, hint):
            return value
        return _build(hint, value, f"{path}.")
    if origin in (typing.Union, types.UnionType):
        return _coerce_union(typing.get_args(hint), value, path)
    if origin is tuple:
        return _coerce_tuple(typing.get_args(hint), value, path)
    if origin in (Mapping, dict) or hint is Mapping:
        if not isinstance(value, Mapping):
            raise SpecError(f"{path}: expected an object, got {value!r}")
        return freeze(value)
    if hint is Any:
        return freeze(value)
    if hint is float and is_number(value) and not math.isfinite(value):
        raise SpecError(f"{path}: expected a finite number, got {value!r}")
    if hint in SCALARS:
        accepts, expected = SCALARS[hint]
        if not accepts(value):
            raise SpecError(f"{path}: expected {expected}, got {value!r}")
        return float(value) if hint is float else value
    return value


def _coerce_union(args: tuple[Any, ...], value: Any, path: str) -> Any:
    if value is None and type(None) in args:
        return None
    errors = []
    for arg in (a for a in args if a is not type(None)):
        try:
            return _coerce(arg, value, path)
        except SpecError as exc:
            errors.append(str(exc))
    raise SpecError(errors[0] if errors else f"{path}: invalid value {value!r}")


def _coerce_tuple(args: tuple[Any, ...], value: Any, path: str) -> tuple[Any, ...]:
    if not isinstance(value, (list, tuple)):
        raise SpecError(f"{path}: expected a list, got {value!r}")
    if len(args) == 2 and args[1] is Ellipsis:
        return tuple(_coerce(args[0], v, f"{path}[{i}]") for i, v in enumerate(value))
    if len(args) != len(value):
        raise SpecError(f"{path}: expected {len(args)} values, got {len(value)}")
    return tuple(
        _coerce(a, v, f"{path}[{i}]") for i, (a, v) in enumerate(zip(args, value, strict=True))
    )


def replace_checked(obj: Any, changes: Mapping[str, Any]) -> Any:
    """``dataclasses.replace`` for the spec dataclasses, checking field names and types.

    Args:
        obj: a spec dataclass instance (e.g. a :class:`LossSpec`).
        changes: field → value (JSON shapes accepted).
    """
    return _build(type(obj), {**thaw(obj), **changes}, path="")


def apply(spec: StrategySpec, changes: Mapping[str, Any]) -> StrategySpec:
    """Return ``spec`` with dotted-path ``changes`` applied and validated.

    Paths name dataclass fields (``steps``, ``optim.lr``, ``augment.p``), component parameters
    (``finetune_mask.params.alpha``) and items of lists by their index: one step of the
    augmentation pipeline (``augment.steps.0.p``), one of its alternatives' parameters
    (``augment.steps.1.ops.0.params.sigma``). Values are checked against the field types; a
    wrong path raises :class:`SpecError` suggesting close matches, or saying which indices a
    list has.
    """
    data = spec.to_dict()
    for path, value in changes.items():
        _set_path(data, path, thaw(value))
    return StrategySpec.from_dict(data)


def _set_path(data: dict[str, Any], path: str, value: Any) -> None:
    parts = path.split(".")
    node: Any = data
    for depth in range(len(parts) - 1):
        node = _child(node, parts, depth)
    last = parts[-1]
    parent = ".".join(parts[:-1])
    if isinstance(node, list):
        node[_index(node, parts, len(parts) - 1)] = value
        return
    if not isinstance(node, dict):
        raise SpecError(f"cannot set {path}: {parent} is not an object")
    is_params = parts[-2:-1] == ["params"]
    if last not in node and not is_params:
        raise SpecError(_unknown_field_message(f"{parent}." if parent else "", last, list(node)))
    node[last] = value


def _child(node: Any, parts: list[str], depth: int) -> Any:
    """The field or list item ``parts[depth]`` of ``node`` (the value at ``parts[:depth]``)."""
    key, where = parts[depth], ".".join(parts[:depth])
    if isinstance(node, list):
        return node[_index(node, parts, depth)]
    if not isinstance(node, dict):
        raise SpecError(f"cannot set {'.'.join(parts)}: {where} is a single value")
    if key not in node:
        raise SpecError(_unknown_field_message(f"{where}." if where else "", key, list(node)))
    return node[key]


#: The augmentation pipeline set whole, for the error on an index into an empty one.
_WHOLE_PIPELINE = (
    """--set augment.steps='[{"ops": [{"name": "hflip"}], "p": 0.5}]' --set augment.p=1"""
)


def _index(items: list[Any], parts: list[str], depth: int) -> int:
    """``parts[depth]`` as an index of ``items`` (the list at ``parts[:depth]``); else an
    error saying which indices it has, or, when it is empty, how to set it whole."""
    key, where, path = parts[depth], ".".join(parts[:depth]), ".".join(parts)
    if key.isdigit() and int(key) < len(items):
        return int(key)
    if not items:
        how = f"({where}=[…], JSON)"
        if where == "augment.steps":  # with its probability, which such a strategy sets to 0
            how = f"with --augment NAME[:p],… (one step each), or {_WHOLE_PIPELINE}"
        raise SpecError(f"cannot set {path}: {where} is empty in this strategy; set it whole {how}")
    example = ".".join([where, "0", *parts[depth + 1 :]])
    raise SpecError(
        f"cannot set {path}: {where} is a list of {len(items)}, indexed 0–{len(items) - 1} "
        f"(e.g. {example})"
    )


def parse_assignment(text: str, option: str = "--set") -> tuple[str, Any]:
    """Parse ``path.to.field=value`` (value as JSON, else as a plain string); ``option`` names
    the command-line option in errors."""
    path, sep, raw = text.partition("=")
    if not sep or not path.strip():
        form = "path.to.field=value" if option == "--set" else "key=value"
        raise SpecError(f"{option} expects {form}, got {text!r}")
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    return path.strip(), value
