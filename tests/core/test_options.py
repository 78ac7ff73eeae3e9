"""Overrides are declared once: every command that runs or shows strategies takes all of them."""

from __future__ import annotations

import pytest
import typer
from typer.testing import CliRunner

from tttkit.api import OVERRIDE_KEYS
from tttkit.cli import app
from tttkit.cli._common import OVERRIDE_OPTIONS
from tttkit.options import Overrides

#: The commands that run or show strategies.
STRATEGY_COMMANDS = (("inpaint",), ("eval",), ("strategies", "show"))


def _command(path: tuple[str, ...]):  # type: ignore[no-untyped-def]
    command = typer.main.get_command(app)
    for name in path:
        command = command.commands[name]  # type: ignore[attr-defined]
    return command


def test_the_library_and_the_cli_declare_the_same_overrides() -> None:
    assert tuple(OVERRIDE_OPTIONS) == Overrides.keys() == OVERRIDE_KEYS


@pytest.mark.parametrize("path", STRATEGY_COMMANDS, ids=" ".join)
def test_every_strategy_command_takes_every_override(path: tuple[str, ...]) -> None:
    taken = {param.name for param in _command(path).params}
    missing = set(Overrides.keys()) - taken
    assert not missing, f"tttkit {' '.join(path)} lacks {sorted(missing)}"


def test_show_takes_the_flags_inpaint_takes() -> None:
    args = ["strategies", "show", "default", "--select", "best", "--refit", "--early-stop", "2",
            "--json"]  # fmt: skip
    result = CliRunner().invoke(app, args, env={"NO_COLOR": "1"})
    assert result.exit_code == 0, result.stderr
    assert '"select": "best"' in result.stdout and '"early_stop": 2' in result.stdout


def test_unknown_library_override_lists_the_valid_ones() -> None:
    with pytest.raises(TypeError, match="stpes") as info:
        Overrides.from_mapping({"stpes": 3})
    assert "steps" in str(info.value)
