"""`tttkit masks`, `tttkit eval`, `tttkit report`: the evaluation of thesis chapter 4."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from tttkit.cli._common import (
    BackboneOptionsOption,
    JsonOption,
    SeedOption,
    parse_options,
    print_json,
    stderr,
    stdout,
    user_errors,
    with_overrides,
    with_run_options,
)
from tttkit.evaluation.settings import (
    DEFAULT_COVERAGE,
    DEFAULT_GRID_COUNT,
    ENV_INCEPTION,
    ENV_LPIPS,
    FID_MODES,
    LPIPS_MODES,
)
from tttkit.options import Overrides, RunOptions

if TYPE_CHECKING:
    from tttkit.evaluation import distributed
    from tttkit.evaluation.aggregate import Curve
    from tttkit.evaluation.runner import EvalConfig

# The evaluation code (and torch) is imported where it is used, so that `tttkit --help` answers
# without loading it.

ImagesArgument = Annotated[
    Path, typer.Argument(help="Folder of photos (searched recursively).", show_default=False)
]
SizeOption = Annotated[
    int, typer.Option("--size", min=16, help="Working size: images become SIZE×SIZE.")
]


@user_errors
def masks_command(
    images: ImagesArgument,
    out: Annotated[Path, typer.Option("--out", help="Folder for the masks (PNG, white = hole).")],
    seed: SeedOption = 0,
    coverage: Annotated[
        float | None,
        typer.Option(
            "--coverage",
            min=0.01,
            max=0.85,
            help=f"Mean hidden fraction of --kind thesis masks (default {DEFAULT_COVERAGE}).",
            show_default=False,
        ),
    ] = None,
    size: SizeOption = 256,
    kind: Annotated[
        str,
        typer.Option(
            "--kind",
            help="Mask kind: thesis (§4.1), lama-thin, lama-medium, lama-thick (LaMa's, with its "
            "256 or 512 parameters, whichever is nearer SIZE); see `tttkit list eval-masks`.",
        ),
    ] = "thesis",
    as_json: JsonOption = False,
) -> None:
    """Simulate one user mask per image, the same for every run: the thesis's free-form masks
    (§4.1) or LaMa's thin, medium or thick masks (--kind)."""
    from tttkit.engine.pretrain import list_images
    from tttkit.evaluation.masks import make_masks, mask_kind
    from tttkit.io import check_output_folder

    mask_kind(kind, {} if coverage is None else {"coverage": coverage})  # a wrong name fails first
    check_output_folder(out, "--out")
    made = make_masks(list_images(images), images, out, seed, size, coverage, kind=kind)
    if as_json:
        print_json(
            {
                "masks": len(made.paths), "out": str(out), "kind": kind,
                "mean_coverage": made.mean_coverage,
            }
        )  # fmt: skip
        return
    target = f" (target {coverage or DEFAULT_COVERAGE:.1%})" if kind == "thesis" else ""
    stdout.print(
        f"wrote {len(made.paths)} {escape(kind)} masks ({size}×{size}) to "
        f"[bold]{escape(str(out))}[/]; mean coverage {made.mean_coverage:.1%}{target}"
    )


def _progress(enabled: bool) -> Progress:
    return Progress(
        TextColumn("[bold]eval"), BarColumn(), MofNCompleteColumn(),
        TextColumn("{task.fields[current]}"), TimeElapsedColumn(), TimeRemainingColumn(),
        console=stderr, disable=not enabled,
    )  # fmt: skip


def _summary_table(curves: dict[str, Curve], metrics: list[str]) -> Table:
    from tttkit.evaluation.aggregate import label
    from tttkit.evaluation.tables import fmt_gain, fmt_value

    table = Table(title="last step: score (improvement over step 0; references: over `none`)")
    for column in ("strategy", "images", "step", *[label(m) for m in metrics]):
        table.add_column(column, overflow="fold")
    for curve in curves.values():
        cells = [curve.strategy, str(curve.images[metrics[0]][-1]), str(curve.last_step)]
        for metric in metrics:
            gain = curve.improvements(metric)[-1] if metric in curve.values else math.nan
            cells.append(f"{fmt_value(curve.last(metric))} ({fmt_gain(gain)})")
        table.add_row(*cells)
    return table


