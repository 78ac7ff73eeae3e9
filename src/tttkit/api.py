"""The library entry point: :func:`adapt` resolves names to objects and runs the engine."""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from tttkit.backbone import Backbone
from tttkit.checkpoint import (
    META_BACKBONE,
    META_CONFIG,
    load_backbone,
    load_weights,
    read_metadata,
)
from tttkit.components import MaskSamplingError
from tttkit.config import StrategySpec
from tttkit.engine.execution import resolve_device
from tttkit.engine.loop import (
    Evaluation,
    Result,
    add_seconds,
    as_image,
    as_mask,
    run_ttt,
)
from tttkit.engine.perceptual import network_for
from tttkit.errors import PluginContractError
from tttkit.events import CancelSignal, Progress, ProgressCallback
from tttkit.imageops import as_unit, to_dtype
from tttkit.io import InputError, read_image, read_mask
from tttkit.metrics import image_metrics
from tttkit.options import DEFAULT_STRATEGY, Overrides, RunOptions
from tttkit.plugins import PluginHost, get_host
from tttkit.references import (
    DEFAULT_MASKS,
    DEFAULT_SHARE,
    REFERENCE_MASKS,
    Reference,
    ReferenceViews,
    align_reference,
    crop_to_windows,
    read_reference,
    reference_views,
    refuse_the_photo_itself,
)
from tttkit.registry import Entry, check_parameters
from tttkit.strategy import get_strategy
from tttkit.weights_store import is_name
from tttkit.weights_store import resolve as resolve_weights_name
from tttkit.windows import (
    HoleLabels,
    Window,
    check_window_mode,
    paste,
    plan_windows,
    responsible_holes,
    to_network,
)

#: The backbone used when neither the caller nor the strategy names one.
DEFAULT_BACKBONE = "attention-net-compact"
#: The shortest side of a photo test-time training runs on (the networks downsample it 4–8×,
#: and the finetuning masks need known pixels away from the holes).
MIN_SIDE = 16

#: The names of the strategy overrides :func:`adapt` takes (:class:`tttkit.options.Overrides`).
OVERRIDE_KEYS = Overrides.names()


def resolve_strategy(
    strategy: StrategySpec | str, overrides: dict[str, Any] | Overrides, host: PluginHost
) -> StrategySpec:
    """A strategy by name or spec, with overrides (see :func:`tttkit.strategy.override`)."""
    if not isinstance(overrides, Overrides):
        overrides = Overrides.from_mapping(overrides)
    spec = get_strategy(strategy, host) if isinstance(strategy, str) else strategy
    return overrides.apply(spec, host)


def _named_weights(
    backbone: Backbone | str | None, weights: str | Path | None
) -> tuple[Backbone | str | None, str | Path | None]:
    """``BACKBONE:NAME`` weights (e.g. ``lama:big-lama``) as their file, naming the backbone."""
    if weights is None or not is_name(weights):
        return backbone, weights
    named_backbone, path = resolve_weights_name(str(weights))
    if isinstance(backbone, str) and backbone != named_backbone:
        raise InputError(f"--weights {weights} are weights of {named_backbone!r}, not {backbone!r}")
    return (named_backbone if backbone is None else backbone), path


