"""The library entry point: :func:`adapt` resolves names to objects and runs the engine."""

from __future__ import annotations

import json
from dataclasses import asdict
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
from tttkit.engine import Evaluation, Result, add_seconds, as_image, as_mask, finetune
from tttkit.execution import resolve_device
from tttkit.imageops import as_unit, to_dtype
from tttkit.io import InputError, read_image, read_mask
from tttkit.metrics import image_metrics
from tttkit.options import Overrides
from tttkit.plugins import PluginHost, get_host
from tttkit.regions import HoleLabels, Window, paste, plan_windows, responsible_holes, to_network
from tttkit.registry import check_parameters
from tttkit.strategy import get_strategy

#: The backbone used when neither the caller nor the strategy names one.
DEFAULT_BACKBONE = "attention-net-compact"
#: The strategy used when the caller names none: the thesis's optimal settings sized for a CPU
#: (``tttkit strategies show default``); ``optimal`` is the thesis's own recipe.
DEFAULT_STRATEGY = "default"
#: The shortest side of a photo test-time training runs on (the networks downsample it 4–8×,
#: and the finetuning masks need known pixels away from the holes).
MIN_SIDE = 16

#: The names of the strategy overrides :func:`adapt` takes (:class:`tttkit.options.Overrides`).
OVERRIDE_KEYS = Overrides.keys()


def resolve_strategy(
    strategy: StrategySpec | str, overrides: dict[str, Any] | Overrides, host: PluginHost
) -> StrategySpec:
    """A strategy by name or spec, with overrides (see :func:`tttkit.strategy.override`)."""
    if not isinstance(overrides, Overrides):
        overrides = Overrides.from_mapping(overrides)
    spec = get_strategy(strategy, host) if isinstance(strategy, str) else strategy
    return overrides.apply(spec, host)


def resolve_backbone(
    backbone: Backbone | str | None,
    weights: str | Path | None,
    spec: StrategySpec,
    host: PluginHost,
    options: dict[str, Any] | None = None,
) -> tuple[str, Backbone]:
    """The network to finetune, with its weights, and its registered name.

    Order: a :class:`Backbone` object as given (``weights`` loaded into it if any); a checkpoint
    written by tttkit rebuilds its own backbone; otherwise the named backbone (or the strategy's,
    or :data:`DEFAULT_BACKBONE`) with ``weights``, or the weights its plugin ships. Without
    weights only a strategy that reinitializes (zero-shot) may run.
    """
    if isinstance(backbone, Backbone):
        if weights is not None:
            load_weights(backbone, weights)
        return type(backbone).__name__, backbone
    is_safetensors = weights is not None and Path(weights).suffix == ".safetensors"
    if is_safetensors and META_BACKBONE in read_metadata(weights):  # type: ignore[arg-type]
        return _checkpoint_backbone(Path(weights), backbone, options or {})  # type: ignore[arg-type]
    name = backbone or spec.backbone or DEFAULT_BACKBONE
    entry = host.registry("backbones").entry(name)
    problem = check_parameters(entry.obj, options or {}, f"backbone {name!r}")
    if problem:
        raise InputError(f"--backbone-option: {problem}")
    try:
        net: Backbone = entry.obj(**(options or {}))
    except (TypeError, ValueError) as exc:  # a missing option, or a value the plugin refuses
        raise InputError(
            f"backbone {name!r} refused its options {options or {}}: {exc} "
            "(set options with --backbone-option key=value)"
        ) from exc
    bundled = entry.extra.get("weights")
    if weights is None and not options and bundled is not None and Path(bundled).is_file():
        weights = bundled
    if weights is not None:
        load_weights(net, weights, name)
    elif not spec.reinitialize:
        raise InputError(
            f"no weights for backbone {name!r}: pass --weights FILE (a checkpoint from "
            "`tttkit pretrain` or your own), or run a zero-shot strategy"
        )
    return name, net


