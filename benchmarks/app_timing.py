"""The app's times on this machine: start-up, and the demo completed through the page against
``tttkit inpaint`` on the same photo, interleaved (the machine's speed drifts).

    python benchmarks/app_timing.py [--rounds 2] [--steps 60] [--port 7870]

Starts ``tttkit app`` in a fresh process and times until it answers HTTP; then, per round, runs
the bundled demo photo and mask with the default strategy through the page (Gradio's client,
no browser) and through ``tttkit inpaint``, and checks that the two PNGs hold the same pixels.
Needs the app extra.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np
from PIL import Image

DEMO = Path(__file__).resolve().parents[1] / "src" / "tttkit" / "data" / "demo"


def start_app(port: int) -> tuple[subprocess.Popen[bytes], float]:
    started = time.perf_counter()
    server = subprocess.Popen(
        [sys.executable, "-m", "tttkit", "app", "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    while True:
        if server.poll() is not None:
            raise SystemExit("tttkit app exited during start-up")
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1)
            return server, time.perf_counter() - started
        except OSError:
            time.sleep(0.1)


def through_page(url: str, steps: int) -> tuple[float, np.ndarray]:
    from gradio_client import Client, handle_file

    client = Client(url, verbose=False)
    photo = handle_file(str(DEMO / "street.jpg"))
    client.predict(photo, api_name="/load_photo")
    editor = {"background": photo, "layers": [], "composite": None}
    started = time.perf_counter()
    outputs = client.predict(
        editor, handle_file(str(DEMO / "street_mask.png")), "attention-net-compact", None,
        "default", steps, 0, *[""] * 10, api_name="/run",
    )  # fmt: skip
    seconds = time.perf_counter() - started
    download = outputs[4]["value"] if isinstance(outputs[4], dict) else outputs[4]
    return seconds, np.asarray(Image.open(download))


def through_cli(steps: int) -> tuple[float, np.ndarray]:
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "out.png"
        command = [
            sys.executable, "-m", "tttkit", "inpaint", str(DEMO / "street.jpg"),
            "--mask", str(DEMO / "street_mask.png"), "--out", str(out), "--seed", "0",
            "--steps", str(steps), "--json",
        ]  # fmt: skip
        started = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        return time.perf_counter() - started, np.asarray(Image.open(out))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--port", type=int, default=7870)
    args = parser.parse_args()
    server, startup = start_app(args.port)
    print(f"tttkit app answers HTTP after {startup:.1f} s")
    try:
        for round_ in range(1, args.rounds + 1):
            page_s, page_png = through_page(f"http://127.0.0.1:{args.port}/", args.steps)
            cli_s, cli_png = through_cli(args.steps)
            same = np.array_equal(page_png, cli_png)
            print(f"round {round_}: page {page_s:.1f} s, tttkit inpaint {cli_s:.1f} s "
                  f"(end to end, process start included), same pixels: {same}")  # fmt: skip
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
