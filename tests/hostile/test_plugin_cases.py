"""Broken third-party plugins: each is named (with its distribution) in one line, exit code 1,
and `--block-plugin` is offered; the traceback only on request."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.helpers import write_module
from tttkit.cli import app

ENV = {"NO_COLOR": "1", "COLUMNS": "200", "TERM": "dumb"}

HEADER = "from tttkit import hookimpl\nfrom tttkit.config import StrategySpec\n"

PLUGINS = [
    ("import-error", "raise RuntimeError('boom at import')\n", "failed to import", "list"),
    ("exit-at-import", "import sys\nsys.exit(0)\n", "failed to import", "list"),
    (
        "hook-raises",
        HEADER + "@hookimpl\ndef tttkit_register_fillers(register):\n    raise KeyError('x')\n",
        "failed in tttkit_register_fillers",
        "list",
    ),
    (
        "hook-exits",
        HEADER + "@hookimpl\ndef tttkit_register_fillers(register):\n    raise SystemExit(3)\n",
        "failed in tttkit_register_fillers",
        "list",
    ),
    (
        "not-a-spec",
        HEADER + "@hookimpl\ndef tttkit_register_strategies(register):\n"
        "    register({'name': 'dict-strategy'})\n",
        "not a StrategySpec",
        "list",
    ),
    (
        "not-callable",
        HEADER + "@hookimpl\ndef tttkit_register_fillers(register):\n"
        "    register('broken-filler', 42)\n",
        "non-callable factory",
        "list",
    ),
    (
        "hook-typo",
        HEADER + "@hookimpl\ndef tttkit_register_filler(register):\n    pass\n",
        "tttkit_register_fillers",
        "list",
    ),
    (
        "lookup-while-registering",
        HEADER + "import tttkit\n@hookimpl\ndef tttkit_register_strategies(register):\n"
        "    register(tttkit.get_strategy('baseline').derive('mine', 'x'))\n",
        "while registering",
        "list",
    ),
    (
        "hook-raises-under-inpaint",
        HEADER + "@hookimpl\ndef tttkit_register_strategies(register):\n    1 / 0\n",
        "ZeroDivisionError",
        "strategies show default",
    ),
]


@pytest.mark.parametrize(
    ("module", "source", "says", "command"), PLUGINS, ids=[p[0] for p in PLUGINS]
)
def test_broken_plugin_is_named(
    install_fake: Callable[[str, dict[str, str]], Path],
    module: str,
    source: str,
    says: str,
    command: str,
) -> None:
    name = "tttkit_hostile_" + module.replace("-", "_")
    site = install_fake("hostile-dist", {"hostile": name})
    write_module(site, name, source)
    result = CliRunner().invoke(app, command.split(), env=ENV)
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert result.exit_code == 1, result.stderr
    message = result.stderr
    assert "plugin 'hostile'" in message and says in message
    assert "--block-plugin hostile" in message and "Traceback" not in message
    assert len(message.strip().splitlines()) == 1


@pytest.mark.parametrize("how", ["--debug", "TTTKIT_TRACEBACK=1"])
def test_traceback_on_request(
    install_fake: Callable[[str, dict[str, str]], Path], how: str
) -> None:
    site = install_fake("hostile-dist", {"hostile": "tttkit_hostile_tb"})
    write_module(site, "tttkit_hostile_tb", "raise RuntimeError('boom at import')\n")
    flags, env = (["--debug"], ENV) if how == "--debug" else ([], {**ENV, "TTTKIT_TRACEBACK": "1"})
    result = CliRunner().invoke(app, [*flags, "list"], env=env)
    assert result.exit_code == 1 and "Traceback" in result.stderr and "boom" in result.stderr
    again = CliRunner().invoke(app, ["list"], env=ENV)  # the flag lasts one invocation
    assert again.exit_code == 1 and "Traceback" not in again.stderr


def test_blocked_broken_plugin_lets_commands_run(
    install_fake: Callable[[str, dict[str, str]], Path],
) -> None:
    site = install_fake("hostile-dist", {"hostile": "tttkit_hostile_blocked"})
    write_module(site, "tttkit_hostile_blocked", "import sys\nsys.exit(0)\n")
    result = CliRunner().invoke(app, ["--block-plugin", "hostile", "list", "fillers"], env=ENV)
    assert result.exit_code == 0 and "random-pixels" in result.stdout


def test_deriving_from_a_preset_object_inside_a_hook_works(
    install_fake: Callable[[str, dict[str, str]], Path],
) -> None:
    site = install_fake("presets-dist", {"presets": "tttkit_presets_user"})
    source = HEADER + (
        "from tttkit_strategies.presets import preset\n@hookimpl\n"
        "def tttkit_register_strategies(register):\n"
        "    register(preset('baseline').derive('mine', 'baseline, 5 steps', {'steps': 5}))\n"
    )
    write_module(site, "tttkit_presets_user", source)
    result = CliRunner().invoke(app, ["strategies", "show", "mine", "--json"], env=ENV)
    assert result.exit_code == 0, result.stderr
    assert '"parent": "baseline"' in result.stdout


CRASHING_FILLER = HEADER + (
    "class Crash:\n"
    "    def __call__(self, image, user_mask, context):\n"
    "        return 1 / 0\n"
    "@hookimpl\n"
    "def tttkit_register_fillers(register):\n"
    "    register('crashing-filler', Crash)\n"
)


@pytest.mark.parametrize("debug", [False, True], ids=["plain", "debug"])
def test_an_exception_in_plugin_code_during_a_run_names_the_plugin(
    install_fake: Callable[[str, dict[str, str]], Path], tmp_path: Path, debug: bool
) -> None:
    from tests.helpers import photo_and_mask
    from tttkit.io import write_image

    site = install_fake("crash-dist", {"crashy": "tttkit_hostile_crashing_filler"})
    write_module(site, "tttkit_hostile_crashing_filler", CRASHING_FILLER)
    image, mask = photo_and_mask(64)
    write_image(tmp_path / "photo.png", image)
    write_image(tmp_path / "mask.png", mask.expand(3, -1, -1))
    out = tmp_path / "out.png"
    args = ["inpaint", str(tmp_path / "photo.png"), "--mask", str(tmp_path / "mask.png"),
            "--out", str(out), "--filler", "crashing-filler", "--steps", "1",
            "--device", "cpu"]  # fmt: skip
    result = CliRunner().invoke(app, ["--debug", *args] if debug else args, env=ENV)
    assert result.exit_code == 1, result.stderr
    assert not out.exists()
    last = result.stderr.strip().splitlines()[-1]
    assert "plugin 'crashy' from distribution 'crash-dist'" in last and "ZeroDivisionError" in last
    if debug:
        assert "Traceback" in result.stderr and "tttkit_hostile_crashing_filler" in result.stderr
    else:
        assert "Traceback" not in result.stderr and "--debug" in last  # above it: the progress bar


def test_the_library_raises_the_plugin_error_with_the_original_as_cause(
    install_fake: Callable[[str, dict[str, str]], Path],
) -> None:
    from tests.helpers import photo_and_mask, tiny_backbone
    from tttkit.api import adapt
    from tttkit.errors import PluginRunError
    from tttkit.plugins import PluginHost

    site = install_fake("crash-dist", {"crashy": "tttkit_hostile_crashing_lib"})
    write_module(site, "tttkit_hostile_crashing_lib", CRASHING_FILLER)
    host = PluginHost().load()
    image, mask = photo_and_mask(64)
    with pytest.raises(PluginRunError, match="plugin 'crashy'") as info:
        adapt(image, mask, backbone=tiny_backbone(), filler="crashing-filler", steps=1, host=host)
    assert isinstance(info.value.__cause__, ZeroDivisionError)


def test_a_failure_outside_every_plugin_passes_unchanged() -> None:
    from tttkit.plugins import PluginHost

    host = PluginHost(autoload=False).load()
    with pytest.raises(ZeroDivisionError), host.naming_failures():
        1 / 0  # noqa: B018 — raised in the test module, which is no plugin


# -- a run that trusts no plugin (issue 30): whatever plugin code does while tttkit runs, one
# line names the plugin and its distribution, nothing is written, the user's file stays.

UNTRUSTED = HEADER + (
    "import torch\n"
    "from torch import nn\n"
    "from tttkit.backbone import Backbone, Conventions, GeneratorOutput\n"
    "class NanNet(Backbone):\n"
    "    def __init__(self, width: int = 4):\n"
    "        super().__init__(Conventions((0.0, 1.0), working_size=64), {'width': width})\n"
    "        self.generator = nn.Conv2d(4, 3, 3, padding=1)\n"
    "        torch.empty(width)  # width=-3: a RuntimeError, not a ValueError\n"
    "    def native_generate(self, image, mask):\n"
    "        out = self.generator(torch.cat([image, mask], 1))\n"
    "        return GeneratorOutput(out * float('nan'))\n"
    "    def layer_groups(self):\n"
    "        return {'generator.conv': self.generator}\n"
    "class CrashingFiller:\n"
    "    def __init__(self):\n"
    "        raise RuntimeError('the filler factory broke')\n"
    "@hookimpl\n"
    "def tttkit_register_backbones(register):\n"
    "    register('nan-net', NanNet)\n"
    "@hookimpl\n"
    "def tttkit_register_fillers(register):\n"
    "    register('crashing-filler', CrashingFiller)\n"
    "@hookimpl\n"
    "def tttkit_register_freezing_policies(register):\n"
    "    register('bad-freeze', lambda: lambda groups: {'generator.does-not-exist'})\n"
    "    register('freeze-all', lambda: lambda groups: set(groups))\n"
)

#: (id, extra arguments, photo size, exit code, what the one line says)
UNTRUSTED_RUNS = [
    (
        "backbone-factory-raises",
        ["--backbone", "nan-net", "--backbone-option", "width=-3"],
        64,
        1,
        ["building backbone 'nan-net'", "RuntimeError", "negative dimension"],
    ),
    (
        "component-factory-raises",
        ["--weights", "{weights}", "--filler", "crashing-filler"],
        64,
        1,
        ["building filler 'crashing-filler'", "RuntimeError", "the filler factory broke"],
    ),
    (
        "fill-is-nan",
        ["--weights", "{nan_weights}"],
        64,
        1,
        ["backbone 'nan-net' (NanNet", "not finite", "step 0"],
    ),
    (
        "fill-is-nan-in-windows",
        ["--weights", "{nan_weights}", "--windows", "crop"],
        200,
        1,
        ["backbone 'nan-net' (NanNet", "not finite", "step 0"],
    ),
    (
        "policy-freezes-a-missing-group",
        ["--weights", "{weights}", "--freeze", "bad-freeze"],
        64,
        1,
        ["freezing policy 'bad-freeze'", "'generator.does-not-exist'", "generator.residual.1"],
    ),
    (
        "policy-freezes-everything",
        ["--weights", "{weights}", "--freeze", "freeze-all"],
        64,
        2,
        ["freezing policy 'freeze-all'", "leaves nothing", "--steps 0"],
    ),
]


@pytest.mark.parametrize(
    ("extra", "size", "code", "says"),
    [r[1:] for r in UNTRUSTED_RUNS],
    ids=[r[0] for r in UNTRUSTED_RUNS],
)
def test_a_run_trusts_no_plugin(
    install_fake: Callable[[str, dict[str, str]], Path],
    tmp_path: Path,
    extra: list[str],
    size: int,
    code: int,
    says: list[str],
) -> None:
    import importlib

    from tests.helpers import photo_and_mask, tiny_backbone
    from tttkit.checkpoint import save_backbone
    from tttkit.io import write_image

    site = install_fake("untrusted-dist", {"untrusted": "tttkit_hostile_untrusted"})
    write_module(site, "tttkit_hostile_untrusted", UNTRUSTED)
    plugin = importlib.import_module("tttkit_hostile_untrusted")
    save_backbone(plugin.NanNet(), "nan-net", tmp_path / "nan.safetensors")
    save_backbone(tiny_backbone(), "attention-net-compact", tmp_path / "weights.safetensors")
    image, mask = photo_and_mask(size)
    write_image(tmp_path / "photo.png", image)
    write_image(tmp_path / "mask.png", mask)
    out = tmp_path / "out.png"
    out.write_bytes(b"the user's own file")
    names = {
        "weights": tmp_path / "weights.safetensors",
        "nan_weights": tmp_path / "nan.safetensors",
    }
    args = ["inpaint", str(tmp_path / "photo.png"), "--mask", str(tmp_path / "mask.png"),
            "--out", str(out), "--steps", "2", "--device", "cpu",
            *(a.format(**names) for a in extra)]  # fmt: skip
    result = CliRunner().invoke(app, args, env=ENV)
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert result.exit_code == code, result.stderr
    assert out.read_bytes() == b"the user's own file"  # nothing written
    assert "Traceback" not in result.stderr
    (last,) = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    for needle in says:
        assert needle in last, f"{needle!r} not in {last}"
    if code == 1:  # a broken plugin: named with its distribution
        assert "plugin 'untrusted' from distribution 'untrusted-dist'" in last


def test_a_factory_traceback_on_request(
    install_fake: Callable[[str, dict[str, str]], Path], tmp_path: Path
) -> None:
    from tests.helpers import photo_and_mask
    from tttkit.io import write_image

    site = install_fake("untrusted-dist", {"untrusted": "tttkit_hostile_untrusted_tb"})
    write_module(site, "tttkit_hostile_untrusted_tb", UNTRUSTED)
    image, mask = photo_and_mask(64)
    write_image(tmp_path / "photo.png", image)
    write_image(tmp_path / "mask.png", mask)
    args = ["--debug", "inpaint", str(tmp_path / "photo.png"), "--mask",
            str(tmp_path / "mask.png"), "--out", str(tmp_path / "out.png"), "--backbone",
            "nan-net", "--backbone-option", "width=-3", "--device", "cpu"]  # fmt: skip
    result = CliRunner().invoke(app, args, env=ENV)
    assert result.exit_code == 1, result.stderr
    assert "Traceback" in result.stderr and "tttkit_hostile_untrusted_tb" in result.stderr
    assert "plugin 'untrusted' from distribution 'untrusted-dist'" in result.stderr
    assert not (tmp_path / "out.png").exists()
