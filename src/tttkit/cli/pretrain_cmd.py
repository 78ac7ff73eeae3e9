"""`tttkit pretrain`: train a backbone from scratch on a folder of photos."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from tttkit.cli._common import (
    BackboneOptionsOption,
    SeedOption,
    parse_options,
    stderr,
    stdout,
    user_errors,
)
from tttkit.config import SpecError, replace_checked
from tttkit.plugins import get_host
from tttkit.registry import check_parameters

if TYPE_CHECKING:
    import torch

# torch and the training code are imported where they are used, so that `tttkit --help` answers
# without loading them.


def _backbone_config(name: str, options: dict[str, Any]) -> dict[str, Any]:
    """The backbone's full configuration with its options applied (checked)."""
    host = get_host()
    entry = host.registry("backbones").entry(name)
    problem = check_parameters(entry.obj, options, f"backbone {name!r}")
    if problem:
        raise SpecError(f"--backbone-option: {problem}")
    import torch

    with host.naming_failures(f"building backbone {name!r}", plugin=entry.plugin):
        try:
            with torch.device("meta"):  # validates the options without allocating weights
                return dict(entry.obj(**options).config)
        except (TypeError, ValueError) as exc:
            raise SpecError(f"--backbone-option: not valid for backbone {name!r}: {exc}") from exc


def _truncate_log(log: Path, step: int) -> None:
    """Drop log lines an interrupted run wrote after its last checkpoint (resume repeats them),
    and a last line it was killed in the middle of writing."""
    from tttkit.io import atomic_write_bytes

    kept = []
    for line in log.read_text(errors="replace").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue  # a partial line: the step is redone after the resume
        logged = record.get("step") if isinstance(record, dict) else None
        if isinstance(logged, int) and logged <= step:
            kept.append(line)
    atomic_write_bytes(log, ("\n".join(kept) + "\n").encode() if kept else b"")


def _start_processes(device: str) -> tuple[torch.device, int]:
    """The device of this process and its rank; under torchrun, the process group started."""
    import torch
    import torch.distributed as dist

    from tttkit.engine.execution import resolve_device

    world = int(os.environ.get("WORLD_SIZE", "1"))
    resolved = resolve_device(device)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if resolved.type == "cuda" else "gloo")
        if resolved.type == "cuda":
            resolved = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return resolved, dist.get_rank() if dist.is_initialized() else 0


def _kept(out: Path) -> str:
    """What an interrupted run leaves, and how to continue it."""
    from tttkit.checkpoint import read_metadata

    if not out.is_file():
        return "no checkpoint was written yet; nothing to resume"
    step = read_metadata(out).get("tttkit.pretrain.step", "?")
    return (
        f"the checkpoint of step {step} is kept in {out}; continue with "
        f"--resume {out} (the same command line, --resume added)"
    )


