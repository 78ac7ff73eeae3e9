"""The GPU check: CUDA-only tests, then test-time training timed on the GPU. One table, and JSON.

    python benchmarks/gpu_check.py [--json gpu_check.json] [--quick]

Installs nothing (run it in the project's environment: ``pip install -e '.[dev]'``). Steps:

1. the CUDA-only tests (``pytest -m cuda``);
2. per photo, end to end through :func:`tttkit.engine.run_ttt` on the bundled demo photo, random
   weights (speed does not depend on them), ``--precision auto`` (bf16 where supported):
   the thesis setting (the reference ``attention-net``, batch 4, 150 steps, VGG perceptual
   loss off: no weights travel), LaMa's 60-step TTT, the compact default (60 steps), each at its
   backbone's working size;
3. ``tttkit eval`` throughput on the bundled example photos (photos per minute, default
   strategy, 60 steps).

Meant to finish in well under 8 minutes on one modern GPU (``--quick``: fewer steps, a smoke run).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from fast_ttt import demo_at  # noqa: E402

#: (label, backbone, strategy overrides as --set assignments, steps); each runs at its backbone's
#: working size, printed beside it
RUNS = (
    ("thesis setting: attention-net, batch 4", "attention-net", ["losses.perceptual=0"], 150),
    ("LaMa, batch 4", "lama", [], 60),
    ("compact default, batch 4", "attention-net-compact", [], 60),
)


def cuda_tests() -> dict:
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-m", "cuda", "-p", "no:cacheprovider"],
        cwd=ROOT, capture_output=True, text=True,
    )  # fmt: skip
    last = (done.stdout.strip().splitlines() or ["(no output)"])[-1]
    return {
        "returncode": done.returncode,
        "summary": last,
        "seconds": time.perf_counter() - started,
    }


def photo_run(label: str, backbone: str, sets: list[str], steps: int) -> dict:
    import torch

    import tttkit
    from tttkit.engine import run_ttt
    from tttkit.engine.execution import resolve_precision
    from tttkit.options import RunOptions

    torch.manual_seed(0)
    net = tttkit.registry("backbones").get(backbone)()
    size = net.conventions.working_size
    image, mask = demo_at(size)
    spec = tttkit.override(tttkit.get_strategy("default"), steps=steps, sets=sets)
    options = RunOptions(device="cuda")
    run_ttt(net, image, mask, tttkit.override(spec, steps=2), options)  # warm-up: kernels
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    started = time.perf_counter()
    result = run_ttt(net, image, mask, spec, options)
    torch.cuda.synchronize()
    seconds = time.perf_counter() - started
    steps_s = sorted(r.seconds for r in result.history)
    dtype = resolve_precision("auto", torch.device("cuda"))
    return {
        "run": label, "backbone": backbone, "size": size, "steps": steps,
        "precision": "fp32" if dtype is None else "bf16",
        "photo_seconds": seconds, "step_seconds_median": steps_s[len(steps_s) // 2],
        "peak_gpu_gb": torch.cuda.max_memory_allocated() / 2**30,
    }  # fmt: skip


def eval_throughput(steps: int) -> dict:
    photos = ROOT / "src" / "tttkit" / "data" / "examples"
    count = len([p for p in photos.iterdir() if p.suffix.lower() in (".jpg", ".png")])
    with tempfile.TemporaryDirectory() as tmp:
        masks = subprocess.run(
            ["tttkit", "masks", str(photos), "--out", f"{tmp}/masks", "--size", "128"],
            capture_output=True, text=True,
        )  # fmt: skip
        if masks.returncode != 0:
            return {"error": masks.stderr.strip()[-300:]}
        started = time.perf_counter()
        done = subprocess.run(
            ["tttkit", "eval", str(photos), "--masks", f"{tmp}/masks", "--strategy", "default",
             "--out", f"{tmp}/run", "--device", "cuda", "--steps", str(steps), "--fid", "off",
             "--json"],
            capture_output=True, text=True,
        )  # fmt: skip
        seconds = time.perf_counter() - started
    if done.returncode != 0:
        return {"error": done.stderr.strip()[-300:]}
    return {"photos": count, "steps": steps, "seconds": seconds,
            "photos_per_minute": 60 * count / seconds}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, default=Path("gpu_check.json"))
    parser.add_argument("--quick", action="store_true", help="a tenth of the steps: smoke run")
    args = parser.parse_args()
    import torch

    if not torch.cuda.is_available():
        raise SystemExit("gpu_check: no CUDA device is visible to torch; nothing to check")
    report: dict = {"gpu": torch.cuda.get_device_name(), "torch": torch.__version__}
    report["cuda_tests"] = cuda_tests()
    scale = 10 if args.quick else 1
    report["runs"] = [
        photo_run(label, backbone, sets, max(2, steps // scale))
        for label, backbone, sets, steps in RUNS
    ]
    report["eval"] = eval_throughput(max(2, 60 // scale))
    print(f"GPU: {report['gpu']} (torch {report['torch']})")
    tests = report["cuda_tests"]
    print(f"CUDA tests: {tests['summary']} (exit {tests['returncode']}, {tests['seconds']:.0f} s)")
    print(f"{'run':<36}{'size':>6}{'steps':>6}{'prec':>6}{'s/photo':>9}{'s/step':>8}{'peak GB':>9}")
    for r in report["runs"]:
        print(
            f"{r['run']:<36}{r['size']:>5}²{r['steps']:>6}{r['precision']:>6}{r['photo_seconds']:>9.1f}"
            f"{r['step_seconds_median']:>8.3f}{r['peak_gpu_gb']:>9.2f}"
        )
    ev = report["eval"]
    if "error" in ev:
        print(f"tttkit eval: error: {ev['error']}")
    else:
        print(f"tttkit eval: {ev['photos']} photos × {ev['steps']} steps in {ev['seconds']:.0f} s:"
              f" {ev['photos_per_minute']:.1f} photos/min")  # fmt: skip
    args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
