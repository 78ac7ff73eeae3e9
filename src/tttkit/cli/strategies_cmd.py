"""`tttkit strategies …`: inspect named strategies."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.syntax import Syntax
from rich.table import Table

from tttkit.cli._common import JsonOption, print_json, stdout, user_errors, with_overrides
from tttkit.options import Overrides
from tttkit.strategy import describe, get_strategy

app = typer.Typer(no_args_is_help=True, help="Inspect named strategies (presets).")


@app.command("show")
@with_overrides
@user_errors
def show(
    name: Annotated[str, typer.Argument(help="Strategy name (see `tttkit list strategies`).")],
    as_json: JsonOption = False,
    *,
    overrides: Overrides,
) -> None:
    """Show a strategy's resolved spec, after any overrides, and what it changes from its parent."""
    spec = overrides.apply(get_strategy(name))
    data = dict(describe(spec))
    if as_json:
        print_json(data)
        return
    changes = data.pop("changes_from_parent", None)
    stdout.print(f"[bold]{spec.name}[/] — {spec.description}")
    stdout.print(Syntax(json.dumps(data, indent=2), "json", background_color="default"))
    if changes:
        table = Table(title=f"changes from {spec.parent}", title_justify="left", show_edge=False)
        for column in ("field", spec.parent or "parent", spec.name):
            table.add_column(column)
        for path, values in changes.items():
            table.add_row(path, json.dumps(values["parent"]), json.dumps(values["this"]))
        stdout.print(table)
