"""Shared fixtures: plugin hosts isolated from the process-wide one, and a fake installed plugin."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.helpers import make_distribution
from tttkit import plugins

REPO = Path(__file__).resolve().parents[1]
EXAMPLE_PLUGIN_SRC = REPO / "examples" / "tttkit-example-plugin" / "src"


@pytest.fixture(autouse=True)
def _isolated_plugin_state(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each test starts with no process-wide host and no plugin environment variables."""
    monkeypatch.delenv(plugins.ENV_BLOCK, raising=False)
    monkeypatch.delenv(plugins.ENV_DISABLE_AUTOLOAD, raising=False)
    plugins.reset()
    yield
    plugins.reset()


@pytest.fixture
def host() -> plugins.PluginHost:
    """A host with the built-in plugins only."""
    return plugins.PluginHost(autoload=False).load()


@pytest.fixture
def install_fake(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Callable[[str, dict[str, str]], Path]:
    """Make a distribution with ``tttkit`` entry points visible to importlib.metadata."""
    site = tmp_path / "site"

    def install(name: str, entry_points: dict[str, str]) -> Path:
        make_distribution(site, name, entry_points)
        monkeypatch.syspath_prepend(str(site))
        return site

    return install


@pytest.fixture
def example_plugin(install_fake: Callable[[str, dict[str, str]], Path], monkeypatch) -> Path:
    """The example plugin package, 'installed' through a real entry-point record."""
    monkeypatch.syspath_prepend(str(EXAMPLE_PLUGIN_SRC))
    return install_fake("tttkit-example-plugin", {"example": "tttkit_example_plugin"})


@pytest.fixture(scope="session")
def vgg_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A randomly initialised VGG-16 features file (no real weights are needed to test code)."""
    import torch
    import torchvision
    from safetensors.torch import save_file

    torch.manual_seed(0)
    features = torchvision.models.vgg16(weights=None).features
    path = tmp_path_factory.mktemp("vgg") / "vgg16_random.safetensors"
    save_file({k: v.contiguous() for k, v in features.state_dict().items()}, str(path))
    return path


@pytest.fixture
def perceptual_env(vgg_file: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point TTTKIT_PERCEPTUAL_WEIGHTS at the random VGG file."""
    monkeypatch.setenv("TTTKIT_PERCEPTUAL_WEIGHTS", str(vgg_file))
    return vgg_file