def resolve_backbone(
    backbone: Backbone | str | None,
    weights: str | Path | None,
    spec: StrategySpec,
    host: PluginHost,
    options: dict[str, Any] | None = None,
) -> tuple[str, Backbone]:
    """The network to finetune, with its weights, and its registered name.

    ``weights`` may name a known checkpoint, ``BACKBONE:NAME`` (:mod:`tttkit.weights_store`),
    which also names the backbone. Order: a :class:`Backbone` object as given (``weights``
    loaded into it if any); a checkpoint
    written by tttkit rebuilds its own backbone; otherwise the named backbone (or the strategy's,
    or :data:`DEFAULT_BACKBONE`) with ``weights``, or the weights its plugin ships. Without
    weights only a strategy that reinitializes (zero-shot) may run.
    """
    backbone, weights = _named_weights(backbone, weights)
    if isinstance(backbone, Backbone):
        if weights is not None:
            with host.naming_failures(f"loading {weights} into {type(backbone).__name__}"):
                load_weights(backbone, weights)
        return type(backbone).__name__, backbone
    if isinstance(backbone, nn.Module):
        # Refused, not wrapped: its value range, hole polarity and working size cannot be read
        # from a module, and a wrong guess runs without error and fills the holes wrongly.
        raise TypeError(
            f"backbone= got a bare {type(backbone).__name__} module: wrap it with "
            "tttkit.ModuleBackbone(net, value_range=..., hole_value=..., working_size=...), "
            "stating the conventions it was trained with, which tttkit cannot guess (the "
            "README's 'TTT for your own network in five lines')"
        )
    if backbone is not None and not isinstance(backbone, str):
        raise TypeError(
            "backbone= must be a tttkit.Backbone, a registered backbone's name or None, got "
            f"{type(backbone).__name__}"
        )
    is_safetensors = weights is not None and Path(weights).suffix == ".safetensors"
    if is_safetensors and META_BACKBONE in read_metadata(weights):  # type: ignore[arg-type]
        return _checkpoint_backbone(Path(weights), backbone, options or {}, host)  # type: ignore[arg-type]
    name = backbone or spec.backbone or DEFAULT_BACKBONE
    entry = host.registry("backbones").entry(name)
    problem = check_parameters(entry.obj, options or {}, f"backbone {name!r}")
    if problem:
        raise InputError(f"--backbone-option: {problem}")
    # Any other exception of the factory is the plugin's: one line naming it (and its
    # distribution), whatever code the factory called.
    with host.naming_failures(f"building backbone {name!r}", plugin=entry.plugin):
        try:
            net: Backbone = entry.obj(**(options or {}))
        except (TypeError, ValueError) as exc:  # a missing option, or a value it refuses
            raise InputError(
                f"backbone {name!r} refused its options {options or {}}: {exc} "
                "(set options with --backbone-option key=value)"
            ) from exc
    if not isinstance(net, Backbone):
        raise PluginContractError(
            f"backbone {name!r} ({host.describe(entry.plugin)}): its factory returned a "
            f"{type(net).__name__}, not a tttkit.Backbone",
            plugin=entry.plugin,
        )
    if weights is None and not options:  # a factory's defaults: the weights it ships, if any
        weights = _shipped_weights(name, entry, spec, host)
    if weights is not None:
        with host.naming_failures(f"loading {weights} into backbone {name!r}"):
            load_weights(net, weights, name)
    elif not spec.reinitialize:
        raise InputError(
            f"no weights for backbone {name!r}: pass --weights FILE (a checkpoint from "
            "`tttkit pretrain` or your own), or run a zero-shot strategy"
        )
    return name, net


def _shipped_weights(
    name: str, entry: Entry[Any], spec: StrategySpec, host: PluginHost
) -> str | None:
    """The weights file a backbone's plugin ships (``register(..., weights=PATH)``), or
    ``None`` when it ships none.

    Raises:
        PluginContractError: the plugin declared a file that is not there — most often a wheel
            built without it, because it was not declared as package data (an editable install
            reads it from the source tree, so the plugin's author never noticed). Not for a
            zero-shot strategy, which needs no weights.
    """
    path = entry.extra.get("weights")
    if path is None or Path(path).is_file():
        return path
    if spec.reinitialize:
        return None
    raise PluginContractError(
        f"backbone {name!r} ({host.describe(entry.plugin)}) declares shipped weights {path} "
        "(register(..., weights=...)), but that file does not exist: the installed package "
        "lacks it — a plugin's weights must be declared as package data (e.g. "
        "[tool.setuptools.package-data] in its pyproject.toml), or its wheel leaves them out; "
        "meanwhile pass --weights FILE",
        plugin=entry.plugin,
    )


def _checkpoint_backbone(
    weights: Path, backbone: str | None, options: dict[str, Any], host: PluginHost
) -> tuple[str, Backbone]:
    """The backbone a tttkit checkpoint rebuilds; ``backbone`` and ``options``, when given,
    must agree with it (a checkpoint never silently changes what was asked for)."""
    metadata = read_metadata(weights)
    stored = metadata[META_BACKBONE]
    config = json.loads(metadata.get(META_CONFIG, "{}"))
    differing = {k: v for k, v in options.items() if config.get(k, v) != v or k not in config}
    if differing:
        detail = ", ".join(
            f"{k}={v!r} (the checkpoint has {config[k]!r})" if k in config else f"{k} (unknown)"
            for k, v in differing.items()
        )
        raise InputError(
            f"--backbone-option {detail} does not match checkpoint {weights} of backbone "
            f"{stored!r}: a checkpoint rebuilds its own configuration; drop the option"
        )
    name, net = load_backbone(weights, name=backbone, host=host)
    return name, net


