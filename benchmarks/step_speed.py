"""Speed of test-time training on this machine: one command, a table and JSON.

    python benchmarks/step_speed.py [--backbones NAME ...] [--size 256] [--batch 4]
        [--repeats 3] [--strategy default] [--allocator tuned|default|both] [--json out.json]

Prints, in one run:
* this machine's fp32 GEMM throughput (``torch.mm`` 2048², GFLOP/s), measured again inside
  every backbone's process right before its steps (the "same-run" figure its share refers to);
* for each backbone (default: every registered one that needs no file): one TTT step's time
  (median of ``--repeats``) at ``--size``², batch ``--batch``, with ``--strategy``'s components
  and losses; its FLOPs counted by ``torch.utils.flop_counter``; the achieved GFLOP/s as a
  fraction of the GEMM figure; the share of the step spent outside the network (masks, filler,
  augmentation, losses, optimizer) — step time minus the network's own passes, timed separately
  with the same batch: generator forward and backward, the discriminator on the fake with input
  gradients only, then on real and detached fake with weight gradients; and the peak resident
  memory of that backbone's process (each backbone runs in a fresh process);
* the end-to-end wall time of ``tttkit inpaint`` on the bundled 256² demo photo with the
  default backbone and strategy (a fresh process: start-up and model load included).

``--allocator both`` runs every backbone with glibc's default allocator settings and with
:func:`tttkit.engine.execution.tune_allocator`, interleaved, for an A/B comparison. The machine's
speed drifts: compare configurations within one run, not across runs.
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

ROOT = Path(__file__).resolve().parents[1]


def gemm_gflops(size: int = 2048, repeats: int = 10) -> float:
    """fp32 matrix-multiply throughput."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    torch.mm(a, b)
    started = time.perf_counter()
    for _ in range(repeats):
        torch.mm(a, b)
    return 2 * size**3 * repeats / (time.perf_counter() - started) / 1e9


