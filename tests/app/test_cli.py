"""`tttkit app` as a command: options checked before serving, a warning off localhost, and
nothing left behind when it is stopped."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.app.conftest import free_port
from tttkit.cli import app as cli

pytest.importorskip("gradio", reason="the app extra (gradio) is not installed")


def _run(*args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(cli, ["app", *args])


def test_options_are_checked_before_the_page_is_built(tmp_path: Path) -> None:
    result = _run("--weights", str(tmp_path / "missing.safetensors"))
    assert result.exit_code == 2 and "missing.safetensors" in result.output
    result = _run("--backbone", "attention-net-compactt")
    assert result.exit_code == 2 and "attention-net-compact" in result.output
    result = _run("--device", "tpu")
    assert result.exit_code == 2 and "tpu" in result.output
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = _run("--port", str(port))
    assert result.exit_code == 2 and f"--port {port}" in result.output


def test_the_app_serves_warns_off_localhost_and_cleans_up_when_stopped(tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    server = subprocess.Popen(
        [sys.executable, "-m", "tttkit", "app", "--host", "0.0.0.0", "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None, server.communicate()
            try:
                page = urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2).read()
                break
            except OSError:
                assert time.monotonic() < deadline, "not serving after 60 s"
                time.sleep(0.2)
        assert b"tttkit" in page
        assert list(tmp_path.glob("tttkit-app-*")), "the app keeps its files under TMPDIR"
    finally:
        server.send_signal(signal.SIGTERM)
        _, err = server.communicate(timeout=30)
    assert "warning" in err and "0.0.0.0" in err
    assert not list(tmp_path.glob("tttkit-app-*")), "the app's temporary files were left"


def test_help_lists_the_registered_backbones() -> None:
    """Issue 30, item 14: `tttkit app --help` says what `--backbone` takes."""
    result = CliRunner().invoke(cli, ["app", "--help"], env={"COLUMNS": "400", "NO_COLOR": "1"})
    assert result.exit_code == 0
    text = " ".join(result.output.split())
    assert (
        "Backbones (--backbone): attention-net (needs a weights file), attention-net-compact,"
        in (text)
    )


def _backbone_dropdown_choices(config: object) -> dict[str, str]:
    import gradio as gr

    from tttkit.app.page import build_app

    page = build_app(config)  # type: ignore[arg-type]
    (dropdown,) = [
        b for b in page.blocks.values() if isinstance(b, gr.Dropdown) and b.elem_id == "backbone"
    ]
    return {name: label for label, name in dropdown.choices}


def test_the_backbone_started_with_weights_is_labelled_with_its_file(tmp_path: Path) -> None:
    """With `--backbone X --weights W` the page labels X with W, not "needs a weights file";
    with `--weights W` alone, a tttkit checkpoint names its backbone (issue 30, item 14)."""
    from tests.helpers import tiny_backbone
    from tttkit.app.page import AppConfig
    from tttkit.checkpoint import save_backbone
    from tttkit.cli.app_cmd import _checkpoint_backbone

    weights = tmp_path / "mine.safetensors"
    save_backbone(tiny_backbone(), "attention-net", weights)
    labels = _backbone_dropdown_choices(AppConfig(backbone="attention-net", weights=weights))
    assert labels["attention-net"] == "attention-net (weights: mine.safetensors)"
    assert labels["attention-net-small"] == "attention-net-small (needs a weights file)"
    assert _checkpoint_backbone(weights) == "attention-net"
    assert _checkpoint_backbone(tmp_path / "other.pt") is None
