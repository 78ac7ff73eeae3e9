"""Many photos per command: pairing, the plan, a bad file counted, resuming, workers, torchrun."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from tests.helpers import tiny_backbone
from tttkit.batch import plan
from tttkit.checkpoint import save_backbone
from tttkit.cli import app

ENV = {"NO_COLOR": "1", "COLUMNS": "200", "TERM": "dumb"}
SIZE = 48


def _folder(tmp_path: Path, count: int = 20) -> tuple[Path, Path]:
    """``count`` photos with LaMa-layout masks (with fewer than 10, the third has two masks;
    with more than 5, the sixth photo is corrupt)."""
    photos = tmp_path / "photos"
    photos.mkdir()
    rng = np.random.default_rng(0)
    for index in range(count):
        name = f"p{index:02d}"
        pixels = rng.integers(0, 255, (SIZE, SIZE, 3), np.uint8)
        Image.fromarray(pixels).save(photos / f"{name}.png")
        hole = np.zeros((SIZE, SIZE), np.uint8)
        hole[10 + index % 7 : 22 + index % 7, 12:30] = 255
        Image.fromarray(hole).save(photos / f"{name}_mask000.png")
    if count < 10:  # a photo with two masks: two outputs
        Image.fromarray(hole[::-1].copy()).save(photos / "p02_mask001.png")
    if count > 5:
        (photos / "p05.png").write_bytes(b"\x89PNG\r\n\x1a\n but then nothing")  # corrupt
    weights = tmp_path / "tiny.safetensors"
    save_backbone(tiny_backbone(), "attention-net-compact", weights)
    return photos, weights


def _args(photos: Path, weights: Path, out: Path, *extra: str) -> list[str]:
    return ["inpaint", str(photos), "--out", str(out), "--weights", str(weights), "--steps", "1",
            "--batch-size", "1", "--device", "cpu", *extra]  # fmt: skip


def _outputs(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(out.glob("*.png"))}


def _summary(out: Path) -> list[dict]:
    return [json.loads(line) for f in sorted(out.glob("summary*.jsonl"))
            for line in f.read_text().splitlines()]  # fmt: skip


def test_a_folder_in_lama_layout_is_planned_and_paired(tmp_path: Path) -> None:
    photos, _ = _folder(tmp_path, count=4)
    batch = plan(photos, None, tmp_path / "out")
    keys = sorted(job.key for job in batch.jobs)
    assert keys == ["p00_mask000.png", "p01_mask000.png", "p02_mask000.png", "p02_mask001.png",
                    "p03_mask000.png"]  # fmt: skip
    assert batch.photos == 4 and batch.masks == 5 and batch.skipped == []
    one_mask = plan(photos, photos / "p00_mask000.png", tmp_path / "out")
    assert len(one_mask.jobs) == 4  # the same mask for every photo (masks are not photos here)


def test_a_batch_fills_all_but_the_corrupt_photo_and_resumes_without_redoing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    photos, weights = _folder(tmp_path)
    out = tmp_path / "out"
    import tttkit.cli.batch_run as batch_run

    real_fill, calls = batch_run.fill, []

    def interrupted_fill(job, settings):  # type: ignore[no-untyped-def]
        calls.append(job.key)
        if len(calls) == 8:
            raise KeyboardInterrupt  # killed in the middle of the eighth photo
        return real_fill(job, settings)

    monkeypatch.setattr(batch_run, "fill", interrupted_fill)
    first = CliRunner().invoke(app, _args(photos, weights, out), env=ENV)
    assert first.exit_code == 130
    assert "run the same command to continue" in " ".join(first.stderr.split())
    finished = _outputs(out)
    assert len(finished) == 7
    monkeypatch.setattr(batch_run, "fill", real_fill)
    again = CliRunner().invoke(app, _args(photos, weights, out), env=ENV)
    text = " ".join(again.stderr.split())
    assert again.exit_code == 1  # one photo failed: the exit code says so
    assert "21 to fill" not in text and "7 done already" in text
    assert "p05_mask000.png: photo p05.png cannot be read" in text
    outputs = _outputs(out)
    assert len(outputs) == 19  # 20 photos, one corrupt
    assert all(outputs[name] == data for name, data in finished.items())  # nothing redone
    rows = _summary(out)
    assert sum(r["status"] == "done" for r in rows) == 19
    assert {r["key"] for r in rows if r["status"] == "skipped"} == {"p05_mask000.png"}
    done = next(r for r in rows if r["status"] == "done")
    assert {"size", "windows", "steps", "output_step", "seconds"} <= set(done)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def one_process(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """A 4-photo folder filled by one process: ``(photos, weights, outputs)``."""
    tmp_path = tmp_path_factory.mktemp("one-process")
    photos, weights = _folder(tmp_path, count=4)
    single = tmp_path / "single"
    env = {**os.environ, **ENV, "OMP_NUM_THREADS": "1"}
    one = subprocess.run([sys.executable, "-m", "tttkit", *_args(photos, weights, single)],
                         env=env, capture_output=True, text=True, timeout=300)  # fmt: skip
    assert one.returncode == 0, one.stderr[-2000:]
    return photos, weights, single


@pytest.mark.parametrize("spread", ["jobs", "torchrun"])
def test_workers_and_torchrun_give_the_same_outputs_as_one_process(
    one_process: tuple[Path, Path, Path], tmp_path: Path, spread: str
) -> None:
    photos, weights, single = one_process
    env = {**os.environ, **ENV, "OMP_NUM_THREADS": "1"}
    spread_out = tmp_path / "spread"
    if spread == "jobs":
        command = [sys.executable, "-m", "tttkit", *_args(photos, weights, spread_out),
                   "--jobs", "2"]  # fmt: skip
    else:
        command = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2",
                   "--master-addr", "127.0.0.1", "--master-port", str(_free_port()),
                   "-m", "tttkit", *_args(photos, weights, spread_out)]  # fmt: skip
    two = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert two.returncode == 0, two.stderr[-2000:]
    assert _outputs(spread_out) == _outputs(single) and len(_outputs(single)) == 5
    if spread == "torchrun":
        assert sorted(p.name for p in spread_out.glob("summary*.jsonl")) == [
            "summary.jsonl",
            "summary.rank-1.jsonl",
        ]


def test_a_process_that_plans_late_takes_the_same_share(tmp_path: Path) -> None:
    from tttkit.batch import append_summary, shard

    photos, _ = _folder(tmp_path, count=4)
    out = tmp_path / "out"
    out.mkdir()
    early = [job.key for job in shard(plan(photos, None, out), 0, 2)]
    other = shard(plan(photos, None, out), 1, 2)[0]  # the other process finishes one first
    other.out.write_bytes(b"filled")
    append_summary(out, {"key": other.key, "status": "done"}, rank=1)
    late = plan(photos, None, out)
    assert [job.key for job in shard(late, 0, 2)] == early
    assert other.key not in [job.key for job in shard(late, 1, 2)]


def test_ctrl_c_stops_after_the_photo_in_flight_and_says_how_to_resume(tmp_path: Path) -> None:
    import signal
    import time

    photos, weights = _folder(tmp_path, count=5)
    out = tmp_path / "out"
    env = {**os.environ, **ENV, "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "tttkit", *_args(photos, weights, out)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert process.stderr is not None
    seen = []
    for line in process.stderr:  # the first photo's line: the second is in flight
        seen.append(line)
        if "p00_mask000.png:" in line:
            break
    time.sleep(0.2)
    process.send_signal(signal.SIGINT)
    rest, errors = process.communicate(timeout=120)
    assert process.returncode == 1
    assert "stopping after the photo(s) in flight" in " ".join(errors.split())
    assert "left: run the same command to continue" in " ".join(rest.split())
    written = _outputs(out)
    assert 1 <= len(written) < 6  # stopped early, and every output written is whole
    assert all(data.startswith(b"\x89PNG") for data in written.values())
    assert len(seen) >= 1


def test_options_for_one_photo_are_refused_for_many(tmp_path: Path) -> None:
    photos, weights = _folder(tmp_path, count=2)
    out = tmp_path / "out"
    args = _args(photos, weights, out, "--save-raw", str(tmp_path / "raw.png"))
    result = CliRunner().invoke(app, args, env=ENV)
    assert result.exit_code != 0 and "--save-raw: for one photo at a time" in result.stderr
    assert not out.exists()