def _summary_json(curves: dict[str, Curve], metrics: list[str]) -> dict[str, Any]:
    def number(value: float) -> float | None:
        return value if math.isfinite(value) else None

    return {
        name: {
            "kind": curve.kind,
            "last_step": curve.last_step,
            "images": curve.images[metrics[0]][-1],
            "scores": {m: number(curve.last(m)) for m in metrics if m in curve.values},
            "improvement_pct": {
                m: number(curve.improvements(m)[-1]) for m in metrics if m in curve.values
            },
        }
        for name, curve in curves.items()
    }


@with_overrides
@with_run_options
@user_errors
def eval_command(
    images: ImagesArgument,
    strategy: Annotated[
        list[str], typer.Option("--strategy", "-s", help="Strategy to evaluate (repeatable).")
    ],
    out: Annotated[Path, typer.Option("--out", help="Run folder: results, outputs, features.")],
    masks: Annotated[
        Path | None,
        typer.Option(
            "--masks",
            help="Masks folder (`tttkit masks`). Without it (or naming IMAGES itself), masks lie "
            "beside their photos in LaMa's layout: name.png with name_mask000.png, ….",
            show_default=False,
        ),
    ] = None,
    eval_every: Annotated[
        int, typer.Option("--eval-every", min=1, help="Steps between evaluations.")
    ] = 5,
    size: Annotated[
        int | None,
        typer.Option(
            "--size", min=16, help="Images become SIZE×SIZE [default: the backbone's working size]."
        ),
    ] = None,
    windows: Annotated[
        str,
        typer.Option(
            "--windows",
            help="full: TTT on the whole SIZE² image (the thesis); crop or resize: as `tttkit "
            "inpaint` does, at the backbone's working size (curves then have steps 0 and last).",
        ),
    ] = "full",
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue RUN: skip finished pairs.")
    ] = False,
    backbone: Annotated[str | None, typer.Option("--backbone", help="Backbone name.")] = None,
    weights: Annotated[Path | None, typer.Option("--weights", help="Backbone checkpoint.")] = None,
    backbone_options: BackboneOptionsOption = None,
    perceptual_weights: Annotated[
        Path | None,
        typer.Option(
            "--perceptual-weights",
            help="VGG features file: perceptual loss, and FID-VGG16 without Inception weights.",
        ),
    ] = None,
    fid: Annotated[
        str, typer.Option("--fid", help=f"Set metric network: {', '.join(FID_MODES)}.")
    ] = "auto",
    inception_weights: Annotated[
        Path | None,
        typer.Option("--inception-weights", help=f"Inception-v3 weights (or ${ENV_INCEPTION})."),
    ] = None,
    lpips: Annotated[
        str,
        typer.Option(
            "--lpips",
            help=f"LPIPS per image: {', '.join(LPIPS_MODES)}. auto: torchvision's VGG16 trunk "
            "gives LPIPS; without it the perceptual loss's VGG16 gives LPIPS-alt (not comparable "
            "to papers).",
        ),
    ] = "auto",
    lpips_weights: Annotated[
        Path | None,
        typer.Option("--lpips-weights", help=f"LPIPS's VGG16 trunk file (or ${ENV_LPIPS})."),
    ] = None,
    as_json: JsonOption = False,
    *,
    overrides: Overrides,
    run: RunOptions,
) -> None:
    """Evaluate strategies on IMAGES with fixed masks; resumable, and sharded under torchrun.

    The strategy overrides (--steps, --lr, --set …) apply to every --strategy alike."""
    from tttkit.evaluation import distributed
    from tttkit.evaluation.runner import EvalConfig
    from tttkit.io import check_output_folder

    check_output_folder(out, "--out")
    from tttkit.windows import check_window_mode

    check_window_mode(windows)  # a wrong name fails before any photo is read
    config = EvalConfig(
        images=images, masks=masks, out=out, strategies=tuple(strategy), overrides=overrides,
        eval_every=eval_every, size=size, windows=windows, run=run, backbone=backbone,
        weights=weights,
        backbone_options=tuple(parse_options(backbone_options).items()),
        perceptual_weights=perceptual_weights,
        fid=fid,
        inception_weights=inception_weights, lpips=lpips, lpips_weights=lpips_weights,
        resume=resume,
    )  # fmt: skip
    context = distributed.start(str(run.device))
    try:
        _evaluate(config, context, as_json)
    finally:
        distributed.stop(context)


