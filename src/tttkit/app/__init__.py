"""``tttkit app``: a local web page to paint a hole over a photo, watch test-time training,
compare the raw and finetuned fills and keep the better one (``docs/app.md``).

Needs the ``app`` extra (``pip install 'tttkit[app]'``: Gradio). ``session.py`` does the work
through the library's public API; ``page.py`` lays out the page; :func:`serve` starts it.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import gradio as gr

#: Where the page is served unless told otherwise: this machine only.
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 7860


@dataclass(frozen=True)
class ServeOptions:
    """How ``tttkit app`` serves the page."""

    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    backbone: str | None = None
    weights: Path | None = None
    device: str = "cpu"
    share: bool = False
    max_pixels: int | None = None
    max_upload_mb: int | None = None


def is_local(host: str) -> bool:
    """Whether ``host`` is reachable from this machine only (a loopback name or address)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def offline_environment(upload_dir: Path) -> None:
    """Settings Gradio reads from the environment, set before it is imported: no analytics or
    version checks sent anywhere, and uploads kept under the app's own temporary folder."""
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["GRADIO_TEMP_DIR"] = str(upload_dir)


def port_is_free(host: str, port: int) -> bool:
    """Whether ``port`` can be bound on ``host`` (checked before the page is built)."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        # as the server will: a closed connection's TIME_WAIT does not make the port busy
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def create(options: ServeOptions) -> tuple[gr.Blocks, dict[str, Any], Any]:
    """The page and the ``launch()`` keywords that serve it as ``options`` say, and the
    workspace whose ``close()`` removes the app's files."""
    from tttkit.app.session import DEFAULT_MAX_PIXELS, DEFAULT_MAX_UPLOAD_MB, Workspace

    workspace = Workspace(Path(tempfile.gettempdir()))
    offline_environment(workspace.root / "uploads")
    import gradio as gr

    from tttkit.app.page import CSS, SYSTEM_FONTS, SYSTEM_MONO, AppConfig, build_app

    config = AppConfig(
        backbone=options.backbone, weights=options.weights, device=options.device,
        max_pixels=options.max_pixels or DEFAULT_MAX_PIXELS, workspace=workspace,
    )  # fmt: skip
    app = build_app(config)
    from tttkit.app.session import warm_up

    warm_up(options.backbone, options.weights, options.device)
    launch = {
        "server_name": options.host,
        "server_port": options.port,
        "share": options.share,
        "max_file_size": f"{options.max_upload_mb or DEFAULT_MAX_UPLOAD_MB}mb",
        "theme": gr.themes.Default(font=SYSTEM_FONTS, font_mono=SYSTEM_MONO),
        "css": CSS,
        "footer_links": [],
        "ssr_mode": False,
        "mcp_server": False,
        "allowed_paths": [str(workspace.root)],
        "show_error": True,
    }
    return app, launch, workspace
