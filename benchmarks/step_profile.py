"""Where one test-time training step spends its time: cProfile or torch.profiler of the step.

    python benchmarks/step_profile.py [--backbone attention-net-compact] [--size 128]
        [--batch 4] [--precision bf16|fp32] [--steps 5] [--top 30] [--ops] [--as-avx2]

Prints the Python call sites under ``_train_step`` (tttkit, its plugins, kornia, torch's
functional and optimizers) sorted by cumulative time, after two warm-up steps. Time spent in
autograd's backward pass is not attributed to call sites by cProfile: it is the difference
between ``_train_step``'s total and the forward-side entries.

``--ops`` profiles PyTorch's operators instead (``torch.profiler``, self CPU time, forward and
backward alike): the seconds a step spends in each, grouped (convolutions forward and
backward, matrix products, normalization, element-wise, …), then the top operators.
``--as-avx2`` runs it as an AVX2-only CPU would where this one has more (the same emulation as
``readme_demo.py``: PyTorch's and oneDNN's kernels limited to AVX2, fp32).
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import sys
from collections import defaultdict
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from readme_demo import AS_AVX2, cpu_class
from step_speed import one_step, step_setup

#: Operator groups of ``--ops``, matched in order against an operator's name.
GROUPS = (
    ("convolution backward", ("convolution_backward",)),
    ("convolution forward", ("convolution", "conv2d")),
    ("attention and matrix products", ("attention", "bmm", "mm", "matmul", "addmm", "linear")),
    ("softmax", ("softmax",)),
    ("normalization", ("norm",)),
    ("copies and casts", ("copy_", "to", "_to_copy", "contiguous", "clone", "cat", "stack")),
    ("pooling and resampling", ("pool", "upsample", "interpolate", "grid_sampler", "pad", "pad2d")),
    ("optimizer", ("_foreach", "adam")),
)


def group_of(name: str) -> str:
    """The ``GROUPS`` entry an operator belongs to; ``element-wise and other`` if none."""
    bare = name.removeprefix("aten::").lower()
    for group, keys in GROUPS:
        # Long keys match anywhere ("pool" in "max_pool2d"); short ones only as a word.
        if any(key in bare if len(key) > 3 else key in bare.split("_") for key in keys):
            return group
    return "element-wise and other"


def ops_profile(setup: dict, dtype: torch.dtype | None, steps: int, top: int) -> None:
    """Per-step self CPU seconds by operator group, then the ``top`` operators."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        total = sum(one_step(setup, dtype) for _ in range(steps))
    events = [e for e in prof.key_averages() if e.key.startswith("aten::")]
    by_group: dict[str, float] = defaultdict(float)
    for event in events:
        by_group[group_of(event.key)] += event.self_cpu_time_total / 1e6 / steps
    step = total / steps
    print(f"step: {step:.3f} s (mean of {steps}, under the profiler)")
    for group, seconds in sorted(by_group.items(), key=lambda item: -item[1]):
        print(f"  {group:<30} {seconds:7.3f} s  {100 * seconds / step:5.1f}%")
    outside = step - sum(by_group.values())
    print(f"  {'outside operators (Python…)':<30} {outside:7.3f} s  {100 * outside / step:5.1f}%")
    print(f"top {top} operators by self CPU time per step:")
    for event in sorted(events, key=lambda e: -e.self_cpu_time_total)[:top]:
        seconds = event.self_cpu_time_total / 1e6 / steps
        print(f"  {event.key:<40} {seconds:7.3f} s  {100 * seconds / step:5.1f}%  "
              f"×{event.count // steps}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbone", default="attention-net-compact")
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--strategy", default="default")
    parser.add_argument("--precision", choices=["bf16", "fp32"], default="bf16")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--ops", action="store_true", help="operator groups (torch.profiler)")
    parser.add_argument("--as-avx2", action="store_true", help="emulate an AVX2-only CPU")
    args = parser.parse_args()
    if args.as_avx2 and args.precision == "bf16":
        parser.error("--as-avx2 emulates a CPU without native bf16: use --precision fp32")
    if args.as_avx2 and os.environ.get("ATEN_CPU_CAPABILITY") != "avx2":
        # The kernel choice is made when torch loads: start again with the limits set.
        os.execve(sys.executable, [sys.executable, *sys.argv], {**os.environ, **AS_AVX2})
    from tttkit.engine.execution import cpu_flags

    print(f"CPU: {cpu_class(cpu_flags(), args.as_avx2)}, {torch.get_num_threads()} threads; "
          f"{args.backbone} at {args.size}², batch {args.batch}, {args.precision}")  # fmt: skip
    dtype = torch.bfloat16 if args.precision == "bf16" else None
    setup = step_setup(args.backbone, args.size, args.batch, args.strategy)
    for _ in range(2):
        one_step(setup, dtype)
    if args.ops:
        ops_profile(setup, dtype, args.steps, args.top)
        return
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(args.steps):
        one_step(setup, dtype)
    profiler.disable()
    stats = pstats.Stats(profiler).sort_stats("cumulative")
    stats.print_stats(r"tttkit|kornia|torch/(nn/functional|optim)", args.top)


if __name__ == "__main__":
    main()
