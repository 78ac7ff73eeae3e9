"""The plugin guide's Python code runs as written: each block is executed, its preset is
registered and run offline, and its plugin-kit tests are called."""

from __future__ import annotations

import re
import types
from pathlib import Path

import pytest

from tests.helpers import photo_and_mask, tiny_backbone
from tttkit.api import adapt
from tttkit.plugins import PluginHost

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "plugin-guide.md"
BLOCKS = re.findall(r"```python\n(.*?)```", GUIDE.read_text(), flags=re.DOTALL)


def _module(source: str) -> types.ModuleType:
    module = types.ModuleType("guide_block")
    exec(compile(source, str(GUIDE), "exec"), module.__dict__)
    return module


def test_the_guide_has_its_code_blocks() -> None:
    assert len(BLOCKS) >= 2


def test_the_preset_example_registers_and_runs_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    (source,) = [b for b in BLOCKS if "tttkit_register_strategies" in b]
    monkeypatch.delenv("TTTKIT_PERCEPTUAL_WEIGHTS", raising=False)
    host = PluginHost(autoload=False).load()
    host.register(_module(source), "guide-example")
    spec = host.registry("strategies").get("example-quick")
    assert spec.parent == "baseline" and spec.losses.perceptual == 0
    image, mask = photo_and_mask(64)
    result = adapt(image, mask, backbone=tiny_backbone(), strategy=spec, steps=1, host=host)
    assert result.finetuned.shape == image.shape


def test_the_testing_example_runs(example_plugin: Path, tmp_path: Path) -> None:
    (source,) = [b for b in BLOCKS if "def test_" in b]
    module = _module(source)
    tests = [getattr(module, n) for n in dir(module) if n.startswith("test_")]
    assert len(tests) == 3
    for test in tests:
        test(tmp_path) if "tmp_path" in test.__code__.co_varnames else test()


def test_the_geometric_augmentation_example_passes_the_kit() -> None:
    (source,) = [b for b in BLOCKS if "class RandomZoom" in b]
    module = _module(source)  # the block ends by running check_augmentation on it
    assert module.RandomZoom.geometric


def test_every_other_block_runs_as_written() -> None:
    special = ("tttkit_register_strategies", "def test_", "class RandomZoom")
    others = [b for b in BLOCKS if not any(marker in b for marker in special)]
    assert others, "the guide's checkpoint example is gone"
    for source in others:
        _module(source)  # each asserts what it shows