def adapt(
    image: Tensor | str | Path,
    mask: Tensor | str | Path,
    *,
    backbone: Backbone | str | None = None,
    weights: str | Path | None = None,
    strategy: StrategySpec | str = DEFAULT_STRATEGY,
    ground_truth: Tensor | str | Path | None = None,
    perceptual_weights: str | Path | None = None,
    label: str | None = None,
    windows: str = "crop",
    backbone_options: dict[str, Any] | None = None,
    host: PluginHost | None = None,
    options: RunOptions | None = None,
    seed: int = 0,
    device: str | torch.device = "cpu",
    precision: str = "auto",
    channels_last: bool = False,
    show_progress: bool = False,
    keep_outputs: bool = False,
    region: str | None = None,
    on_progress: ProgressCallback | None = None,
    on_raw: Callable[[Tensor], None] | None = None,
    cancel: CancelSignal | None = None,
    references: Sequence[Tensor | str | Path] | None = None,
    reference_aligner: str = "homography",
    reference_share: float = DEFAULT_SHARE,
    reference_masks: str = DEFAULT_MASKS,
    **overrides: Any,
) -> Result:
    """Test-time train a backbone on one image and fill its holes.

    Args:
        image: ``(3, H, W)`` RGB, float in ``[0, 1]`` or uint8 (which a large photo is best
            kept in: 3 bytes a pixel instead of 12), or an image file. ``Result.raw`` and
            ``Result.finetuned`` have the image's dtype.
        mask: ``(1, H, W)``/``(H, W)`` with 1 at the holes, or a mask file (white = hole).
        backbone: a :class:`Backbone`, a registered name, or ``None`` for the default.
        weights: checkpoint to load (``.safetensors`` from tttkit, or a state dict).
        strategy: a registered strategy name or a :class:`StrategySpec`.
        ground_truth: the complete image (tensor or file), to record metrics.
        perceptual_weights: VGG features file for the perceptual loss (see
            :func:`tttkit.engine.perceptual.load_feature_network` for the search order).
        label: name of the run for observers (default: the image file name).
        windows: ``"crop"``, ``"resize"`` or ``"full"``: how a photo larger than the backbone's
            working size is handled (:mod:`tttkit.windows`).
        backbone_options: keyword options of a named backbone's factory (e.g. a TorchScript
            model's ``path``, a timm encoder's name).
        host: plugin host (default: the process-wide one).
        options: how the run executes, as one value (:class:`tttkit.options.RunOptions`);
            or give its fields as the keywords below (not both).
        seed: seeds every random choice; the same seed gives the same result.
        device: ``"cpu"``, ``"cuda"``, or ``"auto"``.
        precision: ``"auto"``, ``"fp32"`` or ``"bf16"`` (:mod:`tttkit.engine.execution`).
        channels_last: run the networks in channels-last memory layout.
        show_progress: draw the progress bar.
        keep_outputs: keep every evaluation step's completed image (plain runs only).
        region: deprecated name of ``windows``.
        on_progress: called after the raw fill and after every finetuning step with a
            :class:`tttkit.events.Progress` (step, loss, elapsed time, which window, and at
            evaluation steps a preview of the current fill): for a program that shows the
            run its own way (``show_progress`` draws the terminal's bar).
        on_raw: called once with the whole photo's raw fill — what ``Result.raw`` will hold,
            at the image's size and dtype — as soon as it exists, before any finetuning: a
            program can show or save it while the run trains. (A photo done in windows gets
            every window's raw fill first, one forward pass each.)
        cancel: anything with ``is_set()`` (a ``threading.Event``), checked before every
            step and inside it (at every layer): once set, the run stops within a layer's work
            and raises :class:`tttkit.errors.RunCancelled`.
        references: other shots of the same scene (files or ``(3, H, W)`` tensors): each is
            aligned to the photo by ``reference_aligner`` (a registered reference aligner;
            one that does not match is skipped, with a notice) and ``reference_share`` of each
            step's views are drawn from them (:mod:`tttkit.references`).
        reference_aligner: how references are brought into the photo's frame.
        reference_share: the share of views drawn from the references, in ``(0, 1]``.
        reference_masks: how finetuning masks are drawn on reference views: ``"holes"`` (the
            default): random ones as on the photo, and over the photo's holes where a
            reference shows them; or ``"random"`` only
            (:data:`tttkit.references.REFERENCE_MASKS`).
        **overrides: ``steps``, ``lr``, ``batch_size``, ``finetune_mask``, ``filler``,
            ``augment``, ``freeze``, ``select``, ``early_stop``, ``refit``, ``sets`` — as the CLI
            flags of the same names.

    Returns:
        a :class:`tttkit.engine.Result` with the raw and finetuned completions: pixels outside
        the holes are the image's own, and no value is NaN or infinite (a fill that becomes so
        during training stops it, and the raw fill is returned with a notice).

    Raises:
        TypeError: ``backbone`` is a bare ``nn.Module`` (wrap it in
            :class:`tttkit.ModuleBackbone`, stating its conventions) or another type.
        tttkit.PluginContractError: a plugin broke its contract, e.g. the backbone's fill is not
            finite before any training (the message names the backbone, its plugin and
            distribution); :class:`tttkit.PluginRunError` when plugin code raised.
        tttkit.InputError, tttkit.SpecError: an unusable input, option or strategy value.
    """
    host = host or get_host()
    run = _run_options(options, RunOptions(seed, device, precision, channels_last, show_progress,
                                           keep_outputs))  # fmt: skip
    if region is not None:
        warnings.warn("adapt(region=…) is deprecated: use windows=…", DeprecationWarning, 2)
        windows = region
    check_window_mode(windows)
    if reference_masks not in REFERENCE_MASKS:
        raise InputError(
            f"reference masks {reference_masks!r}: expected one of {', '.join(REFERENCE_MASKS)}"
        )
    if label is None:
        label = Path(image).name if isinstance(image, (str, Path)) else "image"
    if isinstance(image, (str, Path)):
        image = read_image(image)
    if isinstance(mask, (str, Path)):
        mask = read_mask(mask, size=tuple(image.shape[-2:]))
    if isinstance(ground_truth, (str, Path)):
        ground_truth = read_image(ground_truth)
    image = as_image(image)
    check_photo(image, label)
    mask = as_mask(mask, (image.shape[-2], image.shape[-1]))
    spec = resolve_strategy(strategy, overrides, host)
    name, net = resolve_backbone(backbone, weights, spec, host, backbone_options)
    notices = []
    if backbone is None and name != (spec.backbone or DEFAULT_BACKBONE):
        notices.append(f"the weights {weights} are for backbone {name!r}: using it")
    run = run.replace(device=resolve_device(run.device))
    spec, perceptual, perceptual_notices = network_for(spec, perceptual_weights, run.device)
    notices += perceptual_notices
    plan, labels = plan_windows(mask, net.conventions.working_size, windows)
    aligned, reference_notices = _aligned_references(
        references, image, mask, reference_aligner, reference_share, host, plan
    )
    notices += reference_notices
    shared = _Shared(spec, net, run, perceptual, host, on_progress, cancel, aligned,
                     reference_share, reference_masks)  # fmt: skip
    try:
        if len(plan) == 1 and plan[0].is_whole(*image.shape[-2:]):  # one plain run
            result = run_ttt(
                net, as_unit(image), mask, spec, run, ground_truth=ground_truth,
                perceptual=perceptual, label=label, host=host,
                on_progress=_raw_relay(on_progress, on_raw, image.dtype), cancel=cancel,
                references=shared.references_in(plan[0], image, mask),
            )  # fmt: skip
            result.raw = to_dtype(result.raw, image.dtype)
            result.finetuned = to_dtype(result.finetuned, image.dtype)
        else:
            if on_raw is not None:
                on_raw(_raw_windows(image, mask, shared, plan, labels, label))
            result = _run_windows(image, mask, ground_truth, shared, plan, labels, label)
    except MaskSamplingError as exc:
        raise InputError(
            f"{label}: {exc}; the holes and the {spec.hole_margin}-pixel margin kept around "
            "them leave too little of the photo to learn from"
        ) from None
    result.notices[:0] = notices
    return result


