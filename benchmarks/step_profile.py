"""Where one test-time training step spends its time: cProfile of the engine step.

    python benchmarks/step_profile.py [--backbone attention-net-compact] [--size 128]
        [--precision bf16|fp32] [--steps 5] [--top 30]

Prints the Python call sites under ``_train_step`` (tttkit, its plugins, kornia, torch's
functional and optimizers) sorted by cumulative time, after two warm-up steps. Time spent in
autograd's backward pass is not attributed to call sites by cProfile: it is the difference
between ``_train_step``'s total and the forward-side entries.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from step_speed import one_step, step_setup


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbone", default="attention-net-compact")
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--strategy", default="default")
    parser.add_argument("--precision", choices=["bf16", "fp32"], default="bf16")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--top", type=int, default=30)
    args = parser.parse_args()
    dtype = torch.bfloat16 if args.precision == "bf16" else None
    setup = step_setup(args.backbone, args.size, args.batch, args.strategy)
    for _ in range(2):
        one_step(setup, dtype)
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(args.steps):
        one_step(setup, dtype)
    profiler.disable()
    stats = pstats.Stats(profiler).sort_stats("cumulative")
    stats.print_stats(r"tttkit|kornia|torch/(nn/functional|optim)", args.top)


if __name__ == "__main__":
    main()
