from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.helpers import write_module
from tttkit.cli import app
from tttkit.plugins import BUILTIN_PLUGINS, KINDS

ENV = {"NO_COLOR": "1", "COLUMNS": "200", "TERM": "dumb"}


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args), env=ENV)
    return result.exit_code, result.stdout, result.stderr


def test_list_json_has_every_kind_with_names() -> None:
    code, out, _ = run("list", "--json")
    assert code == 0
    data = json.loads(out)
    assert set(data) == set(KINDS)
    assert {e["name"] for e in data["strategies"]} >= {"baseline", "optimal", "combo-a"}
    assert {e["name"] for e in data["fillers"]} == {
        "random-pixels",
        "black",
        "random-image",
        "coarse",
    }
    free_form = next(e for e in data["finetune-masks"] if e["name"] == "free-form")
    assert free_form["options"]["alpha"] == 0.15
    assert free_form["plugin"] == "tttkit_strategies.finetune_masks"


def test_list_filters_by_kind_and_glob() -> None:
    code, out, _ = run("list", "strategies", "combo-*", "--json")
    assert code == 0
    assert [e["name"] for e in json.loads(out)["strategies"]] == [
        f"combo-{c}" for c in "abcdefghij"
    ]


def test_list_backbones_reports_parameter_counts_and_conventions() -> None:
    code, out, _ = run("list", "backbones", "--json")
    assert code == 0
    backbones = json.loads(out)["backbones"]
    assert backbones
    assert {"attention-net", "lama", "timm-unet", "torchscript"} <= {e["name"] for e in backbones}
    for entry in backbones:
        if entry.get("requires"):  # needs an option to exist (a TorchScript file's path)
            assert entry["parameters"] is None
            continue
        counts = entry["parameters"]
        assert counts["total"] == counts["generator"] + counts["discriminator"] > 0
        assert set(entry["conventions"]) == {
            "value_range",
            "hole_value",
            "pad_multiple",
            "working_size",
            "pad_mode",
            "trains_on_crops",
        }


def test_list_human_output_shows_plugin() -> None:
    code, out, _ = run("list", "fillers")
    assert code == 0
    assert "random-image" in out and "tttkit_strategies.fillers" in out


def test_unknown_kind_is_a_usage_error() -> None:
    code, out, err = run("list", "filers")
    assert code == 2 and out == ""
    assert "unknown kind 'filers' — did you mean 'fillers'?" in err


def test_unknown_strategy_is_a_one_line_usage_error() -> None:
    code, _, err = run("strategies", "show", "optimall")
    assert code == 2
    assert err.strip() == "error: unknown strategy 'optimall' — did you mean 'optimal'?"


def test_show_applies_flags_and_set_overrides() -> None:
    code, out, _ = run(
        "strategies", "show", "optimal", "--json", "--steps", "7", "--lr", "0.001",
        "--filler", "black", "--augment", "crop:0.3,hflip", "--freeze", "freeze-early",
        "--set", "finetune_mask.params.alpha=0.2", "--set", "losses.background=true",
    )  # fmt: skip
    assert code == 0
    data = json.loads(out)
    assert data["steps"] == 7 and data["optim"]["lr"] == 0.001
    assert data["filler"] == {"name": "black", "params": {}}
    assert [(s["ops"][0]["name"], s["p"]) for s in data["augment"]["steps"]] == [
        ("crop", 0.3),
        ("hflip", 0.5),
    ]
    assert data["freeze"]["name"] == "freeze-early"
    assert data["finetune_mask"]["params"]["alpha"] == 0.2
    assert data["losses"]["background"] is True
    assert data["changes_from_parent"]["steps"] == {"parent": 150, "this": 7}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--set", "optim.lrr=1"], "unknown field optim.lrr — did you mean optim.lr?"),
        (["--set", "steps=many"], "steps: expected an integer, got 'many'"),
        (
            ["--set", "finetune_mask.params.alpah=1"],
            "has no parameter 'alpah' — did you mean 'alpha'?",
        ),
        (["--filler", "blak"], "unknown filler 'blak' — did you mean 'black'?"),
        (["--augment", "crop:2"], "probability of 'crop' must lie in [0, 1]"),
        (["--augment", "cropp"], "unknown augmentation 'cropp' — did you mean 'crop'?"),
        (["--set", "steps"], "--set expects path.to.field=value"),
    ],
)
def test_bad_overrides_name_the_option(args: list[str], message: str) -> None:
    code, out, err = run("strategies", "show", "optimal", *args)
    assert code == 2 and out == ""
    assert message in err
    assert len(err.strip().splitlines()) == 1


