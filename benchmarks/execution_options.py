"""A/B of the execution options on this machine: fp32 vs bf16 autocast vs channels-last.

    python benchmarks/execution_options.py [--backbone attention-net-compact] [--size 128]
        [--batch 4] [--rounds 3]

Times one TTT step of the default strategy per option, interleaved over ``--rounds`` rounds
(this machine's speed drifts), and prints the median per option and its ratio to fp32.
"""

from __future__ import annotations

import argparse
import statistics
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
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    plain = step_setup(args.backbone, args.size, args.batch, "default")
    layout = step_setup(args.backbone, args.size, args.batch, "default")
    layout["net"] = layout["net"].to(memory_format=torch.channels_last)
    layout["image"] = layout["image"].contiguous(memory_format=torch.channels_last)
    options = {
        "fp32": (plain, None),
        "bf16 autocast": (plain, torch.bfloat16),
        "channels-last": (layout, None),
    }
    times: dict[str, list[float]] = {name: [] for name in options}
    for setup, dtype in options.values():
        one_step(setup, dtype)  # warm-up
    for _ in range(args.rounds):
        for name, (setup, dtype) in options.items():
            times[name].append(one_step(setup, dtype))
    base = statistics.median(times["fp32"])
    print(f"{args.backbone}, {args.size}², batch {args.batch}, {torch.get_num_threads()} threads")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"{name:<16}{median:>8.2f} s/step{median / base:>8.2f}×")


if __name__ == "__main__":
    main()
