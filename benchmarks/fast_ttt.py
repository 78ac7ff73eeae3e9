"""Fast test-time training, side by side: per backbone, precision, freezing policy and view size.

    python benchmarks/fast_ttt.py [--backbones attention-net-compact lama …]
        [--precisions fp32 bf16] [--policies none last-k norm-only lora] [--crops 0 128]
        [--steps 3] [--batch 4] [--json out.json]

Every configuration runs in a fresh process (so its peak memory is its own): the backbone as its
factory builds it (random weights: speed does not depend on them), the ``default`` strategy at the
backbone's working size with ``--batch`` views, the policy as ``--freeze``, crops as
``crop_size`` (only for backbones that declare ``trains_on_crops``), ``--steps`` steps through
:func:`tttkit.engine.run_ttt` — the engine's real path, adapters prepared and merged. Reported:
seconds per step (median of the steps after the first), set-up seconds (network copy, policy,
step-0 fill), one evaluation's fill, the projected seconds for a 60-step photo (set-up + 60
steps + 6 fills) and the process's peak resident memory. Configurations run one after
the other, interleaved by backbone, on an otherwise idle machine: this machine's speed drifts, so
compare within one run.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

#: Backbones measured by default: the shipped default, the thesis's network, LaMa-sized, a timm
#: U-Net.
BACKBONES = ("attention-net-compact", "attention-net", "lama", "timm-unet")
PHOTO_STEPS, EVAL_EVERY = 60, 10  # the default strategy's


def demo_at(size: int):  # type: ignore[no-untyped-def]
    """The bundled demo photo and its mask, resized to ``size``² (the backbone's working size)."""
    import torch.nn.functional as F

    import tttkit
    from tttkit.io import read_image, read_mask

    demo = Path(tttkit.__file__).parent / "data" / "demo"
    image = F.interpolate(read_image(demo / "street.jpg")[None], size=(size, size), mode="area")
    mask = F.interpolate(read_mask(demo / "street_mask.png")[None], size=(size, size))
    return image[0], mask[0]


def worker(args: argparse.Namespace) -> dict:
    """One configuration, in this (fresh) process."""
    import torch

    import tttkit
    from tttkit.engine import run_ttt
    from tttkit.engine.execution import tune_allocator
    from tttkit.options import RunOptions

    tune_allocator()
    torch.manual_seed(0)
    net = tttkit.registry("backbones").get(args.worker)()
    size = net.conventions.working_size
    image, mask = demo_at(size)
    sets = [f"eval_every={args.steps}", f"batch_size={args.batch}", f"crop_size={args.crop}"]
    spec = tttkit.override(
        tttkit.get_strategy("default"), steps=args.steps, freeze=args.policy, sets=sets
    )
    started = time.perf_counter()
    result = run_ttt(net, image, mask, spec, RunOptions(precision=args.precision))
    wall = time.perf_counter() - started
    steps = [record.seconds for record in result.history[1:]] or [result.history[0].seconds]
    step = statistics.median(steps)
    setup = result.seconds["setup"]
    fill = _fill_seconds(result.network, image, mask, args.precision)
    trainable = sum(p.numel() for p in net.generator.parameters())
    return {
        "backbone": args.worker,
        "size": size,
        "batch": args.batch,
        "precision": args.precision,
        "policy": args.policy,
        "crop": args.crop,
        "step_seconds": step,
        "setup_seconds": setup,
        "fill_seconds": fill,
        "photo_seconds": setup + PHOTO_STEPS * step + PHOTO_STEPS // EVAL_EVERY * fill,
        "wall_seconds": wall,
        "generator_parameters": trainable,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def _fill_seconds(net, image, mask, precision: str) -> float:  # type: ignore[no-untyped-def]
    """One evaluation's fill of the holes (what every ``eval_every`` steps costs)."""
    import torch

    from tttkit.engine.execution import autocast, resolve_precision

    cpu = torch.device("cpu")
    times = []
    for _ in range(2):
        started = time.perf_counter()
        with torch.inference_mode(), autocast(cpu, resolve_precision(precision, cpu)):
            net.eval().generate(image[None], mask[None])
        times.append(time.perf_counter() - started)
    return min(times)


def run_worker(
    backbone: str, precision: str, policy: str, crop: int, args: argparse.Namespace
) -> dict:
    command = [
        sys.executable, __file__, "--worker", backbone, "--precision", precision,
        "--policy", policy, "--crop", str(crop), "--steps", str(args.steps),
        "--batch", str(args.batch),
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        error = (done.stderr.strip().splitlines() or ["?"])[-1]
        return {"backbone": backbone, "precision": precision, "policy": policy, "crop": crop,
                "error": error[-300:]}  # fmt: skip
    return json.loads(done.stdout.strip().splitlines()[-1])


def crops_allowed(backbone: str) -> bool:
    import torch

    import tttkit

    with torch.device("meta"):
        return bool(tttkit.registry("backbones").get(backbone)().conventions.trains_on_crops)


def print_table(rows: list[dict]) -> None:
    header = f"{'backbone':<24}{'size':>5}{'prec':>6}{'policy':>11}{'crop':>6}"
    print(header + f"{'s/step':>9}{'setup s':>9}{'60-step s':>11}{'peak GB':>9}")
    for r in rows:
        head = f"{r['backbone']:<24}{r.get('size', ''):>5}{r['precision']:>6}{r['policy']:>11}"
        head += f"{r['crop'] or 'full':>6}"
        if "error" in r:
            print(head + f"  error: {r['error']}")
            continue
        print(
            head + f"{r['step_seconds']:>9.2f}{r['setup_seconds']:>9.2f}"
            f"{r['photo_seconds']:>11.1f}{r['peak_rss_mb'] / 1024:>9.2f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbones", nargs="+", default=list(BACKBONES))
    parser.add_argument("--precisions", nargs="+", default=["fp32", "bf16"])
    parser.add_argument("--policies", nargs="+", default=["none", "last-k", "norm-only", "lora"])
    parser.add_argument("--crops", nargs="+", type=int, default=[0, 128])
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--precision", default="fp32", help=argparse.SUPPRESS)
    parser.add_argument("--policy", default="none", help=argparse.SUPPRESS)
    parser.add_argument("--crop", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args)))
        return
    rows = []
    for backbone in args.backbones:
        crops = [c for c in args.crops if c == 0 or crops_allowed(backbone)]
        for precision in args.precisions:
            for policy in args.policies:
                for crop in crops:
                    rows.append(run_worker(backbone, precision, policy, crop, args))
                    print_table(rows[-1:])
    print()
    print_table(rows)
    report = {"steps": args.steps, "batch": args.batch, "rows": rows}
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
