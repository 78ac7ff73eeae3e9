"""Running one (image, row) pair: a TTT strategy or a reference method on one image.

A pair writes its output PNG and its features first and returns its record; the caller appends
the record last, so a record on disk always means the pair's files are complete.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from tttkit.backbone import Backbone
from tttkit.config import StrategySpec
from tttkit.evaluation.fid import FeatureNetwork, module_fingerprint
from tttkit.evaluation.inputs import Inputs
from tttkit.evaluation.layout import RunLayout, derive_seed
from tttkit.evaluation.lpips_metric import LpipsMetric, perceptual_metrics
from tttkit.evaluation.references import NONE, OPENCV_METHODS, OPENCV_RADIUS, opencv_inpaint
from tttkit.evaluation.results import Record
from tttkit.evaluation.set_metrics import save_features
from tttkit.io import write_image
from tttkit.metrics import image_metrics
from tttkit.options import RunOptions
from tttkit.plugins import PluginHost


@dataclass
class Row:
    """A row of the results tables: a TTT strategy or a reference method.

    Attributes:
        name: strategy or reference name (also a directory name in the run).
        kind: ``"ttt"`` or ``"reference"``.
        spec: the strategy (for ``none``: zero steps); ``None`` for the OpenCV methods.
        backbone: the network it finetunes (``None`` for the OpenCV methods).
        backbone_name: the backbone's registered name.
    """

    name: str
    kind: str
    spec: StrategySpec | None = None
    backbone: Backbone | None = None
    backbone_name: str | None = None

    def describe(self) -> dict[str, Any]:
        """The settings of this row that a resumed run must match."""
        out: dict[str, Any] = {"kind": self.kind}
        if self.spec is not None:
            out["strategy"] = json.loads(json.dumps(self.spec.to_dict()))
        if self.backbone is not None:
            reinit = self.spec is not None and self.spec.reinitialize
            out["backbone"] = {
                "name": self.backbone_name,
                "config": json.loads(json.dumps(self.backbone.config)),
                # weights a zero-shot run throws away must not block resuming it
                "weights_sha256": None if reinit else module_fingerprint(self.backbone),
            }
        if self.name in OPENCV_METHODS:
            out["opencv_radius"] = OPENCV_RADIUS
        return out


@dataclass
class Workspace:
    """What every pair of a run shares.

    Attributes:
        layout: the run's files.
        fid: the set metric's feature network, or ``None``.
        perceptual_weights: VGG file for strategies with a perceptual loss.
        host: plugin host.
        run: seed (pair seeds derive from it), device (resolved), precision… of every pair.
        rank: this process (recorded, for the curious; never affects results).
        windows: ``"full"``: TTT on the whole image at the evaluation size; ``"crop"`` or
            ``"resize"``: as ``tttkit inpaint``, at the backbone's working size
            (:mod:`tttkit.windows`), with the raw and the returned fill as the only steps.
        lpips: the LPIPS metric, or ``None`` (HaarPSI and GMSD are computed either way).
    """

    layout: RunLayout
    fid: FeatureNetwork | None
    perceptual_weights: Path | None
    host: PluginHost
    run: RunOptions
    rank: int = 0
    windows: str = "full"
    lpips: LpipsMetric | None = None

    @property
    def device(self) -> torch.device:
        """Where networks run."""
        return torch.device(self.run.device)


def _ttt_completions(
    space: Workspace, row: Row, inputs: Inputs, seed: int
) -> tuple[list[int], list[Tensor], Tensor, dict[str, Any] | None]:
    """Evaluation steps, the completion at each, the returned output and how it was chosen."""
    from tttkit.api import adapt

    assert row.spec is not None and row.backbone is not None
    result = adapt(
        inputs.image, inputs.mask, backbone=row.backbone, strategy=row.spec,
        perceptual_weights=space.perceptual_weights, label=inputs.key,
        windows=space.windows, host=space.host, options=space.run.replace(seed=seed),
    )  # fmt: skip
    completions = [e.completed for e in result.evaluations if e.completed is not None]
    steps = [e.step for e in result.evaluations]
    if not completions:  # completed window by window: the raw and the returned fill only
        steps, completions = [0, result.output_step], [result.raw.cpu(), result.finetuned.cpu()]
    selection = result.selection
    if selection is None or (selection.rule == "last" and selection.stopped_early_at is None):
        return steps, completions, result.finetuned.cpu(), None  # the thesis setting: no record
    return steps, completions, result.finetuned.cpu(), selection.as_dict()


def run_pair(space: Workspace, row: Row, inputs: Inputs) -> Record:
    """Run one row on one image, write its output and features; return its record.

    The record's metrics are computed here, on the completion at each evaluation step, with
    :func:`tttkit.metrics.image_metrics` — the engine's own metric function on the same images —
    and the perceptual ones (:func:`tttkit.evaluation.lpips_metric.perceptual_metrics`).
    """
    started = time.perf_counter()
    layout, key = space.layout, inputs.key
    seed = derive_seed(space.run.seed, key, row.name)
    selection = None
    if row.name in OPENCV_METHODS:
        steps, completions = [0], [opencv_inpaint(inputs.image, inputs.mask, row.name)]
        output = completions[0]
    else:
        steps, completions, output, selection = _ttt_completions(space, row, inputs, seed)
    perceptual = perceptual_metrics(torch.stack(completions), inputs.image, space.lpips)
    evaluations = [
        {"step": step, **image_metrics(completed, inputs.image, inputs.mask), **scores}
        for step, completed, scores in zip(steps, completions, perceptual, strict=True)
    ]
    write_image(layout.output(row.name, key), output)
    features = None
    if space.fid is not None:
        features = layout.features(row.name, key)
        save_features(features, space.fid.features(torch.stack(completions)))
    if row.name == NONE:  # once per image: what the report's grids and FID compare against
        write_image(layout.original(key), inputs.image)
        write_image(layout.mask(key), inputs.mask)
        if space.fid is not None:
            save_features(layout.real_features(key), space.fid.features(inputs.image[None]))
    return {
        "image": key, "strategy": row.name, "kind": row.kind, "seed": seed,
        "image_sha256": inputs.image_sha256, "mask_sha256": inputs.mask_sha256,
        "hole_fraction": float(inputs.mask.mean()), "evaluations": evaluations,
        "features": layout.relative(features) if features is not None else None,
        "output": layout.relative(layout.output(row.name, key)), "selection": selection,
        "seconds": round(time.perf_counter() - started, 3), "rank": space.rank,
    }  # fmt: skip
