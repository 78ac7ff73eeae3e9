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
    FID_MODES,
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
        float, typer.Option("--coverage", min=0.01, max=0.85, help="Mean hidden fraction.")
    ] = DEFAULT_COVERAGE,
    size: SizeOption = 256,
    as_json: JsonOption = False,
) -> None:
    """Simulate one free-form user mask per image (thesis §4.1), the same for every run."""
    from tttkit.engine.pretrain import list_images
    from tttkit.evaluation.masks import make_masks
    from tttkit.io import check_output_folder

    check_output_folder(out, "--out")
    made = make_masks(list_images(images), images, out, seed, size, coverage)
    if as_json:
        print_json({"masks": len(made.paths), "out": str(out), "mean_coverage": made.mean_coverage})
        return
    stdout.print(
        f"wrote {len(made.paths)} masks ({size}×{size}) to [bold]{escape(str(out))}[/]; "
        f"mean coverage {made.mean_coverage:.1%} (target {coverage:.1%})"
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
    masks: Annotated[Path, typer.Option("--masks", help="Masks folder (`tttkit masks`).")],
    strategy: Annotated[
        list[str], typer.Option("--strategy", "-s", help="Strategy to evaluate (repeatable).")
    ],
    out: Annotated[Path, typer.Option("--out", help="Run folder: results, outputs, features.")],
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
        inception_weights=inception_weights, resume=resume,
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
