from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.evaluation.conftest import ENV, eval_args, invoke, read_results
from tttkit.evaluation.results import comparable


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _close(ours: Any, theirs: Any) -> bool:
    """Equal, floats within a relative 1e-6 (thread counts may differ between the runs)."""
    if isinstance(ours, dict):
        return ours.keys() == theirs.keys() and all(_close(ours[k], theirs[k]) for k in ours)
    if isinstance(ours, list):
        return len(ours) == len(theirs) and all(map(_close, ours, theirs))
    if isinstance(ours, float):
        return ours == pytest.approx(theirs, rel=1e-6, abs=1e-9)
    return ours == theirs


def test_two_processes_give_the_single_process_results(
    dataset: dict[str, Path], vgg_file: Path, tmp_path: Path
) -> None:
    single, sharded = tmp_path / "single", tmp_path / "sharded"
    code, _, stderr = invoke(*eval_args(dataset, single, vgg_file))
    assert code == 0, stderr
    command = [
        sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2",
        "--master-addr", "127.0.0.1", "--master-port", str(_free_port()),
        "-m", "tttkit", *eval_args(dataset, sharded, vgg_file),
    ]  # fmt: skip
    env = {**os.environ, **ENV, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout)  # only rank 0 prints
    assert summary["pairs"] == 12 and summary["done_now"] < 12  # rank 0 did only its share

    shards = sorted(p.name for p in (sharded / "shards").iterdir())
    assert shards == ["rank-00000.jsonl", "rank-00001.jsonl"]
    records = read_results(sharded)
    assert {r["rank"] for r in records} == {0, 1}
    by_rank = [sum(r["rank"] == k and r["strategy"] == "default" for r in records) for k in (0, 1)]
    assert sorted(by_rank) == [1, 2]  # the expensive pairs are shared out
    expected = [comparable(r) for r in read_results(single)]
    assert _close([comparable(r) for r in records], expected)
    ours, theirs = (json.loads((run / "set_metrics.json").read_text()) for run in (sharded, single))
    assert _close(ours["values"], theirs["values"]) and ours["images"] == theirs["images"]
