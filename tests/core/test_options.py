"""Options are declared once: every command that runs or shows strategies takes every override,
every command that runs test-time training takes every user-set run option, and the library's
:func:`tttkit.adapt` takes both as keywords."""

from __future__ import annotations

import inspect
import warnings

import pytest
import torch
import typer
from typer.testing import CliRunner

import tttkit
from tests.helpers import photo_and_mask, tiny_backbone
from tttkit.api import OVERRIDE_KEYS
from tttkit.cli import app
from tttkit.cli._common import OPTION_DEFAULTS, OVERRIDE_OPTIONS, RUN_OPTIONS
from tttkit.options import Overrides, RunOptions

#: The commands that run or show strategies.
STRATEGY_COMMANDS = (("inpaint",), ("eval",), ("strategies", "show"))
#: The commands that run test-time training.
RUN_COMMANDS = (("inpaint",), ("eval",))
#: Run options a command decides itself (from --json, from the metrics it needs).
DECIDED_BY_THE_COMMAND = {"show_progress", "keep_outputs"}


def _command(path: tuple[str, ...]):  # type: ignore[no-untyped-def]
    command = typer.main.get_command(app)
    for name in path:
        command = command.commands[name]  # type: ignore[attr-defined]
    return command


def test_the_library_and_the_cli_declare_the_same_overrides() -> None:
    assert tuple(OVERRIDE_OPTIONS) == Overrides.names() == OVERRIDE_KEYS


@pytest.mark.parametrize("path", STRATEGY_COMMANDS, ids=" ".join)
def test_every_strategy_command_takes_every_override(path: tuple[str, ...]) -> None:
    taken = {param.name for param in _command(path).params}
    missing = set(Overrides.names()) - taken
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


@pytest.mark.parametrize("path", RUN_COMMANDS, ids=" ".join)
def test_every_run_command_takes_every_user_set_run_option(path: tuple[str, ...]) -> None:
    assert set(RUN_OPTIONS) == set(RunOptions.names()) - DECIDED_BY_THE_COMMAND
    taken = {param.name for param in _command(path).params}
    missing = set(RUN_OPTIONS) - taken
    assert not missing, f"tttkit {' '.join(path)} lacks {sorted(missing)}"
    assert set(OPTION_DEFAULTS) <= set(RUN_OPTIONS)


def test_adapt_takes_every_run_option_with_its_default() -> None:
    parameters = inspect.signature(tttkit.adapt).parameters
    default = RunOptions()
    for name in RunOptions.names():
        assert parameters[name].default == getattr(default, name), name


def test_adapt_takes_run_options_as_one_value_or_as_keywords_not_both() -> None:
    image, mask = photo_and_mask(size=32)
    net = tiny_backbone()
    by_value = tttkit.adapt(image, mask, backbone=net, steps=1, options=RunOptions(seed=5))
    by_keyword = tttkit.adapt(image, mask, backbone=net, steps=1, seed=5)
    assert by_value.seed == by_keyword.seed == 5
    assert torch.equal(by_value.finetuned, by_keyword.finetuned)
    with pytest.raises(TypeError, match="seed"):
        tttkit.adapt(image, mask, backbone=net, steps=1, options=RunOptions(), seed=5)


def test_old_names_still_work_with_a_deprecation_warning() -> None:
    image, mask = photo_and_mask(size=32)
    with pytest.warns(DeprecationWarning, match="windows"):
        result = tttkit.adapt(image, mask, backbone=tiny_backbone(), steps=1, region="full")
    with pytest.warns(DeprecationWarning, match="Result.windows"):
        assert result.regions is None
    from tttkit.engine import finetune

    spec = tttkit.override(tttkit.get_strategy("default"), steps=1)
    with pytest.warns(DeprecationWarning, match="run_ttt"):
        old = finetune(tiny_backbone(), image, mask, spec, seed=2)
    assert old.seed == 2 and len(old.history) == 1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import tttkit.losses as old_losses

        import tttkit.engine.losses as new_losses

    assert old_losses is new_losses
