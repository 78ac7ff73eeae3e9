"""`tttkit list`: what every plugin registered, by kind."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from tttkit.cli._common import JsonOption, fail, print_json, stdout, user_errors
from tttkit.plugins import KINDS, get_host
from tttkit.registry import REQUIRED, Entry, Registry, close_matches


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


def _options_cell(entry: Entry[Any]) -> str:
    """``name=default`` for each option (``name (required)`` without a default)."""
    return ", ".join(
        f"{name} (required)" if default == REQUIRED else f"{name}={default!r}"
        for name, default in entry.parameters().items()
    )


def _no_match(kind: str, pattern: str, registry: Registry[Any]) -> str:
    """What to print instead of an empty table: the pattern is a glob on whole names, so a
    bare word matches only the name it spells."""
    message = f"no {kind} match {pattern!r}"
    if any(c in pattern for c in "*?["):
        return f"{message} (names: {', '.join(registry.names()) or 'none registered'})"
    wider = f"*{pattern}*"
    matches = registry.names(wider)
    if matches:
        return (
            f"{message} (a glob on whole names: try {wider!r}, which matches {', '.join(matches)})"
        )
    return (
        f"{message} (a glob on whole names, e.g. {wider!r}; names: {', '.join(registry.names())})"
    )


@user_errors
def list_command(
    kind: Annotated[
        str | None, typer.Argument(help=f"One of: {', '.join(KINDS)}. Default: all kinds.")
    ] = None,
    pattern: Annotated[
        str, typer.Argument(help="Glob pattern on whole names, e.g. 'combo-*' or '*net*'.")
    ] = "*",
    as_json: JsonOption = False,
) -> None:
    """List registered backbones, finetuning masks, fillers, augmentations, freezing policies,
    evaluation-mask kinds and strategies, with each one's options and their defaults."""
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
    if kind is None and pattern != "*":  # kinds with nothing matching are left out
        listing = {k: entries for k, entries in listing.items() if entries} or listing
    for k, entries in listing.items():
        if not entries:
            stdout.print(escape(_no_match(k, pattern, host.registry(k))), highlight=False)
            continue
        table = Table(title=k, title_justify="left", show_edge=False)
        table.add_column("name", style="bold cyan", no_wrap=True)
        table.add_column("plugin", style="dim")
        table.add_column("description")
        # A strategy has no options (its fields are set with --set); its parent says more.
        table.add_column("parent" if k == "strategies" else "options (default)")
        for e in entries:
            extra = (e.obj.parent or "") if k == "strategies" else _options_cell(e)
            table.add_row(escape(e.name), escape(e.plugin), escape(e.description), escape(extra))
        stdout.print(table)
        stdout.print()
