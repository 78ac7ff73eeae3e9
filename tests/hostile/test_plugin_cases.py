"""Broken third-party plugins: each is named (with its distribution) in one line, exit code 1,
and `--block-plugin` is offered; the traceback only on request."""

from __future__ import annotations

import json
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
    (
        "registers-a-taken-name",
        HEADER + "@hookimpl\ndef tttkit_register_fillers(register):\n"
        "    register('black', lambda: None)\n",
        "filler 'black' is registered twice: by plugin 'tttkit_strategies.fillers' from "
        "distribution 'tttkit' and by plugin 'hostile' from distribution 'hostile-dist'",
        "list fillers",
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


#: Plugins of two distributions that register names already taken (issue 30, item 9).
CLASHING = {
    "tttkit_hostile_clash_a": HEADER
    + (
        "@hookimpl\ndef tttkit_register_fillers(register):\n"
        "    register('black', lambda: None)\n    register('grey', lambda: None)\n"
    ),
    "tttkit_hostile_clash_b": HEADER
    + (
        "@hookimpl\ndef tttkit_register_fillers(register):\n    register('grey', lambda: None)\n"
        "@hookimpl\ndef tttkit_register_augmentations(register):\n"
        "    register('hflip', lambda: None)\n"
        "@hookimpl\ndef tttkit_register_strategies(register):\n"
        "    from tttkit_strategies.presets import DEFAULT\n    register(DEFAULT)\n"
    ),
}


@pytest.mark.parametrize("command", ["list", "strategies show default"])
def test_every_name_clash_is_reported_with_its_distributions(
    install_fake: Callable[[str, dict[str, str]], Path], command: str
) -> None:
    install_fake("clash-a-dist", {"clash-a": "tttkit_hostile_clash_a"})
    site = install_fake("clash-b-dist", {"clash-b": "tttkit_hostile_clash_b"})
    for module, source in CLASHING.items():
        write_module(site, module, source)
    result = CliRunner().invoke(app, command.split(), env=ENV)
    assert result.exit_code == 1, result.stderr  # a broken plugin set, not a usage error
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: 4 names are registered more than once: ")
    a, b = "from distribution 'clash-a-dist'", "from distribution 'clash-b-dist'"
    for clash in (
        f"filler 'black' by plugin 'tttkit_strategies.fillers' from distribution 'tttkit' and "
        f"by plugin 'clash-a' {a}",
        f"filler 'grey' by plugin 'clash-a' {a} and by plugin 'clash-b' {b}",
        f"augmentation 'hflip' by plugin 'tttkit_strategies.augmentations' from distribution "
        f"'tttkit' and by plugin 'clash-b' {b}",
        f"strategy 'default' by plugin 'tttkit_strategies.defaults' from distribution 'tttkit' "
        f"and by plugin 'clash-b' {b}",
    ):
        assert clash in line, f"{clash!r} not in {line}"
    assert "--block-plugin NAME" in line and "Traceback" not in result.stderr
    blocked = CliRunner().invoke(
        app, ["--block-plugin", "clash-a", "--block-plugin", "clash-b", *command.split()], env=ENV
    )
    assert blocked.exit_code == 0, blocked.stderr


def test_the_library_raises_one_error_with_every_clash(
    install_fake: Callable[[str, dict[str, str]], Path],
) -> None:
    from tttkit.errors import DuplicateNameError, PluginLoadError
    from tttkit.plugins import PluginHost

    install_fake("clash-a-dist", {"clash-a": "tttkit_hostile_clash_a"})
    site = install_fake("clash-b-dist", {"clash-b": "tttkit_hostile_clash_b"})
    for module, source in CLASHING.items():
        write_module(site, module, source)
    host = PluginHost().load()
    with pytest.raises(DuplicateNameError) as info:
        host.registry("backbones")  # any kind: the registries are built together
    assert isinstance(info.value, PluginLoadError) and info.value.plugin is None
    assert info.value.clashes == (
        ("filler", "black", ("tttkit_strategies.fillers", "clash-a")),
        ("filler", "grey", ("clash-a", "clash-b")),
        ("augmentation", "hflip", ("tttkit_strategies.augmentations", "clash-b")),
        ("strategy", "default", ("tttkit_strategies.defaults", "clash-b")),
    )


#: A plugin set broken three ways: a hook that raises (after registering one name), a name
#: clash, a failed import (issue 30, item 10).
BROKEN_SET = {
    "tttkit_hostile_survey_hook": HEADER
    + (
        "@hookimpl\ndef tttkit_register_fillers(register):\n"
        "    register('half-registered', lambda: None)\n    raise KeyError('x')\n"
    ),
    "tttkit_hostile_survey_clash": HEADER
    + "@hookimpl\ndef tttkit_register_fillers(register):\n    register('black', lambda: None)\n",
    "tttkit_hostile_survey_import": "raise RuntimeError('boom at import')\n",
}


@pytest.mark.parametrize("as_json", [False, True], ids=["table", "json"])
def test_plugins_lists_every_plugin_and_which_is_broken(
    install_fake: Callable[[str, dict[str, str]], Path], as_json: bool
) -> None:
    """`tttkit plugins` is the command to run when a plugin is broken: it lists every plugin,
    the broken ones with why, and exits 1."""
    for plugin, module in zip(("hook", "clash", "import"), BROKEN_SET, strict=True):
        site = install_fake(f"{plugin}-dist", {plugin: module})
    for module, source in BROKEN_SET.items():
        write_module(site, module, source)
    result = CliRunner().invoke(app, ["plugins", *(["--json"] if as_json else [])], env=ENV)
    assert result.exit_code == 1, result.stderr
    assert result.stderr.strip() == (
        "error: 3 plugins are broken ('clash', 'hook', 'import'); skip each with "
        "--block-plugin NAME"
    )
    problems = {
        "hook": "failed in tttkit_register_fillers: KeyError: 'x'",
        "clash": "registered filler 'black', already registered by plugin "
        "'tttkit_strategies.fillers' from distribution 'tttkit'",
        "import": "plugin 'import' from distribution 'import-dist' failed to import: "
        "RuntimeError: boom at import",
    }
    if as_json:
        data = json.loads(result.stdout)
        rows = {row["name"]: row for row in data["plugins"]}
        assert data["broken"] == ["clash", "hook", "import"]
        assert set(rows) >= {"tttkit_strategies.fillers", "hook", "clash", "import"}
        assert {name: rows[name]["problems"] for name in problems} == {
            name: [problem] for name, problem in problems.items()
        }
        assert rows["hook"]["registered"] == {"fillers": ["half-registered"]}
        assert rows["tttkit_strategies.fillers"]["problems"] == []
        assert rows["import"]["distribution"] == "import-dist"
    else:
        table = " ".join(result.stdout.split())  # the table wraps long cells
        for name, problem in problems.items():
            assert f"{name} │ {name}-dist 0.1.0 │" in table
            assert f"BROKEN: {problem}" in table
        assert "tttkit_strategies.fillers" in table and "half-registered" in table
    one = CliRunner().invoke(app, ["--block-plugin", "clash", "--block-plugin", "import",
                                   "plugins"], env=ENV)  # fmt: skip
    assert one.exit_code == 1
    assert one.stderr.strip() == "error: plugin 'hook' is broken; skip it with --block-plugin hook"


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
    "    # declared, but not packed into the wheel (no package data): the file is not there\n"
    "    from pathlib import Path\n"
    "    shipped = Path(__file__).parent / 'weights' / 'net.pt'\n"
    "    register('shipped-net', lambda: NanNet(), weights=shipped)\n"
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
        "shipped-weights-missing",
        ["--backbone", "shipped-net"],
        64,
        1,
        ["backbone 'shipped-net'", "weights/net.pt", "does not exist", "package data"],
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


# -- what a component hands the engine each step (issue 30, item 5): checked as the run goes,
# named with its plugin and the step, exit code 1, nothing written.

CONTRACTS = HEADER + (
    "import torch\n"
    "class ShiftImageOnly:  # moves the image, leaves the masks where they were\n"
    "    geometric = True\n"
    "    def __call__(self, view, generator):\n"
    "        return view.with_(image=view.image.roll(7, dims=-1))\n"
    "class ShiftAllButFinetuneMask:\n"
    "    geometric = True\n"
    "    def __call__(self, view, generator):\n"
    "        move = lambda x: x.roll(7, dims=-1)\n"
    "        return view.with_(image=move(view.image), user_mask=move(view.user_mask),\n"
    "                          empty=move(view.empty))\n"
    "class FlipCallingItselfIntensity:  # moves pixels, says it does not\n"
    "    geometric = False\n"
    "    def __call__(self, view, generator):\n"
    "        return view.map_pixels(lambda x: x.flip(-1))\n"
    "class DoubleTheMask:  # moves nothing, but the user mask becomes 0/2\n"
    "    geometric = True\n"
    "    def __call__(self, view, generator):\n"
    "        return view.with_(user_mask=view.user_mask * 2)\n"
    "class ReturnsTheImage:\n"
    "    geometric = False\n"
    "    def __call__(self, view, generator):\n"
    "        return view.image\n"
    "class NanFiller:\n"
    "    def __call__(self, image, user_mask, context):\n"
    "        return image * float('nan')\n"
    "class ByteFiller:  # an image in [0, 255]\n"
    "    def __call__(self, image, user_mask, context):\n"
    "        return image * 255\n"
    "class CroppingFiller:\n"
    "    def __call__(self, image, user_mask, context):\n"
    "        return image[..., 1:, :]\n"
    "class SoftMasks:\n"
    "    def __call__(self, user_mask, forbidden, generator):\n"
    "        return torch.full_like(user_mask, 0.5) * (1 - forbidden)\n"
    "class MasksOnTheHole:\n"
    "    def __call__(self, user_mask, forbidden, generator):\n"
    "        return user_mask.clone()\n"
    "@hookimpl\n"
    "def tttkit_register_augmentations(register):\n"
    "    register('shift-image-only', ShiftImageOnly)\n"
    "    register('shift-all-but-finetune-mask', ShiftAllButFinetuneMask)\n"
    "    register('quiet-flip', FlipCallingItselfIntensity)\n"
    "    register('double-mask', DoubleTheMask)\n"
    "    register('returns-image', ReturnsTheImage)\n"
    "@hookimpl\n"
    "def tttkit_register_fillers(register):\n"
    "    register('nan-filler', NanFiller)\n"
    "    register('byte-filler', ByteFiller)\n"
    "    register('cropping-filler', CroppingFiller)\n"
    "@hookimpl\n"
    "def tttkit_register_finetune_masks(register):\n"
    "    register('soft-masks', SoftMasks)\n"
    "    register('masks-on-the-hole', MasksOnTheHole)\n"
)

#: (id, extra arguments, what the one line says after the component and its plugin)
CONTRACT_RUNS = [
    (
        "augmentation-moves-the-image-only",
        ["--augment", "shift-image-only:1"],
        ["augmentation 'shift-image-only'", "did not move the user mask with the image at step 1",
         "% of its pixels agree"],
    ),
    (
        "augmentation-leaves-the-finetuning-mask",
        # the default strategy draws finetuning masks after augmentation: here, before
        ["--augment", "shift-all-but-finetune-mask:1", "--set",
         "augment.mask_follows_geometry=true"],
        ["augmentation 'shift-all-but-finetune-mask'",
         "did not move the finetuning mask with the image at step 1"],
    ),
    (
        "intensity-augmentation-moves-the-masks",
        ["--augment", "quiet-flip:1"],
        ["augmentation 'quiet-flip'", "changed the view's user_mask at step 1",
         "not geometric"],
    ),
    (
        "augmentation-makes-masks-not-binary",
        ["--augment", "double-mask:1"],
        ["augmentation 'double-mask'", "made the view's user_mask not binary (0 or 1) at step 1"],
    ),
    (
        "augmentation-returns-a-tensor",
        ["--augment", "returns-image:1"],
        ["augmentation 'returns-image'", "returned a Tensor at step 1", "View or None"],
    ),
    (
        "filler-fills-nan",
        ["--filler", "nan-filler"],
        ["filler 'nan-filler'", "outside [0, 1] or not finite at step 1", "values from nan"],
    ),
    (
        "filler-fills-bytes",
        ["--filler", "byte-filler"],
        ["filler 'byte-filler'", "outside [0, 1]", "(values from 1 to 254)"],
    ),
    (
        "filler-changes-the-size",
        ["--filler", "cropping-filler"],
        ["filler 'cropping-filler'", "returned images of shape (2, 3, 63, 64) at step 1",
         "(2, 3, 64, 64)"],
    ),
    (
        "finetune-masks-not-binary",
        ["--finetune-mask", "soft-masks"],
        ["finetuning-mask strategy 'soft-masks'", "not binary (0 or 1) at step 1"],
    ),
    (
        "finetune-masks-on-the-hole",
        ["--finetune-mask", "masks-on-the-hole"],
        ["finetuning-mask strategy 'masks-on-the-hole'", "covering pixels they must not",
         "hole_margin"],
    ),
]  # fmt: skip


@pytest.mark.parametrize(
    ("extra", "says"), [r[1:] for r in CONTRACT_RUNS], ids=[r[0] for r in CONTRACT_RUNS]
)
def test_a_run_checks_what_each_component_hands_it(
    install_fake: Callable[[str, dict[str, str]], Path],
    tmp_path: Path,
    extra: list[str],
    says: list[str],
) -> None:
    from tests.helpers import photo_and_mask, tiny_backbone
    from tttkit.checkpoint import save_backbone
    from tttkit.io import write_image

    site = install_fake("contracts-dist", {"contracts": "tttkit_hostile_contracts"})
    write_module(site, "tttkit_hostile_contracts", CONTRACTS)
    save_backbone(tiny_backbone(), "attention-net-compact", tmp_path / "weights.safetensors")
    image, mask = photo_and_mask(64)
    write_image(tmp_path / "photo.png", image)
    write_image(tmp_path / "mask.png", mask)
    out = tmp_path / "out.png"
    args = ["inpaint", str(tmp_path / "photo.png"), "--mask", str(tmp_path / "mask.png"),
            "--out", str(out), "--weights", str(tmp_path / "weights.safetensors"),
            "--steps", "2", "--batch-size", "2", "--device", "cpu", *extra]  # fmt: skip
    result = CliRunner().invoke(app, args, env=ENV)
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert result.exit_code == 1, result.stderr
    assert not out.exists() and "Traceback" not in result.stderr
    (last,) = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert "(plugin 'contracts' from distribution 'contracts-dist')" in last
    for needle in says:
        assert needle in last, f"{needle!r} not in {last}"
    assert "--block-plugin contracts" in last


def test_the_library_raises_the_contract_error_naming_the_plugin(
    install_fake: Callable[[str, dict[str, str]], Path],
) -> None:
    from tests.helpers import photo_and_mask, tiny_backbone
    from tttkit.api import adapt
    from tttkit.errors import PluginContractError
    from tttkit.plugins import PluginHost

    site = install_fake("contracts-dist", {"contracts": "tttkit_hostile_contracts_lib"})
    write_module(site, "tttkit_hostile_contracts_lib", CONTRACTS)
    host = PluginHost().load()
    image, mask = photo_and_mask(64)
    with pytest.raises(PluginContractError, match="did not move the user mask") as info:
        adapt(image, mask, backbone=tiny_backbone(), augment="hflip:1,shift-image-only:1",
              steps=2, host=host)  # fmt: skip
    assert info.value.plugin == "contracts"