@user_errors
def pretrain_command(
    images: Annotated[
        Path, typer.Argument(help="Folder of training photos (searched recursively).")
    ],
    backbone: Annotated[str, typer.Option("--backbone", help="Backbone to train.")],
    out: Annotated[Path, typer.Option("--out", help="Checkpoint file (.safetensors).")],
    steps: Annotated[
        int, typer.Option("--steps", min=1, help="Total optimisation steps.")
    ] = 10_000,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="Crops per step.")] = 8,
    size: Annotated[int, typer.Option("--size", min=16, help="Training crop size.")] = 256,
    lr: Annotated[float, typer.Option("--lr", min=0.0, help="Adam learning rate.")] = 2e-4,
    holdout: Annotated[int, typer.Option("--holdout", min=0, help="Photos held out.")] = 10,
    resume: Annotated[
        Path | None, typer.Option("--resume", help="Continue this checkpoint.")
    ] = None,
    init: Annotated[
        Path | None, typer.Option("--init", help="Start from these weights (fresh optimizers).")
    ] = None,
    seed: SeedOption = 0,
    device: Annotated[str, typer.Option("--device", help="auto, cpu or cuda.")] = "auto",
    checkpoint_every: Annotated[
        int,
        typer.Option(
            "--checkpoint-every",
            min=1,
            help="Steps between checkpoints (the point --resume continues from).",
        ),
    ] = 250,
    validate_every: Annotated[
        int,
        typer.Option(
            "--validate-every",
            min=1,
            help="Steps between validation passes on the held-out photos.",
        ),
    ] = 250,
    perceptual_weights: Annotated[
        Path | None, typer.Option("--perceptual-weights", help="VGG features file.")
    ] = None,
    loss: Annotated[
        list[str] | None,
        typer.Option(
            "--loss",
            help="Loss setting key=value (repeatable), e.g. perceptual=0 (no VGG needed) or "
            "adversarial=0 (a reconstruction warm-up). Default: the thesis's 1, 1, 0.1, 0.4 on "
            "foreground and background.",
        ),
    ] = None,
    backbone_options: BackboneOptionsOption = None,
) -> None:
    """Pretrain a backbone on IMAGES (thesis §3.3); resumable, and data-parallel under torchrun."""
    import torch.distributed as dist

    from tttkit.checkpoint import read_metadata
    from tttkit.engine.pretrain import (
        PRETRAIN_LOSSES,
        PretrainConfig,
        list_images,
        pretrain,
        split_holdout,
    )
    from tttkit.io import check_output_file

    # --resume may name --out itself (a run continues in its own file); --init may not.
    check_output_file(out, "--out", inputs=[("--init", init)], suffixes=(".safetensors",))
    if resume is not None:
        read_metadata(resume)  # missing or damaged: say so before any data is read
    resolved, rank = _start_processes(device)
    train_paths, val_paths = split_holdout(list_images(images), holdout, seed)
    backbone_config = _backbone_config(backbone, parse_options(backbone_options))
    try:
        losses = replace_checked(PRETRAIN_LOSSES, parse_options(loss))
    except SpecError as exc:
        raise SpecError(f"--loss: {exc}") from None
    settings = PretrainConfig(
        backbone=backbone, backbone_config=backbone_config, size=size,
        steps=steps, batch_size=batch_size, lr=lr, checkpoint_every=checkpoint_every,
        validate_every=validate_every, seed=seed,
        losses=losses,
    )  # fmt: skip
    features = None
    if settings.losses.perceptual > 0:
        from tttkit.engine.perceptual import load_feature_network

        features = load_feature_network(perceptual_weights, device=resolved)
    log = out.with_name(out.name + ".log.jsonl")
    if rank == 0:
        out.parent.mkdir(parents=True, exist_ok=True)
        if resume is not None and log.is_file():
            _truncate_log(log, int(read_metadata(resume).get("tttkit.pretrain.step", "0")))
        stdout.print(f"training on {len(train_paths)} photos; held out: "
                     + ", ".join(p.name for p in val_paths))  # fmt: skip
    progress = Progress(
        TextColumn("[bold]pretrain"), BarColumn(), MofNCompleteColumn(),
        TextColumn("{task.fields[status]}"), TimeElapsedColumn(), TimeRemainingColumn(),
        console=stderr, disable=rank != 0,
    )  # fmt: skip

    def on_step(step: int, losses: dict[str, float]) -> None:
        progress.update(task, completed=step, status=f"loss {losses['total']:.3f}")
        with log.open("a") as handle:
            handle.write(json.dumps({"step": step, "losses": losses}) + "\n")

    def on_validate(step: int, metrics: dict[str, float]) -> None:
        with log.open("a") as handle:
            handle.write(json.dumps({"step": step, "validation": metrics}) + "\n")
        progress.console.print(
            f"step {step}: validation " + ", ".join(f"{k} {v:.4f}" for k, v in metrics.items())
        )

    try:
        with progress:
            task = progress.add_task("pretrain", total=steps, status="")
            pretrain(
                get_host().registry("backbones").get(backbone), settings, train_paths, val_paths,
                out, perceptual=features, resume=resume, init=init, device=resolved,
                on_step=on_step, on_validate=on_validate,
            )  # fmt: skip
    except KeyboardInterrupt:
        if rank == 0:
            stderr.print(f"[yellow]interrupted:[/] {_kept(out)}")
        raise typer.Exit(130) from None
    if dist.is_initialized():
        dist.destroy_process_group()
