"""`tttkit weights …`: known checkpoints by name, the cache, downloads and checks."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from tttkit.cli._common import JsonOption, print_json, stderr, stdout, user_errors

app = typer.Typer(
    no_args_is_help=True,
    help="Weights by name (BACKBONE:NAME, e.g. lama:big-lama): list, pull, path, verify.",
)

NameArgument = Annotated[
    str, typer.Argument(help="BACKBONE:NAME (see `tttkit weights list`).", show_default=False)
]


def _size(size: int | None) -> str:
    return "—" if size is None else f"{size / 2**20:.0f} MB"


@app.command("list")
@user_errors
def list_weights(as_json: JsonOption = False) -> None:
    """The checkpoints the backbones know: source, size, SHA-256, licence, where they are."""
    from tttkit.evaluation.layout import sha256_file
    from tttkit.weights_store import known, local_path, recorded_sha256, weights_dir

    rows = []
    for entry in known().values():
        checkpoint, path = entry.checkpoint, local_path(entry)
        recorded = recorded_sha256(path) if path is not None else None
        if checkpoint.bundled is not None and path is not None:
            recorded = sha256_file(path)  # shipped: the file itself is the reference
        rows.append({
            "name": entry.name, "backbone": entry.backbone,
            "source": checkpoint.url or "ships with tttkit", "size": checkpoint.size,
            "sha256": checkpoint.sha256, "recorded_sha256": recorded,
            "licence": checkpoint.licence, "path": None if path is None else str(path),
        })  # fmt: skip
    if as_json:
        print_json({"cache": str(weights_dir()), "weights": rows})
        return
    table = Table(show_edge=False)
    for column in ("name", "source", "size", "sha256", "licence", "here"):
        table.add_column(column, overflow="fold")
    for row in rows:
        checksum = row["sha256"] or (
            f"{row['recorded_sha256'][:12]}… (the file here)"
            if row["recorded_sha256"]
            else "none published"
        )
        table.add_row(
            row["name"], escape(row["source"]), _size(row["size"]), checksum[:24],
            escape(row["licence"]), escape(row["path"] or "not downloaded"),
        )  # fmt: skip
    stdout.print(table)
    stdout.print(
        f"cache: {escape(str(weights_dir()))} ($TTTKIT_HOME); model folders: $TTTKIT_MODELS"
    )


@app.command("pull")
@user_errors
def pull(
    name: NameArgument,
    mirror: Annotated[
        str | None,
        typer.Option(
            "--mirror", help="Fetch from this base URL instead (or $TTTKIT_WEIGHTS_MIRROR)."
        ),
    ] = None,
) -> None:
    """Download a known checkpoint into the cache, checked (size, SHA-256)."""
    from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

    from tttkit.weights_store import local_path, lookup, pull

    entry = lookup(name)
    present = local_path(entry)
    if present is not None:
        stdout.print(f"{name}: already here, {escape(str(present))}")
        return
    stderr.print(f"downloading {name} …")
    with Progress(
        "[bold]{task.description}", BarColumn(), DownloadColumn(), TransferSpeedColumn(),
        console=stderr,
    ) as progress:  # fmt: skip
        task = progress.add_task(name, total=entry.checkpoint.size)
        path = pull(
            name, mirror=mirror,
            on_progress=lambda done, total: progress.update(task, completed=done, total=total),
        )  # fmt: skip
    stdout.print(f"{name}: {escape(str(path))}")


@app.command("path")
@user_errors
def path(name: NameArgument) -> None:
    """Print where a checkpoint is on this machine (an error, saying how to get it, if not)."""
    from tttkit.weights_store import resolve

    stdout.print(str(resolve(name)[1]), soft_wrap=True)


@app.command("verify")
@user_errors
def verify(
    name: Annotated[str | None, typer.Argument(help="One checkpoint; default: all here.")] = None,
) -> None:
    """Check the checkpoints on this machine against their published or recorded SHA-256."""
    from tttkit.weights_store import known, lookup
    from tttkit.weights_store import verify as check

    entries = [lookup(name)] if name else list(known().values())
    failed = False
    for entry in entries:
        ok, what = check(entry)
        if ok is None and name is None and what == "not on this machine":
            continue
        mark = {True: "[green]ok[/]", False: "[red]FAILED[/]", None: "[yellow]unchecked[/]"}[ok]
        stdout.print(f"{entry.name}: {mark} {escape(what)}")
        failed |= ok is False
    if failed:
        raise typer.Exit(1)
