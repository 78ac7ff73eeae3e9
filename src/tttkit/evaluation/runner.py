"""``tttkit eval``: every strategy and reference on every image, resumable and shardable.

Work is a list of (image, row) *pairs*, a row being a TTT strategy or a reference
(:mod:`tttkit.evaluation.references`). Each pair is independent: its seed is derived from the
run seed, the image key and the row name only (:func:`~tttkit.evaluation.layout.derive_seed`),
so the result of a pair is the same whichever process runs it, in whatever order, and a run
split over N processes gives the records of a single-process run.

Images are brought to ``size``×``size`` as :mod:`tttkit.evaluation.inputs` describes. The
default size is the backbone's working size (the resolution it was trained at), and the whole
image is finetuned at that size in one run.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tttkit.api import resolve_backbone, resolve_strategy
from tttkit.config import LossSpec, SpecError, StrategySpec
from tttkit.engine.execution import resolve_precision
from tttkit.evaluation import distributed
from tttkit.evaluation.fid import resolve_feature_network
from tttkit.evaluation.inputs import (
    PREPROCESS,
    Inputs,
    Item,
    Items,
    check_square_mask,
    find_items,
    load_inputs,
)
from tttkit.evaluation.layout import (
    RunLayout,
    check_outside,
    check_row_name,
    sha256_file,
)
from tttkit.evaluation.lpips_metric import resolve_lpips
from tttkit.evaluation.pairs import Row, Workspace, run_pair
from tttkit.evaluation.references import NONE, OPENCV_METHODS
from tttkit.evaluation.results import Record, append_record, load_records, merge, pair, repair
from tttkit.evaluation.set_metrics import compute_set_metrics, write_set_metrics
from tttkit.io import InputError, atomic_write_bytes
from tttkit.options import Overrides, RunOptions
from tttkit.plugins import PluginHost, get_host

#: Version of ``run.json`` and of the records.
FORMAT = 1


@dataclass(frozen=True)
class EvalConfig:
    """What ``tttkit eval`` was asked to do (see the command's help for each option)."""

    images: Path
    masks: Path | None  # None (or the images folder): LaMa's layout, masks beside their photos
    out: Path
    strategies: tuple[str, ...]
    overrides: Overrides = field(default_factory=Overrides)
    eval_every: int = 5
    size: int | None = None  # None: the backbone's working size
    windows: str = "full"  # "crop"/"resize": as `tttkit inpaint`, at the working size
    run: RunOptions = field(default_factory=lambda: RunOptions(device="auto"))
    backbone: str | None = None
    weights: Path | None = None
    backbone_options: tuple[tuple[str, Any], ...] = ()
    perceptual_weights: Path | None = None
    fid: str = "auto"
    inception_weights: Path | None = None
    lpips: str = "auto"
    lpips_weights: Path | None = None
    resume: bool = False


@dataclass
class Plan:
    """Everything resolved before the first pair runs."""

    config: EvalConfig
    size: int
    keys: list[str]
    rows: list[Row]
    settings: dict[str, Any]
    space: Workspace
    context: distributed.Context
    items: dict[str, Item] = field(default_factory=dict)  # by key: the photo and mask files
    without_masks: list[str] = field(default_factory=list)  # LaMa's layout: photos not evaluated
    notices: list[str] = field(default_factory=list)  # said once before the run

    @property
    def layout(self) -> RunLayout:
        """The run's files."""
        return self.space.layout


@dataclass
class Outcome:
    """What a finished :func:`run_evaluation` reports.

    Attributes:
        records: every record of the run (rank 0), or this process's new ones (other ranks).
        set_metrics: FID per strategy and step (rank 0, when a feature network is in use).
        done_before: pairs already finished when this run started (``--resume``).
        done_now: pairs this process finished.
        rows: row names in table order.
    """

    records: list[Record]
    set_metrics: dict[str, Any] | None
    done_before: int
    done_now: int
    rows: list[str] = field(default_factory=list)


# -- planning -----------------------------------------------------------------------------------


def _rows(config: EvalConfig, host: PluginHost) -> list[Row]:
    """The reference rows, then the strategies as given (duplicates dropped)."""
    sets = (*config.overrides.sets, f"eval_every={config.eval_every}")
    overrides = dataclasses.replace(config.overrides, sets=sets)  # every strategy alike
    # The raw backbone: a stock spec with zero steps runs only the step-0 fill (no filler,
    # no perceptual network), through the same engine code as every strategy's step 0.
    raw = StrategySpec(name=NONE, steps=0, losses=LossSpec(perceptual=0.0, adversarial=0.0))
    rows = [Row(NONE, "reference", raw), *(Row(name, "reference") for name in OPENCV_METHODS)]
    for name in dict.fromkeys(config.strategies):
        if name in (NONE, *OPENCV_METHODS):
            raise InputError(f"--strategy {name}: a reference row, always part of every run")
        check_row_name(name)
        rows.append(Row(name, "ttt", resolve_strategy(name, overrides, host)))
    return rows


def _attach_backbones(rows: list[Row], config: EvalConfig, host: PluginHost) -> None:
    """Load each distinct backbone once; the raw row uses the first strategy's backbone."""
    loaded: dict[tuple[str | None, bool], tuple[str, Any]] = {}
    ttt = [r for r in rows if r.kind == "ttt"]
    for row in [*ttt, rows[0]]:
        assert row.spec is not None
        wanted = ttt[0].spec.backbone if row.name == NONE and ttt[0].spec else row.spec.backbone
        key = (wanted, row.spec.reinitialize)
        if key not in loaded:
            spec = dataclasses.replace(row.spec, backbone=wanted)
            loaded[key] = resolve_backbone(
                config.backbone, config.weights, spec, host, dict(config.backbone_options)
            )
        row.backbone_name, row.backbone = loaded[key]


def _check_perceptual(rows: Sequence[Row], config: EvalConfig) -> list[str]:
    """Fail now, not at the first TTT pair, when a strategy's perceptual loss has no VGG; a
    strategy whose term is optional gets the spec that will really run (recorded in the run's
    settings), and the notice saying so is returned."""
    from tttkit.engine.perceptual import network_for

    notices: list[str] = []
    for row in rows:
        if row.spec is not None and row.spec.losses.perceptual > 0:
            row.spec, _, said = network_for(row.spec, config.perceptual_weights)
            notices += [n for n in said if n not in notices]
    return notices


def _items(config: EvalConfig) -> Items:
    """The items: each photo with its mask (see :mod:`tttkit.evaluation.inputs`)."""
    check_outside(config.out, config.images, "--out")
    return find_items(config.images, config.masks)


def plan_evaluation(
    config: EvalConfig, context: distributed.Context, host: PluginHost | None = None
) -> Plan:
    """Resolve images, masks, strategies, networks and the run's settings."""
    host = host or get_host()
    if config.size is not None and config.size < 16:
        raise InputError(f"--size {config.size}: at least 16 pixels")
    if not config.strategies:
        raise InputError("name at least one --strategy to evaluate")
    dtype = resolve_precision(config.run.precision, context.device)
    found = _items(config)
    keys = list(found.items)
    rows = _rows(config, host)
    notices = _check_perceptual(rows, config)
    _attach_backbones(rows, config, host)
    assert rows[0].backbone is not None
    size = config.size or rows[0].backbone.conventions.working_size
    fid = resolve_feature_network(
        config.fid, inception_weights=config.inception_weights,
        vgg_weights=config.perceptual_weights, device=context.device,
    )  # fmt: skip
    lpips = resolve_lpips(
        config.lpips, lpips_weights=config.lpips_weights,
        perceptual_weights=config.perceptual_weights, device=context.device,
    )  # fmt: skip
    settings = {
        "format": FORMAT,
        "size": size,
        "seed": config.run.seed,
        "precision": "fp32" if dtype is None else str(dtype).removeprefix("torch."),
        "preprocess": PREPROCESS,
        **({"layout": "lama"} if found.lama else {}),
        **({"windows": config.windows} if config.windows != "full" else {}),
        "order": [r.name for r in rows],
        "rows": {r.name: r.describe() for r in rows},
        "fid": fid.describe() if fid is not None else None,
        "lpips": lpips.describe() if lpips is not None else None,
        "info": {  # where and how it ran: not settings, never compared
            "images": str(config.images), "masks": str(config.masks or config.images),
            "device": str(context.device), "processes": context.world,
        },
    }  # fmt: skip
    # Outputs are kept: set metrics (FID) and the curves need every evaluation step's image.
    run = config.run.replace(device=context.device, keep_outputs=True, show_progress=False)
    space = Workspace(
        RunLayout(config.out),
        fid,
        config.perceptual_weights,
        host,
        run,
        context.rank,
        windows=config.windows,
        lpips=lpips,
    )
    return Plan(
        config,
        size,
        keys,
        rows,
        settings,
        space,
        context,
        found.items,
        found.without_masks,
        notices,
    )


# -- settings and resuming ----------------------------------------------------------------------


def _flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(data, dict) and data:
        out: dict[str, Any] = {}
        for key, value in data.items():
            out.update(_flatten(value, f"{prefix}{key}."))
        return out
    return {prefix.rstrip("."): data}


def settings_differences(stored: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """Dotted paths whose values differ, ``info`` excluded (where the run ran is not a setting)."""
    ours = _flatten({k: v for k, v in stored.items() if k != "info"})
    theirs = _flatten({k: v for k, v in current.items() if k != "info"})
    changed = []
    for path in dict.fromkeys([*ours, *theirs]):
        if ours.get(path) != theirs.get(path):
            changed.append(f"{path}: {ours.get(path)!r} in the run, {theirs.get(path)!r} now")
    return changed


def _spec_fields_completed(settings: dict[str, Any]) -> dict[str, Any]:
    """``settings`` with each stored strategy re-read, so that fields added to
    :class:`StrategySpec` since the run was written count at their defaults, not as changes."""
    for row in settings.get("rows", {}).values():
        if isinstance(row, dict) and isinstance(row.get("strategy"), dict):
            try:
                spec = StrategySpec.from_dict(row["strategy"])
            except SpecError:
                continue  # a field since removed or renamed: reported as a difference
            row["strategy"] = json.loads(json.dumps(spec.to_dict()))
    return settings


def _open_run(plan: Plan) -> None:
    """Rank 0: create ``run.json``, or check that a resumed run has the same settings."""
    layout, config = plan.layout, plan.config
    if layout.settings.is_file():
        if not config.resume:
            raise InputError(
                f"{layout.root} already holds an evaluation run: pass --resume to continue it, "
                "or choose another --out"
            )
        stored = _spec_fields_completed(layout.read_settings())
        changed = settings_differences(stored, plan.settings)
        if changed:
            listed = "; ".join(changed[:4])
            more = f"; and {len(changed) - 4} more" if len(changed) > 4 else ""
            raise InputError(f"--resume {layout.root}: the run's settings differ — {listed}{more}")
        _check_inputs_unchanged(plan, load_records(layout))
        return
    if layout.root.exists() and any(layout.root.iterdir()):
        raise InputError(f"--out {layout.root} is not empty and holds no evaluation run")
    layout.root.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(layout.settings, (json.dumps(plan.settings, indent=2) + "\n").encode())


def _check_inputs_unchanged(plan: Plan, records: Sequence[Record]) -> None:
    """A finished pair must have been computed from the same image and mask files."""
    checked: set[str] = set()
    current = set(plan.keys)
    for record in records:
        key = record["image"]
        if key not in current or key in checked:
            continue
        checked.add(key)
        files = {
            "image": (record["image_sha256"], plan.items[key].image),
            "mask": (record["mask_sha256"], plan.items[key].mask),
        }
        for what, (old, path) in files.items():
            if sha256_file(path) != old:
                raise InputError(
                    f"--resume: the {what} of {key} changed since it was evaluated; "
                    "evaluate into a new --out"
                )


def shard_pairs(
    pending: Sequence[tuple[str, str]], expensive: set[str], rank: int, world: int
) -> list[tuple[str, str]]:
    """This process's share of the pending (image, row) pairs.

    Pairs of ``expensive`` rows (TTT) and the cheap reference pairs are dealt out round-robin
    separately, so every process gets its part of the real work; image-major order is kept
    within a share so consecutive pairs reuse the loaded image.
    """
    costly = [p for p in pending if p[1] in expensive]
    cheap = [p for p in pending if p[1] not in expensive]
    mine = set(costly[rank::world]) | set(cheap[rank::world])
    return [p for p in pending if p in mine]


# -- the run ------------------------------------------------------------------------------------


@dataclass
class Callbacks:
    """Progress hooks for the command line (all optional)."""

    start: Callable[[int, int], None] | None = None  # (pairs for this process, done before)
    pair_start: Callable[[str, str], None] | None = None  # (image, strategy)
    pair_done: Callable[[Record], None] | None = None


def run_evaluation(plan: Plan, callbacks: Callbacks | None = None) -> Outcome:
    """Run this process's share of the pending pairs; rank 0 then merges and scores sets."""
    callbacks = callbacks or Callbacks()
    context, layout = plan.context, plan.layout
    distributed.on_rank_zero(context, lambda: _open_run(plan))
    repair(layout.shard(context.rank))  # cut an interrupted write before anyone reads
    distributed.barrier(context)
    done = {pair(r) for r in load_records(layout)}
    order = [r.name for r in plan.rows]
    pending = [(k, r) for k in plan.keys for r in order if (k, r) not in done]
    ttt = {r.name for r in plan.rows if r.kind == "ttt"}
    mine = shard_pairs(pending, ttt, context.rank, context.world)
    for key in dict.fromkeys(k for k, _ in mine):  # every mask checked before hours of work
        check_square_mask(plan.items[key].mask, plan.size)
    if callbacks.start:
        callbacks.start(len(mine), len(done))
    rows = {r.name: r for r in plan.rows}
    new: list[Record] = []
    inputs: Inputs | None = None
    for key, name in mine:
        if inputs is None or inputs.key != key:
            inputs = load_inputs(plan.items[key], plan.size)
        if callbacks.pair_start:
            callbacks.pair_start(key, name)
        record = run_pair(plan.space, rows[name], inputs)
        append_record(layout.shard(context.rank), record)  # last: the pair's files are complete
        new.append(record)
        if callbacks.pair_done:
            callbacks.pair_done(record)
    distributed.barrier(context)
    if context.rank != 0:
        return Outcome(new, None, len(done), len(new), order)
    records = merge(layout, order)
    set_metrics = None
    if plan.space.fid is not None:
        set_metrics = compute_set_metrics(layout, records, plan.space.fid.metric)
        write_set_metrics(layout, set_metrics)
    return Outcome(records, set_metrics, len(done), len(new), order)
