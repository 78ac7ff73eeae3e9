"""An app served in this process on a free port, with a tiny backbone (its weights file)."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.helpers import tiny_backbone

#: Set to a folder to keep the browser test's screenshots there (docs/images/ for the docs);
#: the app then runs the shipped default network instead of the tiny test one.
SCREENSHOTS = "TTTKIT_APP_SCREENSHOTS"


@dataclass
class Served:
    url: str
    weights: Path
    workspace: object
    data: Path
    limited: bool = True  # the 2 MP and 1 MB limits (off when taking pictures for the docs)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def write_photo(path: Path, width: int, height: int, seed: int = 0) -> np.ndarray:
    """A smooth photo-like picture (gradients and a disc) with some noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    disc = ((x - width / 2) ** 2 + (y - height / 2) ** 2 < (min(width, height) / 3) ** 2) * 90
    pixels = np.stack([x * 200 / width + disc, y * 200 / height, 120 + disc], axis=-1)
    pixels = (pixels + rng.normal(0, 6, pixels.shape)).clip(0, 255).astype(np.uint8)
    Image.fromarray(pixels).save(path)
    return pixels


@pytest.fixture(scope="session")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    pytest.importorskip("gradio", reason="the app extra (gradio) is not installed")
    from tttkit.app import ServeOptions, create
    from tttkit.checkpoint import save_backbone

    data = tmp_path_factory.mktemp("app-data")
    weights = data / "tiny.safetensors"
    save_backbone(tiny_backbone(), "attention-net-compact", weights)
    saved = {k: os.environ.get(k) for k in ("GRADIO_ANALYTICS_ENABLED", "HF_HUB_OFFLINE",
                                             "GRADIO_TEMP_DIR")}  # fmt: skip
    port = free_port()
    options = ServeOptions(port=port, backbone="attention-net-compact", weights=weights,
                           max_pixels=2_000_000, max_upload_mb=1)  # fmt: skip
    if os.environ.get(SCREENSHOTS):  # pictures for docs/app.md: the shipped default network
        options = ServeOptions(port=port)
    app, launch, workspace = create(options)
    app.launch(prevent_thread_lock=True, quiet=True, **launch)
    try:
        limited = not os.environ.get(SCREENSHOTS)
        yield Served(f"http://127.0.0.1:{port}/", weights, workspace, data, limited)
    finally:
        app.close()
        workspace.close()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
