"""The ``tttkit`` command line: one module per command group."""

from __future__ import annotations

from typing import Annotated

import typer

from tttkit.cli._common import ENV_TRACEBACK, set_debug
from tttkit.cli.app_cmd import _ListsBackbones, app_command
from tttkit.cli.eval_cmd import eval_command, masks_command, report_command
from tttkit.cli.inpaint_cmd import inpaint_command
from tttkit.cli.list_cmd import list_command
from tttkit.cli.plugins_cmd import plugins_command
from tttkit.cli.pretrain_cmd import pretrain_command
from tttkit.cli.strategies_cmd import app as strategies_app
from tttkit.cli.weights_cmd import app as weights_app
from tttkit.engine.allocator import tune_allocator
from tttkit.plugins import configure

app = typer.Typer(
    name="tttkit",
    help="Test-time training for image-inpainting networks.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@app.callback()
def options(
    no_plugin_autoload: Annotated[
        bool,
        typer.Option(
            "--no-plugin-autoload",
            help="Do not load third-party plugins (entry points); built-ins still load.",
            envvar="TTTKIT_DISABLE_PLUGIN_AUTOLOAD",
        ),
    ] = False,
    block_plugin: Annotated[
        list[str] | None,
        typer.Option("--block-plugin", help="Do not load this plugin (repeatable)."),
    ] = None,
    debug: Annotated[
        bool,
        typer.Option(
            "--debug", help=f"Show the traceback of a failing plugin (or ${ENV_TRACEBACK}=1)."
        ),
    ] = False,
) -> None:
    """Load plugins under the chosen settings before any command runs."""
    set_debug(debug)
    # The CLI owns its process: let the allocator keep freed training memory (execution.py).
    tune_allocator()
    # Plugins load when a command first needs them (not for --help); a broken one is reported
    # by the command (user_errors).
    configure(autoload=not no_plugin_autoload, blocked=block_plugin or (), load=False)


app.command("inpaint")(inpaint_command)
app.command("list")(list_command)
app.command("plugins")(plugins_command)
app.command("pretrain")(pretrain_command)
app.command("masks")(masks_command)
app.command("eval")(eval_command)
app.command("report")(report_command)
app.add_typer(strategies_app, name="strategies")
app.add_typer(weights_app, name="weights")
app.command("app", cls=_ListsBackbones)(app_command)


def main() -> None:
    """Console-script entry point."""
    app()
