"""Helpers shared by tests (fixtures live in conftest.py)."""

from __future__ import annotations

import textwrap
from pathlib import Path


def make_distribution(
    root: Path, name: str, entry_points: dict[str, str], version: str = "0.1.0"
) -> Path:
    """Write a minimal installed-distribution record (``.dist-info``) under ``root``."""
    info = root / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    lines = "\n".join(f"{k} = {v}" for k, v in entry_points.items())
    (info / "entry_points.txt").write_text(f"[tttkit]\n{lines}\n")
    return root


def write_module(directory: Path, name: str, source: str) -> Path:
    """Write a Python module ``name`` into ``directory`` (on sys.path in the tests that use it)."""
    path = directory / f"{name}.py"
    path.write_text(textwrap.dedent(source))
    return path