def _checkpoint_backbone(
    weights: Path, backbone: str | None, options: dict[str, Any]
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
    name, net = load_backbone(weights, name=backbone)
    return name, net


def _perceptual_network(
    spec: StrategySpec, weights: str | Path | None, device: torch.device
) -> nn.Module | None:
    if spec.losses.perceptual <= 0:
        return None
    from tttkit.perceptual import load_feature_network

    return load_feature_network(weights, device=device)


def adapt(
    image: Tensor | str | Path,
    mask: Tensor | str | Path,
    *,
    backbone: Backbone | str | None = None,
    weights: str | Path | None = None,
    strategy: StrategySpec | str = DEFAULT_STRATEGY,
    ground_truth: Tensor | str | Path | None = None,
    seed: int = 0,
    device: str | torch.device = "cpu",
    perceptual_weights: str | Path | None = None,
    show_progress: bool = False,
    label: str | None = None,
    region: str = "crop",
    backbone_options: dict[str, Any] | None = None,
    keep_outputs: bool = False,
    host: PluginHost | None = None,
    precision: str = "auto",
    channels_last: bool = False,
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
        seed: seeds every random choice; the same seed gives the same result.
        device: ``"cpu"``, ``"cuda"``, or ``"auto"``.
        perceptual_weights: VGG features file for the perceptual loss (see
            :func:`tttkit.perceptual.load_feature_network` for the search order).
        show_progress: draw the progress bar.
        label: name of the run for observers (default: the image file name).
        region: ``"crop"``, ``"resize"`` or ``"full"``: how a photo larger than the backbone's
            working size is handled (:mod:`tttkit.regions`).
        backbone_options: keyword options of a named backbone's factory (e.g. a TorchScript
            model's ``path``, a timm encoder's name).
        keep_outputs: keep every evaluation step's completed image (plain runs only).
        host: plugin host (default: the process-wide one).
        precision: ``"auto"``, ``"fp32"`` or ``"bf16"`` (:mod:`tttkit.execution`).
        channels_last: run the networks in channels-last memory layout.
        **overrides: ``steps``, ``lr``, ``batch_size``, ``finetune_mask``, ``filler``,
            ``augment``, ``freeze``, ``select``, ``early_stop``, ``refit``, ``sets`` — as the CLI
            flags of the same names.

    Returns:
        a :class:`tttkit.engine.Result` with the raw and finetuned completions.
    """
    host = host or get_host()
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
    resolved = resolve_device(device)
    perceptual = _perceptual_network(spec, perceptual_weights, resolved)
    windows, labels = plan_windows(mask, net.conventions.working_size, region)
    options: dict[str, Any] = dict(
        seed=seed, device=resolved, perceptual=perceptual, show_progress=show_progress,
        host=host, precision=precision, channels_last=channels_last,
    )  # fmt: skip
    try:
        if len(windows) == 1 and windows[0].is_whole(*image.shape[-2:]):  # one plain run
            result = finetune(
                net, as_unit(image), mask, spec, ground_truth=ground_truth, label=label,
                keep_outputs=keep_outputs, **options,
            )  # fmt: skip
            result.raw = to_dtype(result.raw, image.dtype)
            result.finetuned = to_dtype(result.finetuned, image.dtype)
        else:
            result = _run_windows(image, mask, ground_truth, spec, net, windows, labels, label,
                                  options)  # fmt: skip
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


def _run_windows(
    image: Tensor,
    mask: Tensor,
    ground_truth: Tensor | None,
    spec: StrategySpec,
    net: Backbone,
    windows: list[Window],
    labels: HoleLabels,
    label: str,
    options: dict[str, Any],
) -> Result:
    """Run on each window around the holes and paste the fills into copies of the photo."""
    raw, finetuned = image.clone(), image.clone()  # the photo's dtype: uint8 costs 3 B a pixel
    parts: list[tuple[Window, Result]] = []
    for index, window in enumerate(windows, start=1):
        responsible = responsible_holes(mask, labels, window)
        part = finetune(
            net, to_network(image, window), to_network(mask, window, binary=True), spec,
            ground_truth=None if ground_truth is None else to_network(ground_truth, window),
            label=f"{label} region {index}/{len(windows)}", **options,
        )  # fmt: skip
        paste(raw, part.raw, responsible, window)
        paste(finetuned, part.finetuned, responsible, window)
        parts.append((window, part))
    return _combine(image, mask, raw, finetuned, ground_truth, spec, options["seed"], parts)


def _combine(
    image: Tensor,
    mask: Tensor,
    raw: Tensor,
    finetuned: Tensor,
    ground_truth: Tensor | None,
    spec: StrategySpec,
    seed: int,
    parts: list[tuple[Window, Result]],
) -> Result:
    """One result for a photo completed region by region; metrics at the photo's resolution."""
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
    notices.append(
        f"completed {len(parts)} region(s) at the backbone's working size and pasted the fills "
        "into the holes; metrics are at the photo's resolution"
    )
    return Result(
        raw=raw,
        finetuned=finetuned,
        history=single.history if single is not None else [],
        evaluations=evaluations,
        seconds=add_seconds([p.seconds for _, p in parts]),
        strategy=spec,
        seed=seed,
        notices=notices,
        selection=single.selection if single is not None else None,
        network=single.network if single is not None else None,
        regions=[
            {"window": asdict(window), "selection": part.selection, "seconds": part.seconds}
            for window, part in parts
        ],
    )
