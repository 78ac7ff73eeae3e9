"""The README's first command, timed end to end, and (optionally) its picture.

    python benchmarks/readme_demo.py [--rounds 1] [--as-avx2] [--picture docs/images/demo.jpg]
        [-- EXTRA INPAINT OPTIONS]

Runs ``tttkit inpaint`` on the bundled demo photo and mask with the bundled weights, in a fresh
process each round, as the README does (its install step excluded), and prints the wall time
with the CPU's class: **AVX2 fp32** (no native bf16: ``--precision auto`` runs fp32), **AVX-512
bf16** or **AMX**. Timings of one class are never quoted for another (``docs/performance.md``).

``--as-avx2`` runs the command as an AVX2-only CPU would where this one has more: PyTorch's
kernels limited to AVX2 (``ATEN_CPU_CAPABILITY=avx2``), oneDNN's to AVX2
(``ONEDNN_MAX_CPU_ISA=AVX2``) and fp32 (``TTTKIT_CPU_BF16=0``). It is an emulation — the cache
sizes, clock and memory of this CPU stay — and the output says so.

``--picture`` writes the masked demo, the raw fill and the finetuned fill side by side (the
command's ``--save-raw`` file and its output), for the README.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "src" / "tttkit" / "data" / "demo"
AS_AVX2 = {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", "TTTKIT_CPU_BF16": "0"}


def cpu_class(flags: frozenset[str], as_avx2: bool) -> str:
    """The class the timings belong to, from the CPU's flags."""
    if as_avx2:
        return "AVX2 fp32 (emulated on a CPU with " + cpu_class(flags, False) + ")"
    if "amx_tile" in flags:
        return "AMX"
    if "avx512_bf16" in flags:
        return "AVX-512 bf16"
    if "avx2" in flags:
        return "AVX2 fp32"
    return "pre-AVX2"


def picture(raw: Path, filled: Path, out: Path) -> None:
    """Masked input | raw fill | finetuned fill, each labelled, as one JPEG."""
    import cv2
    import numpy as np

    photo = cv2.imread(str(DEMO / "street.jpg"), cv2.IMREAD_COLOR)
    hole = cv2.imread(str(DEMO / "street_mask.png"), cv2.IMREAD_GRAYSCALE) > 127
    masked = photo.copy()
    masked[hole] = 255
    tiles = []
    for label, image in (
        ("photo and hole", masked),
        ("raw fill", cv2.imread(str(raw), cv2.IMREAD_COLOR)),
        ("after test-time training", cv2.imread(str(filled), cv2.IMREAD_COLOR)),
    ):
        image = image.copy()
        for colour, width in (((0, 0, 0), 3), ((255, 255, 255), 1)):
            cv2.putText(image, label, (8, 22), cv2.FONT_HERSHEY_SIMPLEX, 0.6, colour, width)
        tiles.append(image)
    gap = np.full((photo.shape[0], 6, 3), 255, np.uint8)
    strip = np.concatenate([tiles[0], gap, tiles[1], gap, tiles[2]], axis=1)
    out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(out), strip, [cv2.IMWRITE_JPEG_QUALITY, 88])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--as-avx2", action="store_true", help="emulate an AVX2-only CPU")
    parser.add_argument("--picture", type=Path)
    parser.add_argument("extra", nargs="*", help="more tttkit inpaint options (after --)")
    args = parser.parse_args()
    from tttkit.engine.execution import cpu_flags

    env = {**os.environ, **(AS_AVX2 if args.as_avx2 else {})}
    seconds = []
    with tempfile.TemporaryDirectory() as tmp:
        out, raw = Path(tmp) / "street_filled.png", Path(tmp) / "street_raw.png"
        command = [
            sys.executable, "-m", "tttkit", "inpaint", str(DEMO / "street.jpg"),
            "--mask", str(DEMO / "street_mask.png"), "--out", str(out), "--save-raw", str(raw),
            *args.extra,
        ]  # fmt: skip
        for _ in range(args.rounds):
            out.unlink(missing_ok=True)
            started = time.perf_counter()
            subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL)
            seconds.append(time.perf_counter() - started)
        if args.picture:
            picture(raw, out, args.picture)
    print(f"CPU: {cpu_class(cpu_flags(), args.as_avx2)}, {os.cpu_count()} cores")
    print(f"command: tttkit inpaint demo {' '.join(args.extra)}".rstrip())
    rounds = ", ".join(f"{s:.1f}" for s in seconds)
    print(f"end to end: median {statistics.median(seconds):.1f} s over {len(seconds)} ({rounds})")


if __name__ == "__main__":
    main()
