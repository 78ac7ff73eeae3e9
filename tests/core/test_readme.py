"""The README's quick start is exactly two commands, and CI runs the second one."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def quick_start() -> list[str]:
    text = (REPO / "README.md").read_text()
    section = text.split("## Quick start", 1)[1]
    block = re.search(r"```bash\n(.*?)```", section, re.S)
    assert block, "no bash block in the quick start"
    return [line for line in block.group(1).splitlines() if line.strip()]


def test_quick_start_has_exactly_two_commands() -> None:
    commands = quick_start()
    assert len(commands) == 2
    assert commands[0].startswith("pip install -e . && tttkit inpaint ")


def test_ci_runs_the_readme_test_command() -> None:
    ci = (REPO / ".ci" / "run").read_text().splitlines()
    assert quick_start()[1] in ci


def own_network_example(text: str, heading: str = "TTT for your own network in five lines") -> str:
    """The first Python block after ``heading`` in ``text`` (the README's, by default)."""
    section = text.split(heading, 1)[1]
    block = re.search(r"```python\n(.*?)```", section, re.S)
    assert block, "no python block in the 'own network' section"
    return block.group(1)


def test_the_own_network_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The README's five lines finetune a bare module of the user's and write the photo."""
    import torch

    from tests.helpers import own_network_project
    from tttkit.io import read_image

    source = own_network_example((REPO / "README.md").read_text())
    lines = [ln for ln in source.splitlines() if ln and not ln.startswith(("import", "from"))]
    assert len(lines) == 5, lines
    monkeypatch.setitem(sys.modules, "my_project", own_network_project(tmp_path))
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {}
    exec(compile(source, "README.md", "exec"), namespace)
    result = namespace["result"]
    assert result.strategy.name == "default" and len(result.history) == 30  # type: ignore[attr-defined]
    assert not torch.equal(result.finetuned, result.raw)  # type: ignore[attr-defined]
    assert read_image(tmp_path / "photo_filled.png").shape == (3, 64, 64)
