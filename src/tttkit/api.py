"""The library entry point: :func:`adapt` resolves names to objects and runs the engine."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from tttkit.backbone import Backbone
from tttkit.checkpoint import load_backbone, load_weights, read_metadata
from tttkit.config import StrategySpec
from tttkit.engine import Evaluation, Result, add_seconds, finetune
from tttkit.execution import resolve_device
from tttkit.io import InputError, read_image, read_mask
from tttkit.metrics import image_metrics
from tttkit.plugins import PluginHost, get_host
from tttkit.regions import Window, paste, plan_windows, responsible_holes, to_network
from tttkit.strategy import get_strategy, override

#: The backbone used when neither the caller nor the strategy names one.
DEFAULT_BACKBONE = "attention-net-compact"
#: The strategy used when the caller names none: the thesis's optimal settings sized for a CPU
#: (``tttkit strategies show default``); ``optimal`` is the thesis's own recipe.
DEFAULT_STRATEGY = "default"

OVERRIDE_KEYS = (
    "steps", "lr", "batch_size", "finetune_mask", "filler", "augment", "freeze", "select",
    "early_stop", "refit", "sets",
)  # fmt: skip


def resolve_strategy(
    strategy: StrategySpec | str, overrides: dict[str, Any], host: PluginHost
) -> StrategySpec:
    """A strategy by name or spec, with overrides (see :func:`tttkit.strategy.override`)."""
    unknown = sorted(set(overrides) - set(OVERRIDE_KEYS))
    if unknown:
        raise TypeError(f"unknown override(s) {unknown}; valid: {', '.join(OVERRIDE_KEYS)}")
    spec = get_strategy(strategy, host) if isinstance(strategy, str) else strategy
    return override(spec, host=host, **overrides)


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
    if is_safetensors and "tttkit.backbone" in read_metadata(weights):  # type: ignore[arg-type]
        return load_backbone(weights, name=backbone)  # type: ignore[arg-type]
    name = backbone or spec.backbone or DEFAULT_BACKBONE
    entry = host.registry("backbones").entry(name)
    try:
        net: Backbone = entry.obj(**(options or {}))
    except TypeError as exc:  # a missing or unknown option
        raise InputError(
            f"backbone {name!r}: {exc} (set options with --backbone-option key=value)"
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
        image: ``(3, H, W)`` RGB in ``[0, 1]``, or an image file.
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
    spec = resolve_strategy(strategy, overrides, host)
    _, net = resolve_backbone(backbone, weights, spec, host, backbone_options)
    resolved = resolve_device(device)
    perceptual = _perceptual_network(spec, perceptual_weights, resolved)
    windows, labels = plan_windows(mask, net.conventions.working_size, region)
    if len(windows) == 1 and windows[0].is_whole(*image.shape[-2:]):  # one plain run
        return finetune(
            net, image, mask, spec, ground_truth=ground_truth, seed=seed, device=resolved,
            perceptual=perceptual, show_progress=show_progress, label=label,
            keep_outputs=keep_outputs, host=host, precision=precision,
            channels_last=channels_last,
        )  # fmt: skip
    mask = mask.reshape(1, *image.shape[-2:]).float()
    raw, finetuned = image.clone(), image.clone()
    parts: list[tuple[Window, Result]] = []
    for index, window in enumerate(windows, start=1):
        responsible = responsible_holes(mask, labels, window)
        part = finetune(
            net, to_network(image, window), to_network(mask, window, binary=True), spec,
            ground_truth=None if ground_truth is None else to_network(ground_truth, window),
            seed=seed, device=resolved, perceptual=perceptual, show_progress=show_progress,
            label=f"{label} region {index}/{len(windows)}", host=host, precision=precision,
            channels_last=channels_last,
        )  # fmt: skip
        paste(raw, part.raw, responsible, window)
        paste(finetuned, part.finetuned, responsible, window)
        parts.append((window, part))
    return _combine(image, mask, raw, finetuned, ground_truth, spec, seed, parts)


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
        evaluations = [
            Evaluation(0, image_metrics(raw, ground_truth, mask)),
            Evaluation(last_step, image_metrics(finetuned, ground_truth, mask)),
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
        regions=[
            {"window": asdict(window), "selection": part.selection, "seconds": part.seconds}
            for window, part in parts
        ],
    )
