"""The app's times on this machine: start-up, the demo completed through the page against
``tttkit inpaint`` on the same photo (interleaved: the machine's speed drifts), and how fast the
page answers on a 24-megapixel photo.

    python benchmarks/app_timing.py [--rounds 2] [--steps 30] [--port 7870] [--no-answers]

Starts ``tttkit app`` in a fresh process and times until it answers HTTP; then, per round, runs
the bundled demo photo and mask with the default strategy through the page (Gradio's client,
no browser) and through ``tttkit inpaint``, and checks that the two PNGs hold the same pixels.
Then, on the demo scaled to 6000×4000 with a small hole (issue 31's targets): the time for Run
to be answered by the page's status (the ``arm`` handler), for the raw fill to reach the page
(the first update carrying a fill), and for Cancel, pressed after step 2, to end the run.
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
from typing import Any

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
    started = time.perf_counter()
    outputs = client.predict(
        *run_args(photo, handle_file(str(DEMO / "street_mask.png")), steps), api_name="/run"
    )
    seconds = time.perf_counter() - started
    download = outputs[4]["value"] if isinstance(outputs[4], dict) else outputs[4]
    return seconds, np.asarray(Image.open(download))


def run_args(canvas: Any, mask: Any, steps: int) -> list[Any]:
    """The page's run fields in the order they are made (``tests/app/test_server.py``):
    editor (``canvas``: what the painting canvas holds, the display copy), mask, other shots,
    backbone, weights, strategy, steps, seed, the advanced fields, "show the whole photo"."""
    from tttkit.options import Overrides

    editor = {"background": canvas, "layers": [], "composite": None}
    advanced = [""] * (len(Overrides.names()) - 1)
    return [editor, mask, None, "attention-net-compact", None, "default", steps, 0, *advanced,
            False]  # fmt: skip


def answers(url: str, folder: Path) -> dict[str, float]:
    """On a 24 MP photo with a small hole: Run answered, raw fill shown, Cancel effective."""
    from gradio_client import Client, handle_file

    big = Image.open(DEMO / "street.jpg").convert("RGB").resize((6000, 4000), Image.LANCZOS)
    big.save(folder / "big.jpg", quality=92)
    big.resize((1600, 1067), Image.LANCZOS).save(folder / "canvas.png")  # the canvas's copy
    hole = np.zeros((4000, 6000), np.uint8)
    hole[1800:2100, 2800:3000] = 255
    Image.fromarray(hole).save(folder / "big_mask.png")
    client = Client(url, verbose=False)
    photo = handle_file(str(folder / "big.jpg"))
    client.predict(photo, api_name="/load_photo")
    clicked = time.perf_counter()
    client.predict(api_name="/arm")
    answered = time.perf_counter() - clicked
    canvas, mask = (
        handle_file(str(folder / "canvas.png")),
        handle_file(str(folder / "big_mask.png")),
    )
    job = client.submit(*run_args(canvas, mask, 200), api_name="/run")
    raw_at = cancel_at = None
    while not job.done():
        outputs = job.outputs()
        if raw_at is None and any(o[1] is not None for o in outputs):  # a fill in the preview
            raw_at = time.perf_counter() - clicked
        if cancel_at is None and any("step 2/" in str(o[0]) for o in outputs):
            cancel_at = time.perf_counter()
            client.predict(api_name="/cancel")
        time.sleep(0.05)
    ended = time.perf_counter()
    final = str(job.outputs()[-1][0]) if job.outputs() else ""
    return {
        "run_answered_s": answered,
        "raw_fill_shown_s": float("nan") if raw_at is None else raw_at,
        "cancel_effective_s": float("nan") if cancel_at is None else ended - cancel_at,
        "cancelled": float("Cancelled" in final),
    }


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
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--port", type=int, default=7870)
    parser.add_argument("--no-answers", action="store_true", help="skip the 24 MP checks")
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
        if not args.no_answers:
            with tempfile.TemporaryDirectory() as folder:
                found = answers(f"http://127.0.0.1:{args.port}/", Path(folder))
            text = (
                "24 MP photo, small hole: Run answered after {run_answered_s:.2f} s, raw fill "
                "shown after {raw_fill_shown_s:.1f} s, Cancel (after step 2) effective after "
                "{cancel_effective_s:.2f} s (cancelled: {cancelled:.0f})"
            )
            print(text.format(**found))
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