def _evaluate(config: EvalConfig, context: distributed.Context, as_json: bool) -> None:
    from tttkit.evaluation.aggregate import build_curves, metrics_of
    from tttkit.evaluation.runner import Callbacks, plan_evaluation, run_evaluation

    plan = plan_evaluation(config, context)
    lead = context.rank == 0
    if lead and plan.without_masks:  # LaMa's layout: said once, never silently dropped
        shown = ", ".join(plan.without_masks[:5])
        more = f" and {len(plan.without_masks) - 5} more" if len(plan.without_masks) > 5 else ""
        stderr.print(
            f"[yellow]note:[/] {len(plan.without_masks)} photo(s) in {escape(str(config.images))} "
            f"have no name_mask*.png beside them and are not evaluated: {escape(shown)}{more}",
            highlight=False,
        )
    for notice in plan.notices if lead else []:
        stderr.print(f"[yellow]note:[/] {escape(notice)}", highlight=False)
    progress = _progress(lead and not as_json)
    task = progress.add_task("eval", total=None, current="")
    saved = 0

    def start(total: int, before: int) -> None:
        progress.update(task, total=total)
        if lead and not as_json:
            note = f"; {before} done before" if before else ""
            where = f" on {context.world} processes" if context.active else ""
            stderr.print(f"{total} (image, strategy) pairs to run{where}{note}")

    def pair_start(key: str, name: str) -> None:
        progress.update(task, current=escape(f"{key} [{name}]"))

    def pair_done(record: dict[str, Any]) -> None:
        nonlocal saved
        saved += 1
        progress.advance(task)

    try:
        with progress:
            outcome = run_evaluation(plan, Callbacks(start, pair_start, pair_done))
    except KeyboardInterrupt:
        stderr.print(
            f"[yellow]interrupted:[/] {saved} finished pairs are saved in "
            f"{escape(str(config.out))}; continue with --resume"
        )
        raise typer.Exit(130) from None
    if not lead:
        return
    curves = build_curves(outcome.records, outcome.set_metrics, outcome.rows)
    metrics = metrics_of(curves)
    if as_json:
        print_json(
            {
                "out": str(config.out), "pairs": len(outcome.records),
                "done_before": outcome.done_before, "done_now": outcome.done_now,
                "set_metric": (outcome.set_metrics or {}).get("metric"),
                "summary": _summary_json(curves, metrics),
            }
        )  # fmt: skip
        return
    stdout.print(_summary_table(curves, metrics))
    stdout.print(
        f"results in [bold]{escape(str(config.out))}[/]; figures: tttkit report {config.out}"
    )


@user_errors
def report_command(
    run: Annotated[Path, typer.Argument(help="An evaluation run folder.", show_default=False)],
    out: Annotated[
        Path | None, typer.Option("--out", help="Output folder [default: RUN/report].")
    ] = None,
    grid_image: Annotated[
        list[str] | None,
        typer.Option("--grid-image", help="Image (key) to show in the grids (repeatable)."),
    ] = None,
    grid_count: Annotated[
        int, typer.Option("--grid-count", min=1, help="Best and worst images per grid.")
    ] = DEFAULT_GRID_COUNT,
    grid_metric: Annotated[
        str, typer.Option("--grid-metric", help="Metric choosing the best and worst images.")
    ] = "l1",
    as_json: JsonOption = False,
) -> None:
    """Figures and tables of RUN: curves, ranking, histograms, grids, one HTML page."""
    from tttkit.evaluation.report import write_report
    from tttkit.io import check_output_folder

    check_output_folder(out if out is not None else run / "report", "--out")
    report = write_report(
        run, out, grid_images=grid_image or (), grid_count=grid_count, grid_metric=grid_metric
    )
    if as_json:
        print_json({"files": {k: str(v) for k, v in report.files.items()}, "notes": report.notes})
        return
    stdout.print(report.ranking_markdown, highlight=False, markup=False)
    stdout.print(
        f"wrote {len(report.files)} files; open {escape(str(report.files['report.html']))}"
    )
