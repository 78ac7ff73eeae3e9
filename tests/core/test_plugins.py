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
        "backbones": ["tiny-unet", "wrapped-unet"],
        "freezing-policies": ["encoder-frozen"],
        "strategies": ["example-quick"],
    }


def test_the_example_plugins_wrapped_module_trains_under_its_freezing_policy(
    example_plugin: Path,
) -> None:
    """The example package exercises the wrapper path (tttkit.ModuleBackbone) and a freezing
    policy of its own, by name, through the engine (issue 30, item 13)."""
    import torch

    from tests.helpers import photo_and_mask
    from tttkit.api import adapt
    from tttkit.config import Component

    host = PluginHost().load()
    torch.manual_seed(0)
    net = host.registry("backbones").get("wrapped-unet")(width=8)
    encoder = [p.clone() for p in net.generator.encoder.parameters()]
    decoder = [p.clone() for p in net.generator.decoder.parameters()]
    spec = (
        host.registry("strategies")
        .get("example-quick")
        .derive("example-frozen", "x", {"freeze": Component("encoder-frozen"), "select": "last"})
    )
    image, mask = photo_and_mask(32)
    result = adapt(image, mask, backbone=net, strategy=spec, steps=2, host=host)
    assert result.finetuned.shape == image.shape and bool(torch.isfinite(result.finetuned).all())
    tuned = result.network
    assert tuned is not None

    def same(before: list[torch.Tensor], after: torch.nn.Module) -> bool:
        return all(torch.equal(a, b) for a, b in zip(before, after.parameters(), strict=True))

    assert same(encoder, tuned.generator.encoder)  # frozen by the plugin's policy
    assert not same(decoder, tuned.generator.decoder)  # trained


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


def test_the_example_and_the_guide_import_presets_from_one_public_module() -> None:
    """Issue 30, item 13: the guide says ``tttkit_strategies.presets``; so does the example."""
    from tests.conftest import EXAMPLE_PLUGIN_SRC

    source = (EXAMPLE_PLUGIN_SRC / "tttkit_example_plugin" / "__init__.py").read_text()
    assert "from tttkit_strategies.presets import BASELINE" in source
    assert "tttkit_strategies.ablations" not in source


def test_backbone_init_has_its_own_docstring() -> None:
    """``help(tttkit.Backbone.__init__)`` explains tttkit's arguments, not nn.Module's."""
    import inspect

    import tttkit

    doc = inspect.getdoc(tttkit.Backbone.__init__) or ""
    assert "conventions:" in doc and "config:" in doc and "Module state" not in doc
