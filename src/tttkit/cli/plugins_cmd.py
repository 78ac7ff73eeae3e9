"""`tttkit plugins`: which plugins are loaded, from where, and what each registered — and,
when some are broken, which and why (it still lists every plugin: it is the command to run
exactly then)."""

from __future__ import annotations

from typing import Any

from rich.markup import escape
from rich.table import Table

from tttkit.cli._common import JsonOption, fail, print_json, stdout, user_errors
from tttkit.plugins import PluginReport, survey_host


def _row(report: PluginReport) -> dict[str, Any]:
    info = report.info
    return {
        "name": info.name,
        "distribution": info.distribution,
        "version": info.version,
        "builtin": info.builtin,
        "hooks": info.hooks,
        "registered": report.registered,
        "problems": report.problems,
    }


@user_errors
def plugins_command(as_json: JsonOption = False) -> None:
    """List every plugin, its distribution, what it registered, and why it is broken if it is
    (exit code 1 when any is)."""
    host = survey_host()
    rows = [_row(report) for report in host.survey()]
    broken = [row["name"] for row in rows if row["problems"]]
    if as_json:
        print_json(
            {
                "autoload": host.autoload,
                "blocked": sorted(host.blocked),
                "broken": broken,
                "plugins": rows,
            }
        )
    else:
        table = Table(show_edge=False)
        for column in ("plugin", "distribution", "registered"):
            table.add_column(column)
        for row in rows:
            registered = "; ".join(f"{k}: {', '.join(v)}" for k, v in row["registered"].items())
            hooks = ", ".join(h.removeprefix("tttkit_") for h in row["hooks"])
            dist = f"{row['distribution']} {row['version'] or ''}".strip()
            shown = escape(registered) if registered else f"[dim]{hooks}[/]"
            # A broken plugin's row says why, under what it did register.
            problems = "\n".join(f"[red]BROKEN:[/] {escape(p)}" for p in row["problems"])
            cell = "\n".join(part for part in (shown if registered else "", problems) if part)
            table.add_row(f"[bold]{escape(row['name'])}[/]", escape(dist), cell or shown)
        stdout.print(table)
    if len(broken) == 1:
        raise fail(f"plugin {broken[0]!r} is broken; skip it with --block-plugin {broken[0]}", 1)
    if broken:
        names = ", ".join(map(repr, broken))
        raise fail(
            f"{len(broken)} plugins are broken ({names}); skip each with --block-plugin NAME", 1
        )