def step_setup(name: str, size: int, batch: int, strategy: str, **options: object) -> dict:
    """A backbone (built with factory ``options``), a strategy spec and one training image,
    ready for ``_train_step``."""
    import tttkit
    from tttkit.engine.loop import _build_parts
    from tttkit.imageops import dilate
    from tttkit.strategy import get_strategy, override

    net = tttkit.backbones().get(name)(**options)
    spec = override(get_strategy(strategy), batch_size=batch, select="last")
    from tttkit.engine.perceptual import network_for

    # As a run does: the default's optional perceptual term only where VGG weights are found.
    spec, perceptual, notices = network_for(spec, None)
    for notice in notices:
        print(f"note: {notice}")
    image = torch.rand(1, 3, size, size)
    mask = torch.zeros(1, 1, size, size)
    mask[..., size // 4 : size // 2, size // 3 : 2 * size // 3] = 1
    parts = _build_parts(spec, net, tttkit.get_host())
    adversarial = spec.losses.adversarial > 0 and net.discriminator is not None
    params_g = list(net.generator.parameters())
    params_d = list(net.discriminator.parameters()) if adversarial else []
    return {
        "net": net.train(),
        "spec": spec,
        "image": image,
        "mask": mask,
        "forbidden": dilate(mask, spec.hole_margin),
        "parts": parts,
        "opt_g": torch.optim.Adam(params_g, lr=1e-6, betas=(0.0, 0.9)),
        "opt_d": torch.optim.Adam(params_d, lr=1e-6, betas=(0.0, 0.9)) if params_d else None,
        "adversarial": adversarial,
        "generator": torch.Generator().manual_seed(0),
        "perceptual": perceptual,
    }


def one_step(s: dict, dtype: torch.dtype | None = None) -> float:
    """Time one full engine step (``dtype``: autocast precision, ``None`` for fp32)."""
    from tttkit.engine.loop import _train_step

    started = time.perf_counter()
    _train_step(
        s["net"], s["image"], s["mask"], s["forbidden"], s["spec"], s["parts"], s["generator"],
        s["perceptual"], lambda v, h: s["net"].generate(v, h).image, s["opt_g"], s["opt_d"],
        s["adversarial"], dtype,
    )  # fmt: skip
    return time.perf_counter() - started


def network_time(s: dict) -> float:
    """Time of the network's own passes in a step (what ``_train_step`` runs of G and D)."""
    from tttkit.engine.execution import no_weight_grads

    net, batch = s["net"], s["spec"].batch_size
    image = s["image"].expand(batch, -1, -1, -1).clone()
    mask = s["mask"].expand(batch, -1, -1, -1).clone()
    started = time.perf_counter()
    with no_weight_grads(net.discriminator if s["adversarial"] else None):
        out = net.generate(image, mask).image
        loss = out.mean()
        if s["adversarial"]:
            loss = loss + net.discriminate(out).mean()
        loss.backward()
    if s["adversarial"]:
        (net.discriminate(image).mean() + net.discriminate(out.detach()).mean()).backward()
    return time.perf_counter() - started


def count_flops(s: dict) -> float:
    """FLOPs of one full engine step."""
    with FlopCounterMode(display=False) as counter:
        one_step(s)
    return counter.get_total_flops()


def worker(name: str, args: argparse.Namespace) -> dict:
    """Measure one backbone in this (fresh) process."""
    from tttkit.engine.execution import tune_allocator

    tuned = tune_allocator() if args.allocator == "tuned" else False
    setup = step_setup(name, args.size, args.batch, args.strategy)
    one_step(setup)  # warm-up: first-call allocations and kernel selection
    gemm = gemm_gflops()
    steps = [one_step(setup) for _ in range(args.repeats)]
    network = [network_time(setup) for _ in range(args.repeats)]
    flops = count_flops(setup)
    seconds = statistics.median(steps)
    return {
        "backbone": name,
        "allocator": "tuned" if tuned else "default",
        "gemm_gflops": gemm,
        "step_seconds": seconds,
        "step_seconds_all": steps,
        "network_seconds": statistics.median(network),
        "gflop_per_step": flops / 1e9,
        "achieved_gflops": flops / seconds / 1e9,
        "fraction_of_gemm": flops / seconds / 1e9 / gemm,
        "outside_network_share": max(0.0, 1 - statistics.median(network) / seconds),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def runnable_backbones() -> tuple[list[str], dict[str, str]]:
    """Registered backbones buildable without arguments, and the others with the reason."""
    import tttkit
    from tttkit.registry import REQUIRED

    registry = tttkit.backbones()
    runnable, skipped = [], {}
    for name in registry.names():
        required = [p for p, d in registry.entry(name).parameters().items() if d == REQUIRED]
        if required:
            skipped[name] = f"needs {', '.join(required)}"
        else:
            runnable.append(name)
    return runnable, skipped


def inpaint_wall_time() -> float:
    """``tttkit inpaint`` on the bundled 256² demo in a fresh process, with the defaults."""
    demo = ROOT / "src" / "tttkit" / "data" / "demo"
    with tempfile.TemporaryDirectory() as tmp:
        command = [
            sys.executable, "-m", "tttkit", "inpaint", str(demo / "street.jpg"),
            "--mask", str(demo / "street_mask.png"), "--out", f"{tmp}/out.png", "--json",
        ]  # fmt: skip
        started = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(f"tttkit inpaint failed:\n{done.stderr}")
        return time.perf_counter() - started


def run_worker(name: str, allocator: str, args: argparse.Namespace) -> dict:
    command = [
        sys.executable, __file__, "--worker", name, "--allocator", allocator,
        "--size", str(args.size), "--batch", str(args.batch), "--repeats", str(args.repeats),
        "--strategy", args.strategy,
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        return {"backbone": name, "allocator": allocator, "error": done.stderr.strip()[-400:]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def print_table(report: dict) -> None:
    print(f"GEMM fp32 2048² (parent process): {report['gemm_gflops']:.1f} GFLOP/s")
    header = ("backbone", "alloc", "s/step", "GFLOP", "GFLOP/s", "GEMM", "of GEMM", "outside")
    print(f"{header[0]:<24}{header[1]:>8}" + "".join(f"{h:>9}" for h in header[2:]) + "   RSS")
    for r in report["steps"]:
        if "error" in r:
            print(f"{r['backbone']:<24}{r['allocator']:>8}  error: {r['error'].splitlines()[-1]}")
            continue
        print(
            f"{r['backbone']:<24}{r['allocator']:>8}{r['step_seconds']:>9.2f}"
            f"{r['gflop_per_step']:>9.0f}{r['achieved_gflops']:>9.1f}{r['gemm_gflops']:>9.1f}"
            f"{r['fraction_of_gemm']:>9.0%}{r['outside_network_share']:>9.0%}"
            f"{r['peak_rss_mb'] / 1024:>6.1f} GB"
        )
    for name, reason in report["skipped"].items():
        print(f"{name:<24} skipped: {reason}")
    wall = report.get("inpaint_wall_seconds")
    if wall is not None:
        print(f"tttkit inpaint (256² demo, default backbone and strategy): {wall:.1f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbones", nargs="+", help="default: every runnable registered one")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--strategy", default="default", help="e.g. optimal (needs VGG weights)")
    parser.add_argument("--allocator", choices=("tuned", "default", "both"), default="tuned")
    parser.add_argument("--no-inpaint", action="store_true", help="skip the end-to-end run")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args)))
        return

    runnable, skipped = runnable_backbones()
    names = args.backbones or runnable
    allocators = ("default", "tuned") if args.allocator == "both" else (args.allocator,)
    report = {
        "torch_threads": torch.get_num_threads(),
        "gemm_gflops": gemm_gflops(),
        "size": args.size,
        "batch": args.batch,
        "strategy": args.strategy,
        "steps": [run_worker(n, a, args) for n in names for a in allocators],
        "skipped": {n: r for n, r in skipped.items() if n in names or not args.backbones},
        "inpaint_wall_seconds": None if args.no_inpaint else inpaint_wall_time(),
    }
    print_table(report)
    print(json.dumps(report, indent=2))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
