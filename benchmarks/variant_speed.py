"""Step time of attention-net widths at one working size: how the compact default was sized.

    python benchmarks/variant_speed.py [--size 128] [--batch 4] [--widths 64 32 16] [--rounds 3]

One TTT step of the default strategy (no VGG) per width, interleaved over ``--rounds`` rounds in
one process (this machine's speed drifts); prints the median seconds per step and the FLOPs.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parent))
import step_speed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--widths", type=int, nargs="+", default=[64, 32, 16])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    setups = {}
    for width in args.widths:
        setup = step_speed.step_setup(
            "attention-net-compact", args.size, args.batch, "default", width=width
        )
        step_speed.one_step(setup)  # warm-up
        setups[width] = setup
    times: dict[int, list[float]] = {w: [] for w in setups}
    for _ in range(args.rounds):
        for width, setup in setups.items():
            times[width].append(step_speed.one_step(setup))
    print(f"{args.size}², batch {args.batch}, default strategy")
    for width, setup in setups.items():
        with FlopCounterMode(display=False) as counter:
            step_speed.one_step(setup)
        seconds = statistics.median(times[width])
        print(
            f"width {width:>3}: {seconds:6.2f} s/step, {counter.get_total_flops() / 1e9:6.0f} GFLOP"
        )


if __name__ == "__main__":
    main()
