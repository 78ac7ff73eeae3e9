from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from typer.testing import CliRunner

from tttkit.cli import app
from tttkit.io import write_image

ENV = {"NO_COLOR": "1", "COLUMNS": "200", "TERM": "dumb"}


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("photos")
    generator = torch.Generator().manual_seed(0)
    for i in range(5):
        base = torch.rand(3, 1, 1, generator=generator)
        ramp = torch.linspace(0, 1, 48).view(1, 1, 48)
        write_image(folder / f"p{i}.png", (base * 0.7 + 0.3 * ramp).expand(3, 40, 48))
    return folder


def pretrain(photos: Path, out: Path, *extra: str) -> tuple[int, str]:
    args = [
        "pretrain", str(photos), "--backbone", "attention-net-compact", "--out", str(out),
        "--size", "32", "--batch-size", "2", "--holdout", "1", "--loss", "perceptual=0",
        "--backbone-option", "width=4", "--backbone-option", "residual_blocks=1", "--device", "cpu",
        "--checkpoint-every", "2", "--validate-every", "2", *extra,
    ]  # fmt: skip
    result = CliRunner().invoke(app, args, env=ENV)
    return result.exit_code, result.stdout + result.stderr


def test_resume_continues_exactly(photos: Path, tmp_path: Path) -> None:
    straight, split = tmp_path / "straight.safetensors", tmp_path / "split.safetensors"
    assert pretrain(photos, straight, "--steps", "4")[0] == 0
    assert pretrain(photos, split, "--steps", "2")[0] == 0
    log_path = split.with_name(split.name + ".log.jsonl")
    with log_path.open("a") as handle:  # an interrupted run logged a step it never saved
        handle.write(json.dumps({"step": 3, "losses": {"total": 1.0}}) + "\n")
        handle.write('{"step": 4, "los')  # and was killed in the middle of a line
    code, output = pretrain(photos, split, "--steps", "4", "--resume", str(split))
    assert code == 0, output
    a, b = load_file(str(straight)), load_file(str(split))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    log = [
        json.loads(line)
        for line in split.with_name(split.name + ".log.jsonl").read_text().splitlines()
    ]
    assert [r["step"] for r in log if "losses" in r] == [1, 2, 3, 4]
    assert any("validation" in r for r in log)
    from tttkit.checkpoint import read_metadata

    best = split.with_name("split.best.safetensors")
    scores = [r["validation"]["l1_hole"] for r in log if "validation" in r]
    assert json.loads(read_metadata(best)["tttkit.pretrain.validation"])["l1_hole"] == min(scores)


def test_resume_refuses_other_settings(photos: Path, tmp_path: Path) -> None:
    out = tmp_path / "run.safetensors"
    assert pretrain(photos, out, "--steps", "2")[0] == 0
    code, output = pretrain(photos, out, "--steps", "4", "--resume", str(out), "--lr", "0.1")
    assert code == 2 and "settings differ" in output and "lr" in output


def test_checkpoint_loads_for_inpainting(photos: Path, tmp_path: Path) -> None:
    from tttkit.checkpoint import load_backbone, read_metadata

    out = tmp_path / "run.safetensors"
    assert pretrain(photos, out, "--steps", "2")[0] == 0
    assert read_metadata(out)["tttkit.pretrain.step"] == "2"
    name, net = load_backbone(out)
    assert name == "attention-net-compact" and net.config["width"] == 4


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_train_data_parallel(photos: Path, tmp_path: Path) -> None:
    out = tmp_path / "ddp.safetensors"
    command = [
        sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2",
        "--master-addr", "127.0.0.1", "--master-port", str(_free_port()),
        "-m", "tttkit", "pretrain", str(photos), "--backbone", "attention-net-compact",
        "--out", str(out), "--size", "32", "--batch-size", "1", "--holdout", "1",
        "--loss", "perceptual=0", "--backbone-option", "width=4",
        "--backbone-option", "residual_blocks=1", "--device", "cpu", "--steps", "2",
        "--checkpoint-every", "2",
    ]  # fmt: skip
    env = {**os.environ, **ENV, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert load_file(str(out))  # rank 0 wrote the checkpoint
    log = out.with_name(out.name + ".log.jsonl").read_text().splitlines()
    assert [json.loads(line)["step"] for line in log if "losses" in line] == [1, 2]
