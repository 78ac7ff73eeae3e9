"""`tttkit list`: what every plugin registered, by kind."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from tttkit.cli._common import JsonOption, fail, print_json, stdout, user_errors
from tttkit.plugins import KINDS, get_host
from tttkit.registry import REQUIRED, Entry, close_matches


def _backbone_details(entry: Entry[Any]) -> dict[str, Any]:
    required = [k for k, v in entry.parameters().items() if v == REQUIRED]
    if required:  # e.g. a TorchScript file: nothing to count until the user names one
        return {"parameters": None, "conventions": None, "config": None, "requires": required}
    # Built on the meta device: parameter counts and conventions without allocating weights.
    import torch  # here, not above: `tttkit --help` should not load torch

    with torch.device("meta"):
        net = entry.obj()
    return {
        "parameters": net.parameter_counts(),
        "conventions": net.conventions.to_dict(),
        "config": net.config,
    }


def _entry_json(kind: str, entry: Entry[Any]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": entry.name,
        "plugin": entry.plugin,
        "description": entry.description,
    }
    if kind == "strategies":
        out["parent"] = entry.obj.parent
    else:
        out["options"] = entry.parameters()
    if kind == "backbones":
        out.update(_backbone_details(entry))
    return out


@user_errors
def list_command(
    kind: Annotated[
        str | None, typer.Argument(help=f"One of: {', '.join(KINDS)}. Default: all kinds.")
    ] = None,
    pattern: Annotated[str, typer.Argument(help="Glob pattern on names, e.g. 'combo-*'.")] = "*",
    as_json: JsonOption = False,
) -> None:
    """List registered backbones, finetuning masks, fillers, augmentations, freezing policies,
    evaluation-mask kinds and strategies."""
    if kind is not None and kind not in KINDS:
        suggestions = close_matches(kind, list(KINDS))
        hint = f" — did you mean {suggestions[0]!r}?" if suggestions else ""
        raise fail(f"unknown kind {kind!r}{hint} (kinds: {', '.join(KINDS)})")
    host = get_host()
    kinds = [kind] if kind else list(KINDS)
    listing = {k: host.registry(k).entries(pattern) for k in kinds}
    if as_json:
        print_json({k: [_entry_json(k, e) for e in entries] for k, entries in listing.items()})
        return
    for k, entries in listing.items():
        table = Table(title=k, title_justify="left", show_edge=False)
        table.add_column("name", style="bold cyan", no_wrap=True)
        table.add_column("plugin", style="dim")
        table.add_column("description")
        for e in entries:
            table.add_row(escape(e.name), escape(e.plugin), escape(e.description))
        stdout.print(table)
        stdout.print()
