"""Peak memory and time of `tttkit inpaint` on large photos with one small hole, per region mode.

Each run is a fresh `tttkit inpaint` process (the shipped compact default, 2 steps unless told
otherwise) on a synthetic photo of the given size saved as JPEG, with a 30-pixel hole; peak
resident memory is that child's own ``ru_maxrss`` (``os.wait4``). Prints one table and writes
JSON.

    python benchmarks/large_photos.py                      # 1024², 4096², 6000×4000; crop
    python benchmarks/large_photos.py --modes crop resize --sizes 6000x4000 --steps 60
"""

from __future__ import annotations

import argparse
import json
import os
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
    image_path, mask_path = (
        folder / f"photo_{width}x{height}.jpg",
        folder / f"mask_{width}x{height}.png",
    )
    cv2.imwrite(str(image_path), photo, [cv2.IMWRITE_JPEG_QUALITY, 92])
    cv2.imwrite(str(mask_path), mask)
    return image_path, mask_path


def run_once(image: Path, mask: Path, mode: str, steps: int, out: Path) -> dict[str, float]:
    """One `tttkit inpaint` in a child process: wall seconds and its own peak RSS (GB)."""
    command = [
        sys.executable, "-m", "tttkit", "inpaint", str(image), "--mask", str(mask),
        "--region", mode, "--steps", str(steps), "--out", str(out), "--json", "--device", "cpu",
    ]  # fmt: skip
    started = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(child.pid, 0)  # this child's own resource usage
    seconds = time.perf_counter() - started
    stdout, stderr = child.stdout.read(), child.stderr.read()  # type: ignore[union-attr]
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{stderr.decode()[-2000:]}")
    windows = json.loads(stdout)["regions"] or [{"window": "whole photo"}]
    return {"seconds": seconds, "peak_rss_gb": usage.ru_maxrss / 1e6, "windows": len(windows)}


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
                      f"  peak RSS {measured['peak_rss_gb']:5.2f} GB"
                      f"  {measured['windows']} window(s)", flush=True)  # fmt: skip
    if args.json is not None:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
