"""The plugin guide's Python code runs as written: each block is executed, its preset is
registered and run offline, and its plugin-kit tests are called."""

from __future__ import annotations

import re
import sys
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
    assert len(tests) == 6
    for test in tests:
        test(tmp_path) if "tmp_path" in test.__code__.co_varnames else test()


def test_the_geometric_augmentation_example_passes_the_kit() -> None:
    (source,) = [b for b in BLOCKS if "class RandomZoom" in b]
    module = _module(source)  # the block ends by running check_augmentation on it
    assert module.RandomZoom.geometric


def test_the_own_network_block_is_the_readmes_and_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.core.test_readme import own_network_example
    from tests.helpers import own_network_project

    source = own_network_example(GUIDE.read_text(), "Your own `nn.Module` in five lines")
    assert source == own_network_example((GUIDE.parents[1] / "README.md").read_text())
    monkeypatch.setitem(sys.modules, "my_project", own_network_project(tmp_path))
    monkeypatch.chdir(tmp_path)
    module = _module(source)
    assert (tmp_path / "photo_filled.png").is_file() and len(module.result.history) == 30


def test_the_registered_own_network_passes_the_kit_and_runs_by_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.helpers import own_network_project
    from tttkit.checkpoint import save_backbone
    from tttkit.testing import check_backbone

    (source,) = [b for b in BLOCKS if "class MyUNetBackbone" in b]
    monkeypatch.setitem(sys.modules, "my_project", own_network_project(tmp_path))
    module = _module(source)
    check_backbone(module.MyUNetBackbone, {"width": 8}, name="my-unet", folder=tmp_path)
    host = PluginHost(autoload=False).load()
    host.register(module, "guide-own-network")
    save_backbone(module.MyUNetBackbone(), "my-unet", tmp_path / "mine.safetensors")
    image, mask = photo_and_mask(64)
    result = adapt(image, mask, weights=tmp_path / "mine.safetensors", steps=1, host=host)
    assert result.network is not None and type(result.network).__name__ == "MyUNetBackbone"


def test_the_swapping_example_derives_presets_that_run(monkeypatch: pytest.MonkeyPatch) -> None:
    (source,) = [b for b in BLOCKS if '"example-flips"' in b]
    monkeypatch.delenv("TTTKIT_PERCEPTUAL_WEIGHTS", raising=False)
    module = _module(source)  # it asserts what it shows
    flips, softer = module.FLIPS, module.SOFTER
    assert flips.parent == softer.parent == "default"
    assert [op.name for op in flips.augment.steps[0].ops] == ["hflip", "vflip"]
    host = PluginHost(autoload=False).load()
    image, mask = photo_and_mask(64)
    for spec in (flips, softer):
        result = adapt(image, mask, backbone=tiny_backbone(), strategy=spec, steps=2, host=host)
        assert result.finetuned.shape == image.shape


def test_the_guides_command_line_paths_set_one_pipeline_step() -> None:
    import json

    from typer.testing import CliRunner

    from tttkit.cli import app

    # (as the guide writes it for a shell, as the shell passes it)
    sets = [
        ("augment.steps.0.p=0.3", "augment.steps.0.p=0.3"),
        ("augment.steps.1.ops.0.params.sigma=2", "augment.steps.1.ops.0.params.sigma=2"),
        ("""finetune_mask='{"name": "full-image"}'""", 'finetune_mask={"name": "full-image"}'),
    ]
    guide = " ".join(GUIDE.read_text().split())
    args = ["strategies", "show", "default", "--json"]
    for written, passed in sets:
        assert f"`--set {written}`" in guide
        args += ["--set", passed]
    result = CliRunner().invoke(app, args, env={"NO_COLOR": "1"})
    assert result.exit_code == 0, result.stderr
    shown = json.loads(result.stdout)
    steps = shown["augment"]["steps"]
    assert steps[0]["p"] == 0.3 and steps[1]["ops"][0]["params"] == {"sigma": 2}
    assert shown["finetune_mask"] == {"name": "full-image", "params": {}}


def test_every_other_block_runs_as_written() -> None:
    special = ("tttkit_register_strategies", "def test_", "class RandomZoom", "from my_project",
               '"example-flips"')  # fmt: skip
    others = [b for b in BLOCKS if not any(marker in b for marker in special)]
    assert others, "the guide's checkpoint example is gone"
    for source in others:
        _module(source)  # each asserts what it shows