def check_photo(image: Tensor, label: str = "image") -> None:
    """Refuse a photo test-time training cannot work on: wrong shape or type, too small.

    Args:
        image: ``(3, H, W)``, float in ``[0, 1]`` or uint8.
        label: how messages name it (a file name).
    """
    if image.dim() != 3 or image.shape[0] != 3:
        raise InputError(f"{label}: expected a (3, H, W) RGB image, got shape {tuple(image.shape)}")
    if not (image.dtype == torch.uint8 or image.is_floating_point()):
        raise InputError(f"{label}: expected float or uint8 pixels, got {image.dtype}")
    height, width = image.shape[-2:]
    if min(height, width) < MIN_SIDE:
        raise InputError(
            f"{label} is {width}×{height}: too small for test-time training (both sides must "
            f"be at least {MIN_SIDE} pixels)"
        )
    if image.is_floating_point() and not bool(torch.isfinite(image).all()):
        raise InputError(f"{label} has pixel values that are not finite (NaN or infinity)")


def _run_options(given: RunOptions | None, keywords: RunOptions) -> RunOptions:
    """``options=`` or the keywords, not both (a keyword would silently lose to the other)."""
    if given is None:
        return keywords
    default = RunOptions()
    changed = [k for k in default.names() if getattr(keywords, k) != getattr(default, k)]
    if changed:
        raise TypeError(
            f"adapt() got options= and also {', '.join(changed)}: give one or the other"
        )
    return given


