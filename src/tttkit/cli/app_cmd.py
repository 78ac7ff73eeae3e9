"""`tttkit app`: serve the paint-run-compare page (needs the ``app`` extra)."""

from __future__ import annotations

import signal
import sys
from pathlib import Path
from typing import Annotated

import click
import typer
from typer.core import TyperCommand

from tttkit.cli._common import MaxPixelsOption, fail, stderr, stdout, user_errors
from tttkit.errors import InputError


def _checkpoint_backbone(weights: Path) -> str | None:
    """The backbone a tttkit checkpoint names (``None`` for other weight files)."""
    from tttkit.checkpoint import META_BACKBONE, read_metadata

    if weights.suffix != ".safetensors":
        return None
    return read_metadata(weights).get(META_BACKBONE)


class _ListsBackbones(TyperCommand):
    """``tttkit app --help`` ends with the registered backbones (for ``--backbone``), read
    when the help is shown: listing them loads the plugins, which no other help does."""

    def format_help(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        self.epilog = _backbones_epilog()
        super().format_help(ctx, formatter)


def _backbones_epilog() -> str:
    try:
        from tttkit.app.session import backbone_choices

        labels = [label for label, _ in backbone_choices()]
    except Exception as exc:  # a broken plugin must not break --help: say where to look
        return f"Backbones: not listed ({type(exc).__name__}: {exc}; see tttkit plugins)."
    return "Backbones (--backbone): " + ", ".join(labels) + "."


@user_errors
def app_command(
    host: Annotated[
        str,
        typer.Option(
            "--host",
            help="Address to serve on; anything but localhost is reachable from other machines.",
        ),
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port to serve on.")] = 7860,
    backbone: Annotated[
        str | None, typer.Option("--backbone", help="Backbone preselected in the page.")
    ] = None,
    weights: Annotated[
        Path | None, typer.Option("--weights", help="Checkpoint for that backbone.")
    ] = None,
    device: Annotated[str, typer.Option("--device", help="cpu, cuda or auto.")] = "cpu",
    share: Annotated[
        bool,
        typer.Option(
            "--share",
            help="Also open a public Gradio tunnel (off by default; it "
            "sends the page through gradio.live).",
        ),
    ] = False,
    max_pixels: MaxPixelsOption = None,
    max_upload_mb: Annotated[
        int, typer.Option("--max-upload-mb", help="Largest upload accepted, in MB.", min=1)
    ] = 100,
) -> None:
    """Serve a local page: paint the hole over a photo, watch TTT, keep the better fill."""
    try:
        import gradio  # noqa: F401
    except ImportError:
        raise fail("tttkit app needs the app extra: pip install 'tttkit[app]' (Gradio)") from None
    from tttkit.app import ServeOptions, create, is_local, port_is_free
    from tttkit.engine.execution import resolve_device

    if weights is not None and not weights.is_file():
        from tttkit.weights_store import is_name, resolve

        if not is_name(weights):
            raise InputError(f"--weights {weights}: no such file")
        named, weights = resolve(str(weights))  # BACKBONE:NAME, e.g. lama:big-lama
        backbone = backbone or named
    if weights is not None and backbone is None:
        backbone = _checkpoint_backbone(weights)  # so the page labels it with the file
    resolve_device(device)  # an unknown device fails now, not at the first run
    if backbone is not None:
        import tttkit

        tttkit.backbones().entry(backbone)  # an unknown name fails now, with suggestions
    if not port_is_free(host, port):
        raise InputError(f"--port {port}: already in use on {host} (choose another port)")
    if not is_local(host):
        stderr.print(f"[yellow]warning:[/] serving on {host}: other machines can reach the "
                     "page and run jobs on this one")  # fmt: skip
    options = ServeOptions(host=host, port=port, backbone=backbone, weights=weights,
                           device=device, share=share, max_pixels=max_pixels,
                           max_upload_mb=max_upload_mb)  # fmt: skip
    app, launch, workspace = create(options)
    # A plain `kill` (SIGTERM) ends the app like Ctrl-C: the files it wrote are removed.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    stdout.print(f"tttkit app on [bold]http://{host}:{port}[/] (Ctrl-C stops it)")
    try:
        app.launch(quiet=True, **launch)
    except KeyboardInterrupt:
        pass
    finally:
        app.close()
        workspace.close()