def test_show_human_output_lists_changes_from_parent() -> None:
    code, out, _ = run("strategies", "show", "combo-j")
    assert code == 0
    assert "changes from combo-i" in out and "optim.lr" in out


def test_plugins_json_names_builtins() -> None:
    code, out, _ = run("plugins", "--json")
    assert code == 0
    data = json.loads(out)
    names = [p["name"] for p in data["plugins"]]
    assert names[: len(BUILTIN_PLUGINS)] == list(BUILTIN_PLUGINS)
    fillers = next(p for p in data["plugins"] if p["name"] == "tttkit_strategies.fillers")
    assert fillers["distribution"] == "tttkit" and fillers["builtin"] is True
    assert fillers["registered"] == {
        "fillers": ["black", "coarse", "random-image", "random-pixels"]
    }


def test_block_plugin_option(example_plugin: Path) -> None:
    code, out, _ = run("--block-plugin", "example", "plugins", "--json")
    assert code == 0
    assert "example" not in [p["name"] for p in json.loads(out)["plugins"]]
    code, out, _ = run("--no-plugin-autoload", "plugins", "--json")
    assert "example" not in [p["name"] for p in json.loads(out)["plugins"]]


def test_broken_plugin_fails_loudly(install_fake) -> None:
    site = install_fake("broken-dist", {"broken": "tttkit_broken_plugin"})
    write_module(site, "tttkit_broken_plugin", "raise RuntimeError('boom at import')\n")
    code, _, err = run("list")
    assert code == 1
    assert "plugin 'broken' from distribution 'broken-dist' failed to import" in err
    assert "boom at import" in err and "--debug" in err


def test_console_script_runs_with_example_plugin(example_plugin: Path) -> None:
    """The installed `tttkit` script, in a fresh process, finds the example plugin."""
    from tests.conftest import EXAMPLE_PLUGIN_SRC

    env = {
        **os.environ,
        **ENV,
        "PYTHONPATH": os.pathsep.join([str(example_plugin), str(EXAMPLE_PLUGIN_SRC)]),
    }
    script = Path(sys.executable).parent / "tttkit"
    out = subprocess.run(
        [str(script), "list", "--json"], env=env, capture_output=True, text=True, check=True
    ).stdout
    data = json.loads(out)
    assert "tiny-unet" in [e["name"] for e in data["backbones"]]
    assert "example-quick" in [e["name"] for e in data["strategies"]]
    plugins = json.loads(
        subprocess.run(
            [str(script), "plugins", "--json"], env=env, capture_output=True, text=True, check=True
        ).stdout
    )["plugins"]
    example = next(p for p in plugins if p["name"] == "example")
    assert example["distribution"] == "tttkit-example-plugin" and example["builtin"] is False


def test_list_says_a_bare_word_is_a_glob_on_whole_names() -> None:
    """Issue 30, item 11: no empty table without a word on why."""
    code, out, _ = run("list", "backbones", "compact")
    assert code == 0
    assert out.strip() == (
        "no backbones match 'compact' (a glob on whole names: try '*compact*', which matches "
        "attention-net-compact)"
    )
    code, out, _ = run("list", "fillers", "mini")
    assert code == 0
    assert out.strip() == (
        "no fillers match 'mini' (a glob on whole names, e.g. '*mini*'; names: black, coarse, "
        "random-image, random-pixels)"
    )
    code, out, _ = run("list", "fillers", "x*")
    assert (
        out.strip() == "no fillers match 'x*' (names: black, coarse, random-image, random-pixels)"
    )


def test_list_table_shows_options_and_defaults() -> None:
    """The table shows what `--json` does: each option with its default (issue 30, item 11)."""
    code, out, _ = run("list", "fillers")
    assert code == 0 and "options (default)" in out
    assert "folder=None, exclude=()" in out
    code, out, _ = run("list", "backbones", "torchscript")
    assert code == 0
    flat = " ".join(out.split())  # the table wraps long cells
    assert "path (required)" in flat and "pad_multiple=8" in flat
    code, out, _ = run("list", "strategies", "combo-b")
    assert "parent" in out and "│ combo-a" in out