@dataclass(frozen=True)
class _Shared:
    """What every window's run of one photo shares."""

    spec: StrategySpec
    net: Backbone
    run: RunOptions
    perceptual: nn.Module | None
    host: PluginHost
    on_progress: ProgressCallback | None = None
    cancel: CancelSignal | None = None
    references: list[Reference] = field(default_factory=list)
    reference_share: float = DEFAULT_SHARE
    reference_masks: str = DEFAULT_MASKS

    def references_in(self, window: Window, target: Tensor, holes: Tensor) -> ReferenceViews | None:
        """The aligned references warped into ``window`` and matched to the exposure of
        ``target`` (the window as the network sees it, ``holes`` its holes); ``None``: none, or
        none reaches it."""
        if not self.references:
            return None
        views = reference_views(self.references, window, self.reference_share, self.reference_masks)
        return None if views is None else views.exposed_like(as_unit(target), holes)

    def window_progress(self, window: int, windows: int) -> ProgressCallback | None:
        """The progress callback for one window's run: its reports name the window."""
        callback = self.on_progress
        if callback is None:
            return None
        return lambda progress: callback(replace(progress, window=window, windows=windows))


def _aligned_references(
    references: Sequence[Tensor | str | Path] | None,
    image: Tensor,
    mask: Tensor,
    aligner_name: str,
    share: float,
    host: PluginHost,
    windows: list[Window],
) -> tuple[list[Reference], list[str]]:
    """Read, align and crop the references one at a time, before any work: what is kept of
    each is the part that reaches the run's windows (so memory follows the holes, not the
    references' resolution); what was used and skipped, as notices."""
    if not references:
        return [], []
    if not 0.0 < share <= 1.0:
        raise InputError(f"reference share must be in (0, 1], got {share}")
    aligner = host.registry("reference-aligners").get(aligner_name)()
    target, holes = to_dtype(image, torch.uint8), mask.to(torch.uint8)
    kept: list[Reference] = []
    notices: list[str] = []
    for index, given in enumerate(references, start=1):
        if isinstance(given, (str, Path)):
            name, pixels = read_reference(given, target)
        else:
            name, pixels = f"#{index}", to_dtype(as_image(given), torch.uint8)
            refuse_the_photo_itself(name, pixels, target)
        with host.naming_failures(f"aligning references ({aligner_name})"):
            aligned, note = align_reference(target, holes, name, pixels, aligner)
        reference = None if aligned is None else crop_to_windows(aligned, windows)
        if reference is not None:
            kept.append(reference)
            notices.append(f"reference {name}: used ({note})")
        else:
            why = note if aligned is None else "it shows none of the parts around the holes"
            notices.append(f"reference {name}: skipped, {why}")
        del pixels, aligned  # the full-resolution photo goes before the next is read
    if not kept:
        notices.append("no reference matched the photo: finetuned on the photo alone")
    return kept, notices


