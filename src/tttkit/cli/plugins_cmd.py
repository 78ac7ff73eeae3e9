"""`tttkit plugins`: which plugins are loaded, from where, and what each registered."""

from __future__ import annotations

from rich.markup import escape
from rich.table import Table

from tttkit.cli._common import JsonOption, print_json, stdout, user_errors
from tttkit.plugins import get_host


@user_errors
def plugins_command(as_json: JsonOption = False) -> None:
    """List loaded plugins, their distributions, and what each registered."""
    host = get_host()
    rows = [
        {
            "name": info.name,
            "distribution": info.distribution,
            "version": info.version,
            "builtin": info.builtin,
            "hooks": info.hooks,
            "registered": host.registered_by(info.name),
        }
        for info in host.plugins.values()
    ]
    if as_json:
        print_json({"autoload": host.autoload, "blocked": sorted(host.blocked), "plugins": rows})
        return
    table = Table(show_edge=False)
    for column in ("plugin", "distribution", "registered"):
        table.add_column(column)
    for row in rows:
        registered = escape("; ".join(f"{k}: {', '.join(v)}" for k, v in row["registered"].items()))
        hooks = ", ".join(h.removeprefix("tttkit_") for h in row["hooks"])
        dist = f"{row['distribution']} {row['version'] or ''}".strip()
        table.add_row(f"[bold]{row['name']}[/]", dist, registered or f"[dim]{hooks}[/]")
    stdout.print(table)
