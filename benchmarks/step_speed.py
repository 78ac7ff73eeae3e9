"""Speed of test-time training on this machine: one command, a table and JSON.

    python benchmarks/step_speed.py [--backbones attention-net attention-net-compact]
        [--size 256] [--batch 4] [--repeats 3] [--strategy default] [--json out.json]

Prints, in one run:
* this machine's fp32 GEMM throughput (``torch.mm`` 2048², GFLOP/s);
* for each backbone: one TTT step's time (median of ``--repeats``) at ``--size``², batch
  ``--batch``, with ``--strategy``'s losses and components, its FLOPs counted by
  ``torch.utils.flop_counter``, the achieved GFLOP/s as a fraction of the GEMM figure, and
  the share of the step spent outside the network (masks, fillers, augmentation, losses other
  than the network's own passes, optimizer);
* peak resident memory of the process;
* the end-to-end wall time of ``tttkit inpaint`` on the bundled demo photo with the default
  backbone and strategy (a fresh process: start-up and model load included), when the default
  backbone's weights are shipped.

Compare configurations with interleaved runs in one process: this machine's speed drifts.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

import tttkit
from tttkit.engine import _build_parts, _train_step
from tttkit.imageops import dilate
from tttkit.strategy import get_strategy, override

ROOT = Path(__file__).resolve().parents[1]


def gemm_gflops(size: int = 2048, repeats: int = 10) -> float:
    """fp32 matrix-multiply throughput."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    torch.mm(a, b)
    started = time.perf_counter()
    for _ in range(repeats):
        torch.mm(a, b)
    return 2 * size**3 * repeats / (time.perf_counter() - started) / 1e9


def step_setup(name: str, size: int, batch: int, strategy: str) -> dict:
    """A backbone, a strategy spec and one training view, ready for `_train_step`."""
    net = tttkit.backbones().get(name)()
    spec = override(get_strategy(strategy), batch_size=batch, select="last")
    perceptual = None
    if spec.losses.perceptual > 0:
        from tttkit.perceptual import load_feature_network

        perceptual = load_feature_network()
    image = torch.rand(1, 3, size, size)
    mask = torch.zeros(1, 1, size, size)
    mask[..., size // 4 : size // 2, size // 3 : 2 * size // 3] = 1
    parts = _build_parts(spec, net, tttkit.get_host())
    params_g = [p for p in net.generator.parameters()]
    params_d = [p for p in net.discriminator.parameters()] if net.discriminator else []
    return {
        "net": net.train(),
        "spec": spec,
        "image": image,
        "mask": mask,
        "forbidden": dilate(mask, spec.hole_margin),
        "parts": parts,
        "opt_g": torch.optim.Adam(params_g, lr=1e-6, betas=(0.0, 0.9)),
        "opt_d": torch.optim.Adam(params_d, lr=1e-6, betas=(0.0, 0.9)) if params_d else None,
        "generator": torch.Generator().manual_seed(0),
        "perceptual": perceptual,
    }


def one_step(s: dict) -> float:
    started = time.perf_counter()
    _train_step(
        s["net"], s["image"], s["mask"], s["forbidden"], s["spec"], s["parts"], s["generator"],
        s["perceptual"], lambda v, h: s["net"].generate(v, h).image, s["opt_g"], s["opt_d"],
        s["opt_d"] is not None,
    )  # fmt: skip
    return time.perf_counter() - started


def network_time(s: dict) -> float:
    """Time of the network's own passes in a step: G forward+backward, D on real and fake."""
    net, batch = s["net"], s["spec"].batch_size
    image = s["image"].expand(batch, -1, -1, -1).clone()
    mask = s["mask"].expand(batch, -1, -1, -1).clone()
    started = time.perf_counter()
    out = net.generate(image, mask).image
    loss = out.mean()
    if net.discriminator is not None:
        loss = loss + net.discriminate(out).mean() + net.discriminate(image).mean()
    loss.backward()
    return time.perf_counter() - started


def count_flops(s: dict) -> float:
    with FlopCounterMode(display=False) as counter:
        one_step(s)
    return counter.get_total_flops()


def inpaint_wall_time() -> float | None:
    demo = Path(tttkit.__file__).parent / "data" / "demo"
    entry = tttkit.backbones().entry("attention-net-compact")
    if not Path(entry.extra.get("weights", "")).is_file():
        return None
    with tempfile.TemporaryDirectory() as tmp:
        command = [
            sys.executable, "-m", "tttkit", "inpaint", str(demo / "street.jpg"),
            "--mask", str(demo / "street_mask.png"), "--out", f"{tmp}/out.png", "--json",
        ]  # fmt: skip
        started = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--backbones", nargs="+", default=["attention-net", "attention-net-compact"]
    )
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--strategy", default="default", help="e.g. optimal (needs VGG weights) or default"
    )
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    gemm = gemm_gflops()
    rows = []
    for name in args.backbones:
        setup = step_setup(name, args.size, args.batch, args.strategy)
        one_step(setup)  # warm-up
        steps = [one_step(setup) for _ in range(args.repeats)]
        network = [network_time(setup) for _ in range(args.repeats)]
        flops = count_flops(setup)
        seconds = statistics.median(steps)
        rows.append({
            "backbone": name,
            "step_seconds": seconds,
            "gflop_per_step": flops / 1e9,
            "achieved_gflops": flops / seconds / 1e9,
            "fraction_of_gemm": flops / seconds / 1e9 / gemm,
            "outside_network_share": max(0.0, 1 - statistics.median(network) / seconds),
        })  # fmt: skip
    report = {
        "torch_threads": torch.get_num_threads(),
        "gemm_gflops": gemm,
        "size": args.size,
        "batch": args.batch,
        "strategy": args.strategy,
        "steps": rows,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "inpaint_wall_seconds": inpaint_wall_time(),
    }
    print(f"GEMM fp32 2048²: {gemm:.1f} GFLOP/s ({torch.get_num_threads()} threads)")
    print(f"{'backbone':<24}{'s/step':>8}{'GFLOP':>9}{'GFLOP/s':>9}{'of GEMM':>9}{'outside':>9}")
    for r in rows:
        print(
            f"{r['backbone']:<24}{r['step_seconds']:>8.2f}{r['gflop_per_step']:>9.0f}"
            f"{r['achieved_gflops']:>9.1f}{r['fraction_of_gemm']:>9.0%}"
            f"{r['outside_network_share']:>9.0%}"
        )
    print(f"peak RSS: {report['peak_rss_mb']:.0f} MB")
    wall = report["inpaint_wall_seconds"]
    print("tttkit inpaint (demo, defaults): " + (f"{wall:.1f} s" if wall else "no shipped weights"))
    print(json.dumps(report, indent=2))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
