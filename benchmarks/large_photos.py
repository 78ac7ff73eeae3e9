"""Peak memory and time of `tttkit inpaint` on large photos with one small hole, per region mode.

Each run is a fresh `tttkit inpaint` process (the shipped compact default, 2 steps unless told
otherwise) on a synthetic photo of the given size saved as JPEG, with a 30-pixel hole; peak
resident memory is the child's ``ru_maxrss``. Prints one table and writes JSON.

    python benchmarks/large_photos.py                      # 1024², 4096², 6000×4000; crop
    python benchmarks/large_photos.py --modes crop resize --sizes 6000x4000 --steps 60
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np


def make_photo(folder: Path, width: int, height: int, hole: int) -> tuple[Path, Path]:
    """A smooth-plus-texture photo and a mask with one ``hole``-pixel square in the middle."""
    rng = np.random.default_rng(0)
    coarse = rng.integers(0, 256, (max(2, height // 256), max(2, width // 256), 3), np.uint8)
    photo = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)
    photo = cv2.add(photo, rng.integers(0, 24, photo.shape, np.uint8))
    mask = np.zeros((height, width), np.uint8)
    top, left = height // 2 - hole // 2, width // 2 - hole // 2
    mask[top : top + hole, left : left + hole] = 255
    image_path, mask_path = folder / f"photo_{width}x{height}.jpg", folder / f"mask_{width}x{height}.png"
    cv2.imwrite(str(image_path), photo, [cv2.IMWRITE_JPEG_QUALITY, 92])
    cv2.imwrite(str(mask_path), mask)
    return image_path, mask_path


def run_once(image: Path, mask: Path, mode: str, steps: int, out: Path) -> dict[str, float]:
    """One `tttkit inpaint` in a child process: wall seconds and peak RSS (GB)."""
    command = [
        sys.executable, "-m", "tttkit", "inpaint", str(image), "--mask", str(mask),
        "--region", mode, "--steps", str(steps), "--out", str(out), "--json", "--device", "cpu",
    ]  # fmt: skip
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr[-2000:]}")
    # ru_maxrss of children is the largest child so far: run the biggest sizes last.
    return {"seconds": seconds, "peak_rss_gb": max(peak_kb, before) / 1e6}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", default=["1024x1024", "4096x4096", "6000x4000"])
    parser.add_argument("--modes", nargs="+", default=["crop"])
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--hole", type=int, default=30)
    parser.add_argument("--json", type=Path, default=None, help="Also write the rows here.")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for size in args.sizes:
            width, height = (int(v) for v in size.lower().split("x"))
            image, mask = make_photo(folder, width, height, args.hole)
            for mode in args.modes:
                measured = run_once(image, mask, mode, args.steps, folder / f"out_{mode}.png")
                rows.append({"size": size, "mode": mode, "steps": args.steps, **measured})
                print(f"{size:>11} {mode:>6} {args.steps:>4} steps  {measured['seconds']:7.1f} s"
                      f"  peak RSS {measured['peak_rss_gb']:5.2f} GB", flush=True)  # fmt: skip
    if args.json is not None:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
