"""The tree shows the architecture: the core imports no built-in plugin (it finds them by
registered name, as it finds a third party's), and no plugin imports the engine's internals
(:mod:`tttkit.engine`): plugins build on the top-level plugin surface only."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CORE = ROOT / "src" / "tttkit"
PLUGINS = [ROOT / "src" / "tttkit_strategies", ROOT / "src" / "tttkit_backbones",
           ROOT / "examples"]  # fmt: skip


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _python_files(*folders: Path) -> list[Path]:
    return sorted(p for folder in folders for p in folder.rglob("*.py"))


@pytest.mark.parametrize("path", _python_files(CORE), ids=lambda p: str(p.relative_to(CORE)))
def test_the_core_imports_no_built_in_plugin(path: Path) -> None:
    built_in = {n for n in _imports(path) if n.split(".")[0] in ("tttkit_strategies",
                                                                  "tttkit_backbones")}  # fmt: skip
    assert not built_in, f"{path.relative_to(ROOT)} imports {sorted(built_in)}"


def test_no_plugin_imports_the_engine() -> None:
    offenders = {
        str(path.relative_to(ROOT)): sorted(
            n for n in _imports(path) if n.startswith("tttkit.engine")
        )
        for path in _python_files(*PLUGINS)
    }
    assert not {k: v for k, v in offenders.items() if v}


def test_old_module_paths_are_the_moved_modules_and_warn(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib
    import sys

    from tttkit._moved import MOVED

    for old, new in MOVED.items():
        monkeypatch.delitem(sys.modules, old, raising=False)  # import afresh: the warning fires
        with pytest.warns(DeprecationWarning, match=new.replace(".", r"\.")):
            module = importlib.import_module(old)
        assert module is importlib.import_module(new)


def test_the_command_line_starts_without_torch() -> None:
    """`tttkit --help` answers at once: importing the CLI and the top-level package loads no torch
    (heavy modules are imported where they are used)."""
    import subprocess
    import sys

    code = (
        "import sys, tttkit, tttkit.cli; "
        "heavy = [m for m in ('torch', 'kornia', 'timm', 'cv2') if m in sys.modules]; "
        "print(','.join(heavy))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "", f"importing the CLI loaded {done.stdout.strip()}"


@pytest.mark.parametrize("args", [["--help"], ["inpaint", "--help"], ["eval", "--help"]])
def test_help_loads_no_plugin_and_no_torch(args: list[str]) -> None:
    import subprocess
    import sys

    code = (
        "import sys; from tttkit.cli import app; "
        f"sys.argv = ['tttkit', *{args!r}]\n"
        "try:\n    app()\nexcept SystemExit:\n    pass\n"
        "print('torch' in sys.modules, file=sys.stderr)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "Usage" in done.stdout and done.stderr.strip().splitlines()[-1] == "False"
