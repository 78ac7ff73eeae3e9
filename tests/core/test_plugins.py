from __future__ import annotations

import types
from pathlib import Path

import pytest

import tttkit
from tests.helpers import write_module
from tttkit import plugins
from tttkit.plugins import BUILTIN_PLUGINS, PluginHost, PluginLoadError
from tttkit.registry import DuplicateNameError


def test_builtins_load_and_fill_every_kind(host: PluginHost) -> None:
    assert set(BUILTIN_PLUGINS) <= set(host.plugins)
    for kind in plugins.KINDS:
        assert len(host.registry(kind)) > 0, kind
    assert all(info.builtin and info.distribution == "tttkit" for info in host.plugins.values())


def test_registry_records_the_registering_plugin(host: PluginHost) -> None:
    assert host.registry("strategies").entry("optimal").plugin == "tttkit_strategies.ablations"
    assert host.registry("fillers").entry("black").plugin == "tttkit_strategies.fillers"


def test_entry_point_plugin_is_discovered(example_plugin: Path) -> None:
    host = PluginHost().load()
    info = host.plugins["example"]
    assert (info.distribution, info.version, info.builtin) == (
        "tttkit-example-plugin",
        "0.1.0",
        False,
    )
    assert host.registered_by("example") == {
        "backbones": ["tiny-unet"],
        "strategies": ["example-quick"],
    }


def test_autoload_can_be_disabled(example_plugin: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert "example" not in PluginHost(autoload=False).load().plugins
    monkeypatch.setenv(plugins.ENV_DISABLE_AUTOLOAD, "1")
    host = PluginHost().load()
    assert "example" not in host.plugins
    assert set(BUILTIN_PLUGINS) <= set(host.plugins)  # built-ins still load


def test_plugins_can_be_blocked_by_name(
    example_plugin: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert "example" not in PluginHost(blocked=["example"]).load().plugins
    monkeypatch.setenv(plugins.ENV_BLOCK, "example, tttkit_strategies.fillers")
    host = PluginHost().load()
    assert "example" not in host.plugins
    assert len(host.registry("fillers")) == 0


def test_broken_plugin_raises_naming_plugin_and_distribution(install_fake, tmp_path: Path) -> None:
    site = install_fake("broken-dist", {"broken": "tttkit_broken_plugin"})
    write_module(site, "tttkit_broken_plugin", "import not_a_real_module_xyz\n")
    with pytest.raises(PluginLoadError) as info:
        PluginHost().load()
    message = str(info.value)
    assert (
        "'broken'" in message and "'broken-dist'" in message and "not_a_real_module_xyz" in message
    )
    assert isinstance(info.value.__cause__, ModuleNotFoundError)  # the original traceback is kept


def test_hookimpl_with_unknown_name_is_rejected(host: PluginHost) -> None:
    plugin = types.SimpleNamespace()

    @tttkit.hookimpl
    def tttkit_register_backbone(register):  # typo: missing "s"
        pass

    plugin.tttkit_register_backbone = tttkit_register_backbone
    with pytest.raises(
        PluginLoadError,
        match="unknown hook 'tttkit_register_backbone' — did you mean 'tttkit_register_backbones'",
    ):
        host.register(plugin, "typo")
    assert "typo" not in host.plugins


def test_hookimpl_with_unknown_argument_is_rejected(host: PluginHost) -> None:
    class Plugin:
        @tttkit.hookimpl
        def tttkit_register_fillers(self, register, extra):
            pass

    with pytest.raises(PluginLoadError, match="'bad-args'"):
        host.register(Plugin(), "bad-args")


def test_duplicate_registration_names_both_plugins(host: PluginHost) -> None:
    from tttkit_strategies.ablations import BASELINE

    class Plugin:
        @tttkit.hookimpl
        def tttkit_register_strategies(self, register):
            register(BASELINE)

    host.register(Plugin(), "copycat", distribution="copycat-dist")
    with pytest.raises(DuplicateNameError) as info:
        host.registry("strategies")
    assert str(info.value) == (
        "strategy 'baseline' is registered twice: by plugin 'tttkit_strategies.ablations' from "
        "distribution 'tttkit' and by plugin 'copycat' from distribution 'copycat-dist'; skip "
        "plugin 'copycat' with --block-plugin copycat"
    )
    assert info.value.plugin == "copycat"


def test_runtime_registration_and_unregistration(host: PluginHost) -> None:
    class Plugin:
        @tttkit.hookimpl
        def tttkit_register_fillers(self, register):
            register("grey", lambda: None, description="grey pixels")

    host.register(Plugin(), "grey-plugin")
    try:
        assert host.registry("fillers").entry("grey").plugin == "grey-plugin"
    finally:
        host.unregister("grey-plugin")
    assert "grey" not in host.registry("fillers")


def test_public_accessors_use_the_process_wide_host() -> None:
    assert "optimal" in tttkit.strategies()
    assert tttkit.get_strategy("optimal").parent == "combo-i"
    assert tttkit.registry("fillers") is tttkit.fillers()
