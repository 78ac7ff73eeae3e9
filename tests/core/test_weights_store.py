"""Weights by name: the known table, the cache, downloads from a local HTTP server (a right
file, a wrong checksum, a cut connection, a 404, an archive), offline messages, verify."""

from __future__ import annotations

import hashlib
import io
import threading
import zipfile
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from typer.testing import CliRunner

import tttkit.weights_store as store
from tttkit.cli import app
from tttkit.io import InputError

PAYLOAD = bytes(range(256)) * 4096  # 1 MiB
ARCHIVE = io.BytesIO()
with zipfile.ZipFile(ARCHIVE, "w") as _zip:
    _zip.writestr("release/models/best.ckpt", PAYLOAD)
ENV = {"NO_COLOR": "1", "COLUMNS": "200", "TERM": "dumb"}


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path.endswith("/good.bin") or self.path.startswith("/mirror/"):
            self._send(PAYLOAD)
        elif self.path.endswith("/release.zip"):
            self._send(ARCHIVE.getvalue())
        elif self.path.endswith("/cut.bin"):
            self.send_response(200)
            self.send_header("Content-Length", str(len(PAYLOAD)))
            self.end_headers()
            self.wfile.write(PAYLOAD[:1000])  # then the connection closes
        else:
            self.send_error(404, "Not Found")

    def _send(self, data: bytes) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def table(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, server: str) -> dict:
    """Known checkpoints served by the local server; the cache in a temporary folder."""
    digest = hashlib.sha256(PAYLOAD).hexdigest()
    entries = {
        "tiny:good": store.Checkpoint("good.bin", f"{server}/files/good.bin", digest, len(PAYLOAD)),
        "tiny:tampered": store.Checkpoint("t.bin", f"{server}/files/good.bin", "0" * 64),
        "tiny:cut": store.Checkpoint("cut.bin", f"{server}/files/cut.bin", digest, len(PAYLOAD)),
        "tiny:gone": store.Checkpoint("gone.bin", f"{server}/files/gone.bin", digest),
        "tiny:zipped": store.Checkpoint(
            "best.ckpt", f"{server}/files/release.zip", member="release/models/best.ckpt"
        ),
        "tiny:offline": store.Checkpoint("o.bin", "http://127.0.0.1:9/o.bin", digest),
    }
    known = {k: store.Known(k, "tiny", v) for k, v in entries.items()}
    monkeypatch.setattr(store, "known", lambda: known)
    monkeypatch.setenv(store.ENV_HOME, str(tmp_path / "home"))
    monkeypatch.delenv(store.ENV_MODELS, raising=False)
    monkeypatch.delenv(store.ENV_MIRROR, raising=False)
    return known


def _left_over(tmp_path: Path) -> list[str]:
    folder = tmp_path / "home" / "weights"
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_the_shipped_default_and_big_lama_are_known() -> None:
    known = store.known()
    assert known["attention-net-compact:default"].checkpoint.bundled is not None
    lama = known["lama:big-lama"].checkpoint
    assert lama.url and lama.url.startswith("https://") and lama.member and lama.licence
    backbone, path = store.resolve("attention-net-compact:default")
    assert backbone == "attention-net-compact" and path.is_file()


def test_a_right_file_is_pulled_checked_and_resolved(table, tmp_path: Path) -> None:
    seen: list[int] = []
    path = store.pull("tiny:good", on_progress=lambda done, total: seen.append(done))
    assert path.read_bytes() == PAYLOAD and seen[-1] == len(PAYLOAD)
    assert store.resolve("tiny:good") == ("tiny", path)
    assert store.verify(table["tiny:good"])[0] is True
    path.write_bytes(b"changed")
    assert store.verify(table["tiny:good"])[0] is False
    assert _left_over(tmp_path) == ["good.bin", "good.bin.sha256"]  # no partial file


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("tiny:tampered", "refused, nothing was kept"),
        ("tiny:cut", "nothing was kept; pull again"),
        ("tiny:gone", "answered 404"),
    ],
)
def test_a_wrong_cut_or_missing_download_keeps_nothing(
    table, tmp_path: Path, name: str, message: str
) -> None:
    with pytest.raises(InputError, match=message):
        store.pull(name)
    assert _left_over(tmp_path) == []


def test_an_archive_keeps_its_checkpoint_and_records_its_checksum(table) -> None:
    path = store.pull("tiny:zipped")
    assert path.name == "best.ckpt" and path.read_bytes() == PAYLOAD
    assert store.recorded_sha256(path) == hashlib.sha256(PAYLOAD).hexdigest()
    assert store.verify(table["tiny:zipped"])[0] is True


def test_offline_a_pull_says_in_one_line_what_to_download_and_where(table) -> None:
    with pytest.raises(InputError) as raised:
        store.pull("tiny:offline", timeout=2)
    message = str(raised.value)
    assert "\n" not in message and "http://127.0.0.1:9/o.bin" in message
    assert str(store.weights_dir() / "o.bin") in message


def test_a_mirror_and_a_local_model_folder_serve_a_checkpoint(
    table, tmp_path: Path, server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(InputError, match="not on this machine"):
        store.resolve("tiny:gone")
    models = tmp_path / "models"
    models.mkdir()
    (models / "gone.bin").write_bytes(PAYLOAD)
    monkeypatch.setenv(store.ENV_MODELS, str(models))
    assert store.resolve("tiny:gone") == ("tiny", models / "gone.bin")
    # a mirror serves the file under the name of its official address (there: cut.bin)
    path = store.pull("tiny:cut", mirror=f"{server}/mirror")
    assert path.read_bytes() == PAYLOAD


def test_the_weights_command(table, tmp_path: Path) -> None:
    runner = CliRunner()
    listed = runner.invoke(app, ["weights", "list"], env=ENV)
    assert listed.exit_code == 0 and "tiny:good" in listed.stdout
    assert "not downloaded" in listed.stdout
    pulled = runner.invoke(app, ["weights", "pull", "tiny:good"], env=ENV)
    assert pulled.exit_code == 0, pulled.stderr
    where = runner.invoke(app, ["weights", "path", "tiny:good"], env=ENV)
    assert where.stdout.strip() == str(tmp_path / "home" / "weights" / "good.bin")
    assert runner.invoke(app, ["weights", "verify", "tiny:good"], env=ENV).exit_code == 0
    missing = runner.invoke(app, ["weights", "pull", "tiny:nothing"], env=ENV)
    assert missing.exit_code != 0 and "no known weights named 'tiny:nothing'" in missing.stderr


def test_weights_lama_big_lama_resolve_from_the_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tttkit.api import _named_weights

    monkeypatch.setenv(store.ENV_HOME, str(tmp_path))
    with pytest.raises(InputError, match="tttkit weights pull lama:big-lama"):
        _named_weights(None, "lama:big-lama")
    cached = tmp_path / "weights" / "big-lama.ckpt"
    cached.parent.mkdir()
    cached.write_bytes(b"as pulled")
    assert _named_weights(None, "lama:big-lama") == ("lama", cached)
    with pytest.raises(InputError, match="weights of 'lama', not 'attention-net'"):
        _named_weights("attention-net", "lama:big-lama")
