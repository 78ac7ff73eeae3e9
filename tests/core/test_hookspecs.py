"""Every hook is documented: in its docstring (each parameter) and in the plugin guide."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

from tttkit import hookspecs

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "plugin-guide.md"
HOOKS = [name for name in dir(hookspecs) if name.startswith("tttkit_")]


def test_there_is_a_hook_per_plugin_kind_and_lifecycle_event() -> None:
    assert set(HOOKS) == {
        "tttkit_register_backbones",
        "tttkit_register_finetune_masks",
        "tttkit_register_fillers",
        "tttkit_register_augmentations",
        "tttkit_register_freezing_policies",
        "tttkit_register_eval_masks",
        "tttkit_register_reference_aligners",
        "tttkit_register_strategies",
        "tttkit_run_start",
        "tttkit_step_end",
        "tttkit_run_end",
    }


@pytest.mark.parametrize("name", HOOKS)
def test_hook_docstring_documents_every_parameter(name: str) -> None:
    function = getattr(hookspecs, name)
    doc = inspect.getdoc(function) or ""
    assert doc, f"{name} has no docstring"
    assert "Args:" in doc, f"{name} docstring has no Args section"
    args_section = doc.split("Args:", 1)[1]
    for parameter in inspect.signature(function).parameters:
        assert f"{parameter}:" in args_section, f"{name} does not document {parameter!r}"


@pytest.mark.parametrize("name", HOOKS)
def test_hook_is_in_the_plugin_guide_with_its_signature(name: str) -> None:
    parameters = ", ".join(inspect.signature(getattr(hookspecs, name)).parameters)
    assert f"### `{name}({parameters})`" in GUIDE.read_text()
