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
