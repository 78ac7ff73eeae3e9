"""The test-time-training loop (thesis §3.2): one place, plugins supply the parts.

Each step takes a batch of views of the user's image: the filler puts placeholder content in the
user's holes U; a finetuning mask F per view hides part of the known region (never within the
dilated U); augmentations transform image and masks together; the backbone fills F (U stays
unmarked — its placeholder content teaches the network to distrust it, thesis §4.4); losses on F
through the completed output (eq. 3.3), optionally on the background through the raw output
(eq. 3.4); then generator and discriminator updates. Every ``eval_every`` steps, and at step 0,
the current network fills the real holes.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import math
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from tttkit.backbone import Backbone
from tttkit.components import FillContext, MaskSamplingError, ParameterAdapter
from tttkit.config import StrategySpec
from tttkit.engine.augment import AugmentPipeline, plain_call
from tttkit.engine.averaging import WeightAverage
from tttkit.engine.cancellation import checked_inside_steps
from tttkit.engine.contracts import StepChecks
from tttkit.engine.execution import (
    autocast,
    no_weight_grads,
    resolve_device,
    resolve_precision,
    to_memory_format,
)
from tttkit.engine.losses import discriminator_loss, generator_losses
from tttkit.engine.perceptual import network_for
from tttkit.engine.self_validation import (
    Refit,
    Selection,
    Selector,
    validation_area,
    validation_score,
)
from tttkit.errors import PluginContractError, RunCancelled, SpecError
from tttkit.events import CancelSignal, Progress, ProgressCallback, RunInfo, StepRecord
from tttkit.imageops import dilate
from tttkit.io import InputError
from tttkit.metrics import image_metrics
from tttkit.options import RunOptions
from tttkit.plugins import PluginHost, get_host
from tttkit.references import ReferenceViews
from tttkit.strategy import COMPONENT_KINDS, check_strategy

#: A user mask covering more than this fraction leaves too little context to learn from.
MAX_HOLE_FRACTION = 0.9


@dataclass
class Evaluation:
    """The real holes filled at one step.

    Attributes:
        step: the finetuning step (0: the raw network).
        metrics: quality against the ground truth, when one was given.
        completed: ``(3, H, W)`` the completed image at that step, kept only when the run was
            asked to (``keep_outputs``: set metrics such as FID need every step's image).
    """

    step: int
    metrics: dict[str, float] = field(default_factory=dict)
    completed: Tensor | None = field(default=None, repr=False)


@dataclass
class Result:
    """What :func:`tttkit.adapt` (and :func:`run_ttt`) returns.

    Attributes:
        raw: ``(3, H, W)`` the user's image with holes filled by the untouched backbone (step 0).
        finetuned: ``(3, H, W)`` the same after test-time training.
        history: one record per finetuning step (losses, learning rate, seconds, metrics).
        evaluations: the evaluation steps, step 0 first. After a refit (:func:`run_ttt`),
            ``history`` and ``evaluations`` are the refit run's.
        seconds: wall time of ``setup``, ``finetune`` and ``total``.
        strategy: the spec that ran, after overrides.
        seed: the seed that makes the run reproducible.
        notices: things the user should know (e.g. an empty mask).
        network: the finetuned copy of the backbone that made ``finetuned`` (its weights at the
            chosen step). ``None`` when nothing was trained, when the training diverged, or
            when a photo was completed in several windows (each trained its own copy).
        selection: how ``finetuned`` was chosen (:class:`Selection`); ``None`` when nothing
            was trained (an empty mask) or for a photo completed in several windows (each
            window's is in ``windows``).
        windows: for a photo completed window by window (:mod:`tttkit.windows`), each window
            with its selection and timings; ``None`` for a single plain run.
    """

    raw: Tensor
    finetuned: Tensor
    history: list[StepRecord]
    evaluations: list[Evaluation]
    seconds: dict[str, float]
    strategy: StrategySpec
    seed: int
    notices: list[str] = field(default_factory=list)
    network: Backbone | None = field(default=None, repr=False)
    selection: Selection | None = None
    windows: list[dict[str, Any]] | None = None

    @property
    def regions(self) -> list[dict[str, Any]] | None:
        """Deprecated name of :attr:`windows` (a "region" is now only the self-validation
        area)."""
        warnings.warn(
            "Result.regions is deprecated: use Result.windows", DeprecationWarning, stacklevel=2
        )
        return self.windows

    @property
    def output_step(self) -> int:
        """The evaluation step whose fill is ``finetuned`` (≤ the strategy's steps: a selected,
        early-stopped or refit run may return an earlier one)."""
        if self.selection is not None:
            return self.selection.chosen_step
        if self.windows is not None:  # each window chose its own (``windows``)
            return self.strategy.steps
        return self.history[-1].step if self.history else 0

    def metrics(self, step: int | None = None) -> dict[str, float]:
        """Metrics at ``step`` (default: of the returned output — the chosen step, else the last
        evaluation); empty without ground truth."""
        if not self.evaluations:
            return {}
        chosen = None if self.selection is None else self.selection.chosen_step
        if step is None and self.windows is None and chosen is not None:
            step = chosen
        if step is None:
            return self.evaluations[-1].metrics
        return next((e.metrics for e in self.evaluations if e.step == step), {})


def add_seconds(parts: list[dict[str, float]]) -> dict[str, float]:
    """Wall times of runs that together made one result, added per phase."""
    return {k: sum(p.get(k, 0.0) for p in parts) for k in ("setup", "finetune", "total")}


def as_batch(image: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
    """Check and shape a user image ``(3, H, W)`` and mask ``(1, H, W)`` or ``(H, W)``."""
    image = as_image(image)
    if image.dim() != 3 or image.shape[0] != 3:
        raise InputError(f"image must be (3, H, W) RGB, got shape {tuple(image.shape)}")
    mask = as_mask(mask, (image.shape[-2], image.shape[-1]))
    return image[None].float(), (mask[None] > 0.5).float()


def as_image(image: Tensor) -> Tensor:
    """A user image without a leading batch of one: ``(1, 3, H, W)`` → ``(3, H, W)``."""
    return image[0] if image.dim() == 4 and image.shape[0] == 1 else image


def as_mask(mask: Tensor, size: tuple[int, int]) -> Tensor:
    """A user mask given as ``(H, W)``, ``(1, H, W)`` or ``(1, 1, H, W)``, as ``(1, H, W)``
    (a view); any other shape, or another size than ``size``, is an :class:`InputError`."""
    if mask.dim() == 4 and mask.shape[0] == 1:
        mask = mask[0]
    if mask.dim() == 2:
        mask = mask[None]
    if mask.shape != (1, *size):
        raise InputError(
            f"mask of shape {tuple(mask.shape)} does not match image of size {tuple(size)}"
        )
    return mask


@dataclass
class _Parts:
    """The strategy's components, built once per run."""

    mask_strategy: Callable[..., Tensor]
    filler: Callable[..., Tensor]
    pipeline: AugmentPipeline
    freeze: Callable[..., set[str]]  # the freezing policy (perhaps a ParameterAdapter)
    frozen: set[str]


def _build_parts(spec: StrategySpec, net: Backbone, host: PluginHost) -> _Parts:
    built: dict[str, Any] = {}
    for field_name, kind in COMPONENT_KINDS.items():
        component = getattr(spec, field_name)
        factory = host.registry(kind).get(component.name)
        built[field_name] = factory(**dict(component.params))
    augmentations = host.registry("augmentations")
    return _Parts(
        mask_strategy=built["finetune_mask"],
        filler=built["filler"],
        pipeline=AugmentPipeline(spec.augment, augmentations.get),
        freeze=built["freeze"],
        frozen=_frozen_groups(spec, built["freeze"], net, host),
    )


def _policy_plugin(spec: StrategySpec, host: PluginHost) -> str:
    """The plugin that registered the strategy's freezing policy."""
    return host.registry("freezing-policies").entry(spec.freeze.name).plugin


def _policy_names(spec: StrategySpec, net: Backbone, host: PluginHost) -> tuple[str, str, str]:
    """How messages name the strategy's freezing policy (with its plugin), the backbone, and
    the backbone's layer groups."""
    policy = f"freezing policy {spec.freeze.name!r} ({host.describe(_policy_plugin(spec, host))})"
    return policy, describe_backbone(net, host), ", ".join(net.layer_groups())


def _policy_refused(
    spec: StrategySpec, net: Backbone, host: PluginHost, exc: Exception
) -> SpecError:
    """A policy's ``ValueError`` for this backbone (a pattern matching no group, no layer of
    the kind it trains): a usage error naming the field, as a refused parameter is."""
    _, backbone, groups = _policy_names(spec, net, host)
    message = str(exc)
    listed = "" if groups in message else f"; the layer groups of {backbone} are: {groups}"
    return SpecError(f"freeze: freezing policy {spec.freeze.name!r}: {message}{listed}")


def _frozen_groups(
    spec: StrategySpec, policy: Callable[..., Any], net: Backbone, host: PluginHost
) -> set[str]:
    """The layer groups ``policy`` freezes, checked to be groups the backbone has (a policy
    naming others broke its contract: it selects among the groups it is given)."""
    groups = net.layer_groups()
    try:
        frozen = policy(groups)
    except ValueError as exc:
        raise _policy_refused(spec, net, host, exc) from None
    names_only = isinstance(frozen, (set, frozenset, list, tuple)) and all(
        isinstance(name, str) for name in frozen
    )
    if not names_only:
        what, _, _ = _policy_names(spec, net, host)
        raise PluginContractError(
            f"{what} returned a {type(frozen).__name__}: a freezing policy returns a set of "
            "layer-group names",
            plugin=_policy_plugin(spec, host),
        )
    unknown = sorted(set(frozen) - set(groups))
    if unknown:
        what, backbone, names = _policy_names(spec, net, host)
        raise PluginContractError(
            f"{what} froze {', '.join(map(repr, unknown))}: no such layer group in {backbone}; "
            f"its layer groups are: {names}",
            plugin=_policy_plugin(spec, host),
        )
    return set(frozen)


def _reinitialize(module: nn.Module) -> None:
    for child in module.modules():
        reset = getattr(child, "reset_parameters", None)
        if callable(reset):
            reset()


def _optimizer(spec: StrategySpec, params: list[nn.Parameter]) -> torch.optim.Optimizer | None:
    if not params:
        return None
    if spec.optim.name == "sgd":
        return torch.optim.SGD(params, lr=spec.optim.lr)
    return torch.optim.Adam(params, lr=spec.optim.lr, betas=spec.optim.betas)


def _set_lr(optimizers: list[torch.optim.Optimizer | None], lr: float) -> None:
    for optimizer in optimizers:
        if optimizer is not None:
            for group in optimizer.param_groups:
                group["lr"] = lr


def run_ttt(
    backbone: Backbone,
    image: Tensor,
    mask: Tensor,
    spec: StrategySpec,
    options: RunOptions | None = None,
    *,
    ground_truth: Tensor | None = None,
    perceptual: nn.Module | None = None,
    label: str = "image",
    host: PluginHost | None = None,
    on_progress: ProgressCallback | None = None,
    cancel: CancelSignal | None = None,
    references: ReferenceViews | None = None,
) -> Result:
    """Run test-time training of ``backbone`` on one image and fill its holes.

    This is the engine under :func:`tttkit.adapt`, which resolves names, reads files and cuts
    a large photo into windows; call it directly with objects at the network's working size.

    Args:
        backbone: the pretrained network; it is copied, never modified.
        image: ``(3, H, W)`` RGB in ``[0, 1]``.
        mask: ``(1, H, W)`` or ``(H, W)``, 1 at the holes to fill.
        spec: the strategy (already overridden and checked).
        options: seed, device, precision… (:class:`tttkit.options.RunOptions`; default: its
            defaults).
        ground_truth: ``(3, H, W)`` the complete image, to record metrics.
        perceptual: the feature network for the perceptual loss; ``None``: searched for
            (:func:`tttkit.engine.perceptual.network_for`: an optional term without weights
            is dropped, with a notice).
        label: name of the run for observers.
        host: plugin host (default: the process-wide one).
        on_progress: called with a :class:`tttkit.events.Progress` after the raw fill and
            after every step, with a preview of the fill at evaluation steps.
        cancel: checked before every step and inside it, at every layer's forward pass and
            gradient (:mod:`tttkit.engine.cancellation`); once set, the run raises
            :class:`tttkit.errors.RunCancelled` within one layer's work.
        references: other shots of the scene in this image's frame (:mod:`tttkit.references`):
            some of each step's views are drawn from them.

    With ``spec.refit``, a run that held out a validation area (``select="best"``, or
    ``early_stop``) only chooses how many steps to train — the best-scoring step, or the step at
    which it stopped; when that is more than none, a second run of that many steps on the whole
    known region (same seed) makes the output, so the held-out area costs the output no
    context. ``Result.selection.refit`` then records the step count and the held-out run's
    own evaluations; ``history`` and ``evaluations`` are the second run's.
    """
    options = options or RunOptions()
    notices: list[str] = []
    # Searched for (an optional term without weights is dropped, said), once the mask is known
    # to need training: an empty or all-hole mask is answered first.
    if perceptual is None and _has_holes(as_batch(image, mask)[1]):
        spec, perceptual, notices = network_for(spec, None, resolve_device(options.device))
    inputs = _Inputs(image, mask, ground_truth, perceptual, host or get_host(), on_progress, cancel,
                     references)  # fmt: skip
    with inputs.host.naming_failures():  # an exception in plugin code names the plugin
        probe = _run(backbone, inputs, spec, options, label)
        probe.notices[:0] = notices
        selection = probe.selection
        if selection is None or not _refits(spec, selection):
            return probe
        refit_spec = dataclasses.replace(
            spec, steps=selection.chosen_step, select="last", early_stop=0
        )
        refit = _run(backbone, inputs, refit_spec, options, f"{label} (refit)")
    return _refitted(probe, refit, spec)


def _refits(spec: StrategySpec, selection: Selection) -> bool:
    """Whether a refit run follows: asked for, an area was held out, and a step > 0 chosen."""
    held_out = bool(selection.validation) and selection.rule != "raw"
    return spec.refit and held_out and selection.chosen_step > 0


@dataclass(frozen=True)
class _Inputs:
    """What one call of :func:`run_ttt` works on, shared by its runs."""

    image: Tensor
    mask: Tensor
    ground_truth: Tensor | None
    perceptual: nn.Module | None
    host: PluginHost
    on_progress: ProgressCallback | None = None
    cancel: CancelSignal | None = None
    references: ReferenceViews | None = None


def _refitted(probe: Result, refit: Result, spec: StrategySpec) -> Result:
    """The refit run's output, with the probe's decision (and its own curve) in the selection."""
    assert probe.selection is not None
    selection = probe.selection.replace(
        refit=Refit(
            steps=probe.selection.chosen_step,
            # with a ground truth, the held-out run's metrics; without, its evaluation steps
            held_out_evaluations=tuple({"step": e.step, **e.metrics} for e in probe.evaluations),
        )
    )
    seconds = add_seconds([probe.seconds, refit.seconds])
    return dataclasses.replace(
        refit, strategy=spec, seconds=seconds, selection=selection,
        notices=[*probe.notices, *refit.notices],
    )  # fmt: skip


def _run(
    backbone: Backbone, inputs: _Inputs, spec: StrategySpec, options: RunOptions, label: str
) -> Result:
    """One run of :func:`run_ttt`: set up, evaluate step 0, train and evaluate, build
    the result (its output chosen by ``spec.select``)."""
    started = time.perf_counter()
    host = inputs.host
    check_strategy(spec, host)
    device = resolve_device(options.device)
    image, user_mask = as_batch(inputs.image, inputs.mask)
    truth = inputs.ground_truth
    target = None if truth is None else truth.reshape(image.shape).to(device)
    image, user_mask = image.to(device), user_mask.to(device)
    if not _has_holes(user_mask):
        return _unchanged(image, spec, options.seed)
    run = _Run(backbone, image, user_mask, spec, options.replace(device=device), host=host,
               perceptual=inputs.perceptual, target=target,
               references=inputs.references)  # fmt: skip
    completed = 0  # steps finished, for a cancellation from inside a step
    with checked_inside_steps(run.net, inputs.cancel, lambda: completed):
        run.evaluate(0)
        report = _Reporter(inputs.on_progress, label, spec.steps, started)
        report(run, 0, None)
        info = RunInfo(label=label, strategy=spec.name, total_steps=spec.steps,
                       show_progress=options.show_progress)  # fmt: skip
        run.seconds["setup"] = time.perf_counter() - started
        host.hook.tttkit_run_start(run=info)
        result: Result | None = None
        try:
            for step in range(1, spec.steps + 1):
                if inputs.cancel is not None and inputs.cancel.is_set():
                    raise RunCancelled(completed)
                record = run.step(step)
                completed = step
                host.hook.tttkit_step_end(run=info, record=record)
                report(run, step, record.losses.get("total"))
                if run.stopped(step):
                    break
            run.seconds["total"] = time.perf_counter() - started
            result = run.result()
            return result
        finally:
            host.hook.tttkit_run_end(run=info, result=result)


@dataclass(frozen=True)
class _Reporter:
    """Sends a run's :class:`Progress` to the caller's callback (if any)."""

    callback: ProgressCallback | None
    label: str
    total_steps: int
    started: float

    def __call__(self, run: _Run, step: int, loss: float | None) -> None:
        if self.callback is None:
            return
        preview = run.latest_fill[0].detach().float().cpu() if run.evaluated_at(step) else None
        self.callback(Progress(label=self.label, step=step, total_steps=self.total_steps,
                               loss=loss, seconds=time.perf_counter() - self.started,
                               preview=preview))  # fmt: skip


def _has_holes(user_mask: Tensor) -> bool:
    """Whether there is anything to fill (and enough context around it to learn from)."""
    hole_fraction = float(user_mask.mean())
    if hole_fraction > MAX_HOLE_FRACTION:
        raise InputError(
            f"the mask covers {hole_fraction:.0%} of the image: too little context to learn from "
            f"(at most {MAX_HOLE_FRACTION:.0%})"
        )
    return hole_fraction > 0.0


def _unchanged(image: Tensor, spec: StrategySpec, seed: int) -> Result:
    unchanged = image[0].clone()
    return Result(
        raw=unchanged, finetuned=unchanged, history=[], evaluations=[], strategy=spec,
        seed=seed, seconds={"setup": 0.0, "finetune": 0.0, "total": 0.0},
        notices=["the mask is empty: nothing to fill, the image is returned unchanged"],
    )  # fmt: skip


def _check_fill(net: Backbone, out: Tensor, images: Tensor, host: PluginHost) -> None:
    """What a backbone's ``generate`` hands the engine: a floating image of its input's shape
    (the engine blends the two)."""
    problem = None
    if out.shape != images.shape:
        problem = (
            f"returned a fill of shape {tuple(out.shape)} for input of shape "
            f"{tuple(images.shape)}: generate() must return an image of its input's size"
        )
    elif not out.is_floating_point():
        problem = f"returned a fill of dtype {out.dtype}: generate() must return floats in [0, 1]"
    if problem is None:
        return
    owner = host.owner(type(net).__module__)
    raise PluginContractError(
        f"{describe_backbone(net, host)} {problem}", plugin=None if owner is None else owner.name
    )


def describe_backbone(net: Backbone, host: PluginHost) -> str:
    """How messages name a backbone: ``backbone 'name' (Class, plugin 'p' from distribution
    'd')`` — the registered name when the class itself (or a ``functools.partial`` of it) is
    registered under one name, and the plugin its code comes from."""
    kind = type(net)
    names = [
        entry.name
        for entry in host.registry("backbones").entries()
        if entry.obj is kind or getattr(entry.obj, "func", None) is kind
    ]
    owner = host.owner(kind.__module__)
    origin = host.describe(owner.name) if owner is not None else f"module {kind.__module__}"
    if len(names) == 1:
        return f"backbone {names[0]!r} ({kind.__qualname__}, {origin})"
    return f"backbone {kind.__qualname__} ({origin})"


def _broken_fill(net: Backbone, host: PluginHost) -> PluginContractError:
    """The error for a fill that is not finite before any training: the backbone (or its
    weights) is broken, and no output of it can be trusted."""
    broken = sum(1 for p in net.parameters() if not bool(torch.isfinite(p).all()))
    cause = (
        f"{broken} of its weight tensors hold NaN or infinity (check the weights)"
        if broken
        else "its weights are finite, so its forward pass makes them"
    )
    owner = host.owner(type(net).__module__)
    return PluginContractError(
        f"{describe_backbone(net, host)} filled the holes with values that are not finite "
        f"(NaN or infinity) at step 0, before any training: {cause}",
        plugin=None if owner is None else owner.name,
    )


def _finite(*tensors: Tensor | None) -> bool:
    return all(t is None or bool(torch.isfinite(t).all()) for t in tensors)


#: A training crop is redrawn (up to this many times) while less than this share of it is
#: known context that a finetuning mask may hide.
CROP_TRIES, CROP_MIN_FREE = 8, 0.25


def crop_views(size: int, generator: torch.Generator, *views: Tensor) -> tuple[Tensor, ...]:
    """A random ``size``² crop per batch item, the same window in each of the aligned
    ``views`` ``(B, C, H, W)`` (image, user mask, forbidden area; the last is what a
    finetuning mask may not touch). A window is redrawn while less than
    :data:`CROP_MIN_FREE` of it is free, so every crop has context to learn from."""
    forbidden = views[-1]
    batch, _, height, width = forbidden.shape
    crops: list[list[Tensor]] = [[] for _ in views]
    for index in range(batch):
        for _ in range(CROP_TRIES):
            top = int(torch.randint(height - size + 1, (1,), generator=generator))
            left = int(torch.randint(width - size + 1, (1,), generator=generator))
            window = (slice(top, top + size), slice(left, left + size))
            if 1 - float(forbidden[index, :, window[0], window[1]].mean()) >= CROP_MIN_FREE:
                break
        for kept, view in zip(crops, views, strict=True):
            kept.append(view[index, :, window[0], window[1]])
    return tuple(torch.stack(kept) for kept in crops)


class _Run:
    """One test-time-training run's state, built once: the network copy and its parts,
    optimizers, weight average, the held-out validation area and the selection of the output.

    Its phases read as the thesis's loop: :meth:`evaluate` fills the real holes (and scores the
    validation area), :meth:`step` trains one step and evaluates when due, :meth:`result`
    returns the chosen output.
    """

    def __init__(
        self,
        backbone: Backbone,
        image: Tensor,
        user_mask: Tensor,
        spec: StrategySpec,
        options: RunOptions,
        *,
        host: PluginHost,
        perceptual: nn.Module | None,
        target: Tensor | None,
        references: ReferenceViews | None = None,
    ) -> None:
        self.spec, self.seed, self.device = spec, options.seed, torch.device(options.device)
        self.references = None if references is None else references.to(self.device)
        self.host = host
        self.dtype = resolve_precision(options.precision, self.device)
        self.image, self.user_mask, self.target = image, user_mask, target
        self.perceptual, self.keep_outputs = perceptual, options.keep_outputs
        torch.manual_seed(self.seed)  # for any global-RNG use inside plugins
        self.generator = torch.Generator().manual_seed(self.seed)
        net = copy.deepcopy(backbone).to(self.device)
        self.net = to_memory_format(net, options.channels_last)
        if spec.crop_size and not self.net.conventions.trains_on_crops:
            raise SpecError(
                f"strategy {spec.name!r} trains on {spec.crop_size}² crops (crop_size), but "
                f"backbone {type(backbone).__name__} does not declare that it may "
                "(Conventions.trains_on_crops: fully convolutional networks); set crop_size=0"
            )
        if spec.reinitialize:
            _reinitialize(self.net)
        self.parts = _build_parts(spec, self.net, host)
        # What the components hand the engine each step (contracts.py): a plugin that breaks
        # its contract is named before the network trains on what it made.
        self.checks = StepChecks(host, spec.filler.name, spec.finetune_mask.name)
        self.adversarial = spec.losses.adversarial > 0 and self.net.has_discriminator
        g_params = self._freeze()
        d_params = (
            [p for p in self.net.discriminator.parameters() if p.requires_grad]
            if self.adversarial and self.net.discriminator is not None
            else []
        )
        self.opt_g, self.opt_d = _optimizer(spec, g_params), _optimizer(spec, d_params)
        self.average = (
            WeightAverage(g_params, spec.weight_average) if spec.weight_average > 0 else None
        )
        self.notices: list[str] = []
        self.validation_area, self.hidden, rule = self._hold_out_validation_area()
        self.forbidden = dilate(self.hidden, spec.hole_margin)
        patience = spec.early_stop if self.validation_area is not None else 0
        self.selector = Selector(rule, patience)
        # The generator weights that made the output chosen so far (best/raw rules), so that
        # the returned network matches the returned output.
        self.chosen_weights: dict[str, Tensor] | None = None
        self.evaluations: list[Evaluation] = []
        self.history: list[StepRecord] = []
        self.seconds: dict[str, float] = {}
        self._raw_fill: Tensor = image  # replaced by the step-0 fill (:meth:`evaluate`)
        self.latest_fill: Tensor = image  # the last evaluation's completed image
        self.stopped_at: int | None = None
        # (step, what) once the loss or the fill is not finite
        self.diverged: tuple[int, str] | None = None

    def _freeze(self) -> list[nn.Parameter]:
        """Apply the freezing policy; return the generator's parameters left to train.

        With nothing of the generator left to train, steps would return the raw fill (a
        discriminator alone changes no fill): an error, unless the strategy asks for no steps.
        """
        groups = self.net.layer_groups()
        for name in self.parts.frozen:
            groups[name].requires_grad_(False)
        if isinstance(self.parts.freeze, ParameterAdapter):  # trains part of the rest (LoRA…)
            try:
                self.parts.freeze.prepare(self.net, groups)
            except ValueError as exc:
                raise _policy_refused(self.spec, self.net, self.host, exc) from None
        trainable = [p for p in self.net.generator.parameters() if p.requires_grad]
        if not trainable and self.spec.steps > 0:
            what, backbone, names = _policy_names(self.spec, self.net, self.host)
            raise SpecError(
                f"freeze: {what} leaves nothing of the generator of {backbone} to train, so "
                f"{self.spec.steps} steps would only return the raw fill (its layer groups: "
                f"{names}); choose another policy (--freeze), or --steps 0 for the raw fill"
            )
        return trainable

    def _hold_out_validation_area(self) -> tuple[Tensor | None, Tensor, str]:
        """Self-validation (thesis §4.7.2's "choose raw or finetuned", decided from the image
        itself): a region V shaped like the holes, held out like them and scored at every
        evaluation. Returns V (``None``: none), the hidden region U ∪ V, and the rule."""
        spec = self.spec
        if spec.select == "last" and spec.early_stop == 0:
            return None, self.user_mask, spec.select
        try:
            area = validation_area(
                self.user_mask, torch.Generator().manual_seed(self.seed + 1),
                margin=spec.hole_margin, max_fraction=spec.validation_fraction,
                copies=spec.validation_copies,
            )  # fmt: skip
        except MaskSamplingError:
            self.notices.append("no room for a validation area away from the holes: "
                                "returning the last step's output unvalidated")  # fmt: skip
            return None, self.user_mask, "last"
        return area, torch.maximum(self.user_mask, area), spec.select

    def _averaged(self) -> contextlib.AbstractContextManager[None]:
        return self.average.applied() if self.average is not None else contextlib.nullcontext()

    def _fill_holes(self) -> tuple[Tensor, Tensor | None]:
        """The real holes filled, and (with a validation area) the fill of U ∪ V, in one
        batched pass."""
        held_out = self.validation_area is not None
        masks = torch.cat((self.user_mask, self.hidden)) if held_out else self.user_mask
        self.net.eval()
        with self._averaged(), torch.inference_mode(), autocast(self.device, self.dtype):
            images = self.image.expand(len(masks), -1, -1, -1)
            fill = self.net.generate(images, masks).image
        _check_fill(self.net, fill, images, self.host)
        out = fill.float()
        self.net.train()
        # Selected, not blended: pixels outside the holes are the input's own bit for bit,
        # whatever the network wrote there (a NaN times 0 would still be NaN).
        completed = torch.where(masks > 0.5, out, self.image)
        validation_fill = completed[1:].clone() if held_out else None
        return completed[:1].clone(), validation_fill

    def evaluate(self, step: int) -> Evaluation | None:
        """Fill the real holes with the current network, record the metrics, and offer the
        output to the selection (scored on the validation area when there is one).

        A fill that is not finite is never kept: at step 0 the backbone is broken (an error);
        later, training diverged (the run stops, :meth:`result` returns the raw fill) and
        ``None`` is returned.
        """
        completed, validation_fill = self._fill_holes()
        if not _finite(completed, validation_fill):
            if step == 0:
                raise _broken_fill(self.net, self.host)
            self.diverged = (step, "the fill became NaN or infinite")
            return None
        metrics = (
            image_metrics(completed, self.target, self.user_mask) if self.target is not None else {}
        )
        self.latest_fill = completed
        kept = completed[0].detach().cpu() if self.keep_outputs else None
        evaluation = Evaluation(step, metrics, kept)
        self.evaluations.append(evaluation)
        if step == 0:
            self._raw_fill = completed
        score = None
        if self.validation_area is not None:
            assert validation_fill is not None
            score = validation_score(validation_fill, self.image, self.validation_area)
        self.selector.observe(step, completed, score)
        if self.selector.rule != "last" and self.selector.chosen()[0] == step:
            with self._averaged():
                self.chosen_weights = {
                    k: v.detach().clone() for k, v in self.net.generator.state_dict().items()
                }
        return evaluation

    def _predict(self, view: Tensor, hole: Tensor) -> Tensor:
        return self.net.generate(view, hole).image

    def step(self, step: int) -> StepRecord:
        """Train one step (and evaluate when due); a loss that is not finite stops the run."""
        started = time.perf_counter()
        lr = self.spec.optim.lr_at(step - 1)
        _set_lr([self.opt_g, self.opt_d], lr)
        self.checks.step = step
        losses = _train_step(
            self.net, self.image, self.hidden, self.forbidden, self.spec, self.parts,
            self.generator, self.perceptual, self._predict, self.opt_g, self.opt_d,
            self.adversarial, self.dtype, checks=self.checks, references=self.references,
        )  # fmt: skip
        metrics = None
        if not math.isfinite(losses["total"]):
            self.diverged = (step, f"the loss became {losses['total']}")
        else:
            if self.average is not None:
                self.average.update()
            if step % self.spec.eval_every == 0 or step == self.spec.steps:
                evaluation = self.evaluate(step)
                metrics = None if evaluation is None else evaluation.metrics
        record = StepRecord(step, losses, lr, time.perf_counter() - started, metrics)
        if self.diverged is None:
            self.history.append(record)
        return record

    def evaluated_at(self, step: int) -> bool:
        """Whether the real holes were filled at ``step`` (the latest evaluation's step)."""
        return bool(self.evaluations) and self.evaluations[-1].step == step

    def stopped(self, step: int) -> bool:
        """Whether the run ends after ``step``: diverged, or stopped early by the selection."""
        if self.diverged is not None:
            return True
        if self.evaluated_at(step) and self.selector.should_stop() and step < self.spec.steps:
            self.stopped_at = step
            return True
        return False

    def result(self) -> Result:
        """The chosen output and how it was chosen; after divergence, the raw fill."""
        selection = self.selector.report(self.stopped_at)
        output = self.selector.chosen()[1]
        network: Backbone | None
        if self.diverged is not None:
            # The weights are ruined: return what the untouched network made, and say why.
            output, network = self._raw_fill, None
            selection = selection.replace(chosen_step=0, diverged_at=self.diverged[0])
            self.notices.append(
                f"{self.diverged[1]} at step {self.diverged[0]}: training stopped and the raw "
                "fill (step 0) is returned; try a lower learning rate (--lr)"
            )
        else:
            if self.average is not None:
                self.average.commit()  # the returned network is the one that made the fills
            if (
                self.chosen_weights is not None
                and self.selector.chosen()[0] != self.evaluations[-1].step
            ):
                self.net.generator.load_state_dict(self.chosen_weights)
            if isinstance(self.parts.freeze, ParameterAdapter):  # the backbone's own structure
                self.parts.freeze.finalize(self.net)
            network = self.net.eval()
        setup, total = self.seconds["setup"], self.seconds["total"]
        return Result(
            raw=self._raw_fill[0].detach().cpu(),
            finetuned=output[0].detach().cpu(),
            history=self.history,
            evaluations=self.evaluations,
            seconds={"setup": setup, "finetune": total - setup, "total": total},
            strategy=self.spec,
            seed=self.seed,
            network=network,
            selection=selection,
            notices=self.notices,
        )


def _finetune_masks(
    parts: _Parts,
    user_masks: Tensor,
    forbidden: Tensor,
    generator: torch.Generator,
    checks: StepChecks | None,
) -> Tensor:
    """The strategy's finetuning masks for the views, checked when ``checks`` is given."""
    masks = parts.mask_strategy(user_masks, forbidden, generator)
    return masks if checks is None else checks.finetune_masks(masks, user_masks, forbidden)


def _train_step(
    net: Backbone,
    image: Tensor,
    user_mask: Tensor,
    forbidden: Tensor,
    spec: StrategySpec,
    parts: _Parts,
    generator: torch.Generator,
    perceptual: nn.Module | None,
    predict: Callable[[Tensor, Tensor], Tensor],
    opt_g: torch.optim.Optimizer | None,
    opt_d: torch.optim.Optimizer | None,
    adversarial: bool,
    dtype: torch.dtype | None = None,
    *,
    checks: StepChecks | None = None,
    references: ReferenceViews | None = None,
) -> dict[str, float]:
    """One finetuning step on a batch of views; returns the loss terms as floats.

    ``dtype`` is the autocast precision of the forward passes (``None``: fp32); ``checks``
    checks what the filler, the finetuning masks and the augmentations return (none: trusted);
    with ``references``, some views are other shots of the scene (their missing pixels are
    treated as holes).
    """
    batch = spec.batch_size
    images = image.expand(batch, -1, -1, -1)
    user_masks = user_mask.expand(batch, -1, -1, -1)
    forbidden = forbidden.expand(batch, -1, -1, -1)
    cover = None  # what reference views' finetuning masks must also cover (their "holes")
    if references is not None:
        images, user_masks, forbidden, cover = references.mix(
            images, user_masks, forbidden, spec.hole_margin, generator
        )
    filled = parts.filler(images, user_masks, FillContext(generator=generator, predict=predict))
    if checks is not None:
        filled = checks.filled(filled, images)
    if 0 < spec.crop_size < min(image.shape[-2:]):  # cheaper views: train on crops
        filled, user_masks, forbidden = crop_views(
            spec.crop_size, generator, filled, user_masks, forbidden
        )
    call = checks.augment if checks is not None else plain_call
    if spec.augment.mask_follows_geometry:
        finetune_masks = _finetune_masks(parts, user_masks, forbidden, generator, checks)
        if cover is not None:
            finetune_masks = torch.maximum(finetune_masks, cover.to(finetune_masks.dtype))
        views = parts.pipeline.apply_batch(filled, user_masks, finetune_masks, generator, call=call)
        finetune_masks = views.finetune_mask
    else:
        # Combination G: draw F on the transformed frame, away from holes and empty pixels
        # (what F must cover, if anything, is transformed with the views).
        views = parts.pipeline.apply_batch(filled, user_masks, cover, generator, call=call)
        blocked = torch.maximum(dilate(views.user_mask, spec.hole_margin), views.empty)
        finetune_masks = _finetune_masks(parts, views.user_mask, blocked, generator, checks)
        if views.finetune_mask is not None:
            covered = views.finetune_mask.round() * (1 - blocked)
            finetune_masks = torch.maximum(finetune_masks, covered.to(finetune_masks.dtype))
    assert finetune_masks is not None
    if checks is not None:
        checks.settle()  # one synchronisation: nothing broken reaches the network
    target, views_user = views.image, views.user_mask

    device = target.device
    discriminate = net.discriminate if adversarial else None
    with no_weight_grads(net.discriminator if adversarial else None):
        with autocast(device, dtype):
            output = net.generate(target, finetune_masks)
            g_terms = generator_losses(
                output, target, finetune_masks, views_user, spec.losses, perceptual, discriminate
            )
        if opt_g is not None:
            opt_g.zero_grad(set_to_none=True)
            g_terms["total"].backward()
            opt_g.step()
    losses = {f"g_{k}" if k != "total" else "total": float(v.detach()) for k, v in g_terms.items()}
    if opt_d is not None:
        with autocast(device, dtype):
            d_terms = discriminator_loss(
                output, target, finetune_masks, views_user, spec.losses, net.discriminate
            )
        opt_d.zero_grad(set_to_none=True)
        d_terms["total"].backward()
        opt_d.step()
        losses.update({f"d_{k}": float(v.detach()) for k, v in d_terms.items()})
    return losses