def _raw_relay(
    on_progress: ProgressCallback | None,
    on_raw: Callable[[Tensor], None] | None,
    dtype: torch.dtype,
) -> ProgressCallback | None:
    """The progress callback of a plain run that also hands its first step-0 fill (the raw
    fill, a refit run's second step 0 being the same) to ``on_raw``."""
    if on_raw is None:
        return on_progress
    sent = False

    def relay(progress: Progress) -> None:
        nonlocal sent
        if progress.step == 0 and progress.preview is not None and not sent:
            sent = True
            on_raw(to_dtype(progress.preview, dtype))
        if on_progress is not None:
            on_progress(progress)

    return relay


def _raw_windows(
    image: Tensor,
    mask: Tensor,
    shared: _Shared,
    windows: list[Window],
    labels: HoleLabels,
    label: str,
) -> Tensor:
    """The photo with every window's raw fill pasted in: each window's run with no steps (one
    forward pass), the same fill the finetuning runs start from."""
    raw = image.clone()
    spec = replace(shared.spec, steps=0, select="last", early_stop=0, refit=False)
    for index, window in enumerate(windows, start=1):
        part = run_ttt(
            shared.net, to_network(image, window), to_network(mask, window, binary=True), spec,
            shared.run, perceptual=None, label=f"{label} window {index}/{len(windows)} (raw)",
            host=shared.host, cancel=shared.cancel,
        )  # fmt: skip
        paste(raw, part.raw, responsible_holes(mask, labels, window), window)
    return raw


def _run_windows(
    image: Tensor,
    mask: Tensor,
    ground_truth: Tensor | None,
    shared: _Shared,
    windows: list[Window],
    labels: HoleLabels,
    label: str,
) -> Result:
    """Run on each window around the holes and paste the fills into copies of the photo."""
    raw, finetuned = image.clone(), image.clone()  # the photo's dtype: uint8 costs 3 B a pixel
    parts: list[tuple[Window, Result]] = []
    for index, window in enumerate(windows, start=1):
        responsible = responsible_holes(mask, labels, window)
        view, holes = to_network(image, window), to_network(mask, window, binary=True)
        part = run_ttt(
            shared.net, view, holes, shared.spec, shared.run,
            ground_truth=None if ground_truth is None else to_network(ground_truth, window),
            perceptual=shared.perceptual, label=f"{label} window {index}/{len(windows)}",
            host=shared.host, on_progress=shared.window_progress(index, len(windows)),
            cancel=shared.cancel, references=shared.references_in(window, view, holes),
        )  # fmt: skip
        paste(raw, part.raw, responsible, window)
        paste(finetuned, part.finetuned, responsible, window)
        parts.append((window, part))
    return _combine(image, mask, raw, finetuned, ground_truth, shared, parts)


def _combine(
    image: Tensor,
    mask: Tensor,
    raw: Tensor,
    finetuned: Tensor,
    ground_truth: Tensor | None,
    shared: _Shared,
    parts: list[tuple[Window, Result]],
) -> Result:
    """One result for a photo completed window by window; metrics at the photo's resolution."""
    last_step = max((p.history[-1].step for _, p in parts if p.history), default=0)
    evaluations = []
    if ground_truth is not None:
        truth, holes = as_unit(ground_truth), mask.float()
        evaluations = [
            Evaluation(0, image_metrics(as_unit(raw), truth, holes)),
            Evaluation(last_step, image_metrics(as_unit(finetuned), truth, holes)),
        ]
    single = parts[0][1] if len(parts) == 1 else None
    notices = [n for _, p in parts for n in p.notices]
    size = shared.net.conventions.working_size
    parts_text = "one part" if len(parts) == 1 else f"{len(parts)} parts"
    notices.append(
        f"the network works on {size}×{size} pixels: the holes were filled in {parts_text} of "
        "the photo around them, each brought to that size and pasted back"
    )
    return Result(
        raw=raw,
        finetuned=finetuned,
        history=single.history if single is not None else [],
        evaluations=evaluations,
        seconds=add_seconds([p.seconds for _, p in parts]),
        strategy=shared.spec,
        seed=shared.run.seed,
        notices=notices,
        selection=single.selection if single is not None else None,
        network=single.network if single is not None else None,
        windows=[
            {
                "window": asdict(window),
                "selection": None if part.selection is None else part.selection.as_dict(),
                "seconds": part.seconds,
            }
            for window, part in parts
        ],
    )
