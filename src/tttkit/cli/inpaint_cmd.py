"""`tttkit inpaint`: test-time train on one photo and fill its holes."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from tttkit.cli._common import (
    BackboneOptionsOption,
    JsonOption,
    MaxPixelsOption,
    parse_options,
    print_json,
    read_holes,
    stderr,
    stdout,
    user_errors,
    with_overrides,
    with_run_options,
)
from tttkit.errors import InputError
from tttkit.options import DEFAULT_STRATEGY, Overrides, RunOptions

if TYPE_CHECKING:
    from torch import Tensor

    from tttkit.api import Result
    from tttkit.evaluation.lpips_metric import LpipsMetric

ExistingFile = Annotated[Path, typer.Argument(help="The photo to complete.", show_default=False)]


def _window_mode(windows: str, region: str | None) -> str:
    """The ``--windows`` mode, checked; given by its old name ``--region``, the message says
    so (the old name wins, as it did as an alias)."""
    from tttkit.windows import check_window_mode

    if region is not None:
        check_window_mode(region, "--region (now --windows)")
        return region
    check_window_mode(windows)
    return windows


@with_overrides
@with_run_options
@user_errors
def inpaint_command(
    image: ExistingFile,
    user_mask: Annotated[
        Path | None,
        typer.Option(
            "--mask",
            "-m",
            help="Mask file: white (> 127) = hole (many photos: a file for all, or a folder).",
            show_default=False,
        ),
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Output file [default: IMAGE_tttkit.png].")
    ] = None,
    strategy: Annotated[
        str, typer.Option("--strategy", "-s", help="Strategy name.")
    ] = DEFAULT_STRATEGY,
    backbone: Annotated[str | None, typer.Option("--backbone", help="Backbone name.")] = None,
    backbone_options: BackboneOptionsOption = None,
    weights: Annotated[Path | None, typer.Option("--weights", help="Backbone checkpoint.")] = None,
    ground_truth: Annotated[
        Path | None,
        typer.Option(
            "--ground-truth",
            help="Complete image: report metrics (L1, PSNR, SSIM, LPIPS if a VGG16 trunk is "
            "found, HaarPSI, GMSD).",
        ),
    ] = None,
    lpips_weights: Annotated[
        Path | None,
        typer.Option(
            "--lpips-weights",
            help="LPIPS's VGG16 trunk for --ground-truth (or TTTKIT_LPIPS_WEIGHTS; else "
            "torchvision's cached file; else the perceptual loss's VGG16, as LPIPS-alt).",
        ),
    ] = None,
    save_raw: Annotated[
        Path | None,
        typer.Option(
            "--save-raw",
            help="Also write the raw (step-0) fill, as soon as it exists (before finetuning).",
        ),
    ] = None,
    perceptual_weights: Annotated[
        Path | None,
        typer.Option(
            "--perceptual-weights",
            help="VGG features file for the perceptual loss (or TTTKIT_PERCEPTUAL_WEIGHTS).",
        ),
    ] = None,
    windows: Annotated[
        str,
        typer.Option(
            "--windows",
            help="Photos larger than the working size: crop (windows around holes), resize, "
            "full. (--region: its old name.)",
        ),
    ] = "crop",
    # The old name is its own (hidden) option, so that a message can name what the user typed.
    region: Annotated[
        str | None, typer.Option("--region", hidden=True, help="Old name of --windows.")
    ] = None,
    max_pixels: MaxPixelsOption = None,
    reference: Annotated[
        list[Path] | None,
        typer.Option(
            "--reference",
            help="Another shot of the same scene, finetuned on too (repeatable).",
            show_default=False,
        ),
    ] = None,
    references_dir: Annotated[
        Path | None,
        typer.Option(
            "--references", help="A folder of such shots: all its photos.", show_default=False
        ),
    ] = None,
    companions: Annotated[
        Path | None,
        typer.Option(
            "--companions",
            help="A folder to pick such shots from by EXIF: taken within --companion-minutes "
            "of the photo, within --companion-meters when both have GPS, same camera.",
            show_default=False,
        ),
    ] = None,
    companion_minutes: Annotated[
        float, typer.Option("--companion-minutes", min=0.0, help="Largest time apart.")
    ] = 10.0,
    companion_meters: Annotated[
        float, typer.Option("--companion-meters", min=0.0, help="Largest distance apart.")
    ] = 200.0,
    reference_aligner: Annotated[
        str,
        typer.Option(
            "--reference-aligner",
            help="How shots are aligned to the photo (`tttkit list reference-aligners`).",
        ),
    ] = "homography",
    reference_share: Annotated[
        float,
        typer.Option(
            "--reference-share", min=0.0, max=1.0, help="Share of each step's views from them."
        ),
    ] = 0.5,
    reference_masks: Annotated[
        str,
        typer.Option(
            "--reference-masks",
            help="Finetuning masks on the shots: holes (random ones, and over the photo's holes "
            "where a shot shows them) or random (as on the photo only).",
        ),
    ] = "holes",
    resize_mask: Annotated[
        bool, typer.Option("--resize-mask", help="Resize a mask of another size to the image.")
    ] = False,
    jobs: Annotated[
        int,
        typer.Option(
            "--jobs", min=1, help="Many photos: worker processes (the cores split between them)."
        ),
    ] = 1,
    as_json: JsonOption = False,
    *,
    overrides: Overrides,
    run: RunOptions,
) -> None:
    """Finetune the backbone on IMAGE (test-time training), then fill the holes of --mask.

    IMAGE may be a folder or a quoted glob ("photos/*.jpg"): every photo is filled with its
    mask — LaMa's layout (name_mask000.png beside name.png) when --mask is not given, a masks
    folder with the same names, or one mask file for all — into the --out folder, with
    summary.jsonl; a rerun continues where the last stopped.
    """
    from tttkit.batch import is_batch

    if is_batch(image):
        from tttkit.cli.batch_run import Settings, inpaint_batch, refuse_single_photo_options

        refuse_single_photo_options({
            "--ground-truth": ground_truth, "--save-raw": save_raw, "--reference": reference,
            "--references": references_dir, "--companions": companions, "--json": as_json,
        })  # fmt: skip

        settings = Settings(
            backbone=backbone, weights=None if weights is None else str(weights),
            strategy=strategy, windows=_window_mode(windows, region), max_pixels=max_pixels,
            resize_mask=resize_mask, run=run, overrides=overrides.as_kwargs(),
        )  # fmt: skip
        inpaint_batch(image, user_mask, out, settings, jobs, resize_mask)
        return
    # Imported here, not above, so that `tttkit --help` answers without loading torch.
    import torch

    from tttkit.api import adapt
    from tttkit.io import check_output_file, read_image, write_image

    # Everything that can be checked is checked before the photo is read or a step is run.
    out = out or image.with_name(f"{image.stem}_tttkit.png")
    inputs = [("IMAGE", image), ("--mask", user_mask), ("--ground-truth", ground_truth),
              ("--weights", weights)]  # fmt: skip
    check_output_file(out, "--out", inputs=inputs)
    if save_raw is not None:
        check_output_file(save_raw, "--save-raw", inputs=[*inputs, ("--out", out)])
    windows = _window_mode(windows, region)
    shots = _reference_paths(
        image, reference or [], references_dir, companions, companion_minutes, companion_meters,
        quiet=as_json,
    )  # fmt: skip
    photo = read_image(image, max_pixels=max_pixels, dtype=torch.uint8)
    size = tuple(photo.shape[-2:])
    holes = read_holes(user_mask, image, size, resize_mask, max_pixels)
    truth = read_image(ground_truth, max_pixels=max_pixels) if ground_truth is not None else None
    if truth is not None and tuple(truth.shape[-2:]) != size:
        raise InputError(
            f"ground truth {ground_truth} is {truth.shape[-1]}×{truth.shape[-2]}, not the size "
            f"of image {image} ({size[1]}×{size[0]})"
        )
    # LPIPS's trunk is resolved before the run: a wrong file must not cost the run's minutes
    lpips = None
    if truth is not None:
        from tttkit.evaluation.lpips_metric import resolve_lpips

        lpips = resolve_lpips(lpips_weights=lpips_weights, perceptual_weights=perceptual_weights)
    raw = _RawWriter(save_raw, quiet=as_json)
    try:
        result = adapt(
            photo, holes, backbone=backbone, weights=weights, strategy=strategy,
            ground_truth=truth, perceptual_weights=perceptual_weights, windows=windows,
            backbone_options=parse_options(backbone_options), label=image.name,
            options=run.replace(show_progress=not as_json),
            on_raw=raw if save_raw is not None else None, references=shots or None,
            reference_aligner=reference_aligner, reference_share=reference_share,
            reference_masks=reference_masks, **overrides.as_kwargs(),
        )  # fmt: skip
    except KeyboardInterrupt:
        done = (
            f"only the raw fill was written, to {escape(str(save_raw))}"
            if raw.written
            else "nothing was written"
        )
        stderr.print(f"[yellow]interrupted:[/] {done}; {escape(str(out))} is as it was")
        raise typer.Exit(130) from None
    metrics = _ground_truth_metrics(result, truth, lpips) if truth is not None else None
    for notice in result.notices:
        stderr.print(f"[yellow]notice:[/] {notice}")
    write_image(out, result.finetuned)
    if save_raw is not None and not raw.written:  # no holes: no raw fill was handed over
        write_image(save_raw, result.raw)
    summary = {
        "output": str(out),
        "raw_output": str(save_raw) if save_raw is not None else None,
        "strategy": result.strategy.name,
        "steps": result.strategy.steps,
        # the step whose output was returned (a selected, early-stopped or refit run: ≤ steps)
        "output_step": result.output_step,
        "seed": run.seed,
        "seconds": result.seconds,
        "metrics": metrics,
        "selection": None if result.selection is None else result.selection.as_dict(),
        "windows": result.windows,
        "notices": result.notices,
    }
    if as_json:
        print_json(summary)
        return
    chosen = summary["output_step"]
    steps = f"{result.strategy.steps} steps" + (
        f", output of step {chosen}" if chosen != result.strategy.steps else ""
    )
    stdout.print(f"wrote [bold]{out}[/] ({result.strategy.name}, {steps}, "
                 f"{result.seconds['total']:.1f} s)")  # fmt: skip
    if metrics is not None:
        for key, raw_value in metrics["raw"].items():
            stdout.print(f"  {key}: raw {raw_value:.4f} → {metrics['finetuned'][key]:.4f}")


def _reference_paths(
    image: Path,
    files: list[Path],
    folder: Path | None,
    companions: Path | None,
    minutes: float,
    meters: float,
    *,
    quiet: bool,
) -> list[Path]:
    """The reference shots the options name, checked to exist; companions picked by EXIF are
    listed with why (and why others were not), before any work."""
    from tttkit.companions import find_companions, photos_in

    shots = list(files)
    for path in shots:
        if not path.is_file():
            raise InputError(f"--reference {path}: no such file")
    if folder is not None:
        shots += [p for p in photos_in(folder) if p.resolve() != image.resolve()]
    if companions is not None:
        found = find_companions(image, companions, minutes, meters)
        taken = [c for c in found if c.taken]
        if not quiet:
            for c in found:
                mark = "[green]taken[/]" if c.taken else "[dim]left[/]"
                stderr.print(f"companion {mark} {escape(c.path.name)}: {escape(c.reason)}")
            if not taken:
                stderr.print(
                    f"[yellow]no companion photo qualifies[/] in {escape(str(companions))} "
                    f"(within {minutes:g} min, {meters:g} m, same camera): finetuning on the "
                    "photo alone"
                )
        shots += [c.path for c in taken]
    return list(dict.fromkeys(shots))


class _RawWriter:
    """``--save-raw``: writes the raw fill when the run hands it over, before finetuning — worth
    having while the run trains, and if it is interrupted."""

    def __init__(self, path: Path | None, quiet: bool) -> None:
        self.path, self.quiet, self.written = path, quiet, False

    def __call__(self, fill: Tensor) -> None:
        from tttkit.io import write_image

        assert self.path is not None
        write_image(self.path, fill)
        self.written = True
        if not self.quiet:
            stderr.print(f"raw fill written to {escape(str(self.path))}; finetuning…")


def _ground_truth_metrics(
    result: Result, truth: Tensor, lpips: LpipsMetric | None
) -> dict[str, dict[str, float]]:
    """The raw and the returned fill's metrics: the run's own, then the perceptual ones
    (added to ``result.notices`` when the photo is too large for them, or LPIPS has no trunk)."""
    import torch

    from tttkit.evaluation.lpips_metric import PERCEPTUAL_MAX_PIXELS, perceptual_metrics
    from tttkit.imageops import as_unit

    pixels = truth.shape[-2] * truth.shape[-1]
    if pixels > PERCEPTUAL_MAX_PIXELS:
        result.notices.append(
            f"no perceptual metrics (LPIPS, HaarPSI, GMSD): the photo has {pixels / 1e6:.1f} "
            f"megapixels, more than the {PERCEPTUAL_MAX_PIXELS / 1e6:.1f} they are measured on"
        )
        raw_scores: dict[str, float] = {}
        final_scores: dict[str, float] = {}
    else:
        fills = torch.stack([as_unit(result.raw), as_unit(result.finetuned)])
        raw_scores, final_scores = perceptual_metrics(fills, as_unit(truth), lpips)
        if lpips is None:
            result.notices.append(
                "no LPIPS: no VGG16 trunk found (--lpips-weights FILE, TTTKIT_LPIPS_WEIGHTS, "
                "or --perceptual-weights for LPIPS-alt)"
            )
    return {
        "raw": {**result.metrics(0), **raw_scores},
        "finetuned": {**result.metrics(), **final_scores},
    }
