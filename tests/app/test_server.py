"""The app over HTTP, through Gradio's own client: run, cancel, queue, and bad input."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from tests.app.conftest import Served, write_photo

gradio_client = pytest.importorskip("gradio_client", reason="the app extra is not installed")
from gradio_client import Client, handle_file  # noqa: E402

from tttkit.app.page import ADVANCED  # noqa: E402  (the page's "Advanced" fields, in order)


def _strokes(path: Path, width: int, height: int, box: tuple[int, int, int, int]) -> Path:
    """An RGBA stroke layer with paint (alpha > 0) in ``box`` = (top, left, bottom, right)."""
    layer = np.zeros((height, width, 4), dtype=np.uint8)
    top, left, bottom, right = box
    layer[top:bottom, left:right] = (255, 255, 255, 217)
    Image.fromarray(layer, "RGBA").save(path)
    return path


def _run_args(photo: Path, strokes: Path | None, *, steps: int = 1, weights: Path | None = None,
              **advanced: Any) -> list[Any]:  # fmt: skip
    editor = {
        "background": handle_file(str(photo)),
        "layers": [handle_file(str(strokes))] if strokes else [],
        "composite": None,
    }
    rest = [str(advanced.get(name, "")) for name in ADVANCED]
    rest[ADVANCED.index("batch_size")] = str(advanced.get("batch_size", 1))
    # the page's fields in the order they are made: editor, mask, other shots, backbone, …
    return [editor, None, None, "attention-net-compact",
            handle_file(str(weights)) if weights else None, "default", steps, 0, *rest,
            False]  # fmt: skip  # the last: "show the whole photo"


def _value(output: Any) -> Any:
    """An output's value (a handler that also changes a property returns an update)."""
    return output["value"] if isinstance(output, dict) and "__type__" in output else output


def _open(client: Client, photo: Path) -> str:
    outputs = client.predict(handle_file(str(photo)), api_name="/load_photo")
    return next(o for o in outputs if isinstance(o, str) and "ttt-status" in o)  # the status


def _files(served: Served, name: str, size: tuple[int, int] = (160, 120)) -> tuple[Path, Path]:
    photo = served.data / f"{name}.png"
    write_photo(photo, *size)
    strokes = _strokes(served.data / f"{name}_strokes.png", *size, (40, 50, 70, 110))
    return photo, strokes


def _wait_for_step(job: Any, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any("step " in str(output[0]) for output in job.outputs()):
            return
        time.sleep(0.2)
    raise AssertionError(f"no step reported in {timeout} s: {job.outputs()[-1:]}")


def _wait_idle(timeout: float = 30) -> None:
    from tttkit.app.session import RUN_LOCK

    deadline = time.monotonic() + timeout
    while RUN_LOCK.locked():
        assert time.monotonic() < deadline, "the cancelled run's thread is still training"
        time.sleep(0.1)


def test_a_run_fills_the_painted_hole_and_downloads_at_full_resolution(served: Served) -> None:
    client = Client(served.url, verbose=False)
    photo, strokes = _files(served, "run")
    assert "160×120" in _open(client, photo)
    status, preview, compare, scores, download = client.predict(
        *_run_args(photo, strokes, steps=2), api_name="/run"
    )
    assert "Done: 2 steps" in status
    assert preview and len(compare) == 2 and "judge by eye" in scores
    original = np.asarray(Image.open(photo).convert("RGB"))
    kept = np.asarray(Image.open(_value(download)).convert("RGB"))
    assert kept.shape == original.shape  # the photo's full resolution, as PNG
    hole = np.zeros(original.shape[:2], dtype=bool)
    hole[40:70, 50:110] = True
    assert np.array_equal(kept[~hole], original[~hole])  # outside the hole: the input's pixels
    assert not np.array_equal(kept[hole], original[hole])
    raw = _value(client.predict("raw", api_name="/choose"))
    assert Path(raw).name.endswith("_raw.png") and Image.open(raw).size == (160, 120)


def test_validation_scores_are_shown_when_the_strategy_computes_them(served: Served) -> None:
    client = Client(served.url, verbose=False)
    photo, strokes = _files(served, "scored")
    _open(client, photo)
    status, *_, scores, _download = client.predict(
        *_run_args(photo, strokes, steps=2, select="best", refit="no", sets="eval_every=1"),
        api_name="/run",
    )
    assert "Done" in status and "Self-validation error" in scores, scores


def test_cancel_stops_the_run_within_a_step_and_the_next_run_works(served: Served) -> None:
    client = Client(served.url, verbose=False)
    photo, strokes = _files(served, "cancel")
    _open(client, photo)
    job = client.submit(*_run_args(photo, strokes, steps=5000), api_name="/run")
    _wait_for_step(job)
    assert "Cancelling" in client.predict(api_name="/cancel")
    assert "Cancelled after step" in job.result(timeout=60)[0]  # the page says where it stopped
    _wait_idle()  # the worker thread stopped: the CPU is free again
    status = client.predict(*_run_args(photo, strokes, steps=1), api_name="/run")[0]
    assert "Done: 1 steps" in status


def _queued_behind_a_long_run(served: Served, name: str, *, arm: bool = False) -> tuple[Any, ...]:
    """A first client running a long run and a second one's 1-step run waiting in the queue:
    ``(first, second, waiting job, its queue status)``."""
    first, second = Client(served.url, verbose=False), Client(served.url, verbose=False)
    photo, strokes = _files(served, name)
    _open(first, photo)
    _open(second, photo)
    running = first.submit(*_run_args(photo, strokes, steps=5000), api_name="/run")
    _wait_for_step(running)
    if arm:  # as the Run button does before the run is queued: the page's own status says
        assert "1 run is ahead of yours" in second.predict(api_name="/arm")
    waiting = second.submit(*_run_args(photo, strokes, steps=1), api_name="/run")
    deadline = time.monotonic() + 30
    while (state := waiting.status()).code.name != "IN_QUEUE":
        assert time.monotonic() < deadline, f"never queued: {state}"
        time.sleep(0.1)
    return first, second, waiting, state


def test_a_second_request_waits_in_the_queue_with_its_place_shown(served: Served) -> None:
    first, _, waiting, state = _queued_behind_a_long_run(served, "queue")
    assert state.rank is not None and state.queue_size is not None
    first.predict(api_name="/cancel")
    assert "Done: 1 steps" in waiting.result(timeout=120)[0]


def test_cancel_also_stops_a_run_still_waiting_in_the_queue(served: Served) -> None:
    first, second, waiting, _ = _queued_behind_a_long_run(served, "queued-cancel", arm=True)
    second.predict(api_name="/cancel")
    first.predict(api_name="/cancel")
    assert "Cancelled after step 0" in waiting.result(timeout=120)[0]
    _wait_idle()


def _check_next_run_works(served: Served) -> None:
    client = Client(served.url, verbose=False)
    photo, strokes = _files(served, "after", (64, 64))
    strokes = _strokes(served.data / "after_strokes.png", 64, 64, (20, 20, 30, 40))
    _open(client, photo)
    assert "Done" in client.predict(*_run_args(photo, strokes), api_name="/run")[0]


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("notes.png", b"these are words, not pixels", "notes.png"),
        ("cut.jpg", "truncated", "cut.jpg"),
        ("huge.png", "huge", "pixel"),
    ],
)
def test_a_bad_photo_is_a_message_and_the_server_goes_on(
    served: Served, name: str, content: Any, expected: str
) -> None:
    path = served.data / name
    if content == "truncated":
        write_photo(served.data / "whole.jpg", 200, 200)
        path.write_bytes((served.data / "whole.jpg").read_bytes()[:600])
    elif content == "huge":  # 2.4 MP over the fixture's 2 MP limit, small as a file
        if not served.limited:
            pytest.skip("the app serves the shipped default without limits while taking pictures")
        Image.new("RGB", (2000, 1200), (30, 90, 160)).save(path)
    else:
        path.write_bytes(content)
    status = _open(Client(served.url, verbose=False), path)
    assert 'data-kind="error"' in status and expected in status, status
    _check_next_run_works(served)


@pytest.mark.parametrize("case", ["empty", "nearly-all", "other-weights", "bad-option"])
def test_a_bad_run_request_is_a_message_and_the_server_goes_on(served: Served, case: str) -> None:
    client = Client(served.url, verbose=False)
    photo, strokes = _files(served, case)
    _open(client, photo)
    expected = {"empty": "no hole", "nearly-all": "at most 90%",
                "other-weights": "other.safetensors", "bad-option": "batch size"}[case]  # fmt: skip
    args: dict[str, Any] = {}
    if case == "empty":
        strokes = None
    elif case == "nearly-all":
        strokes = _strokes(served.data / "all.png", 160, 120, (0, 0, 120, 158))
    elif case == "other-weights":
        import torch
        from safetensors.torch import save_file

        other = served.data / "other.safetensors"
        save_file({"encoder.0.weight": torch.zeros(4, 3, 3, 3)}, str(other))
        args["weights"] = other
    else:
        args["batch_size"] = "four"
    status = client.predict(*_run_args(photo, strokes, **args), api_name="/run")[0]
    assert 'data-kind="error"' in status and expected in status, status
    _check_next_run_works(served)


def test_an_upload_over_the_size_limit_is_refused_and_the_server_goes_on(served: Served) -> None:
    import httpx

    if not served.limited:
        pytest.skip("the app serves the shipped default without limits while taking pictures")

    big = served.data / "big.png"
    noise = np.random.default_rng(0).integers(0, 255, (700, 700, 3), dtype=np.uint8)
    Image.fromarray(noise).save(big)  # about 1.5 MB of incompressible pixels, limit 1 MB
    assert big.stat().st_size > 1_000_000
    # The client refuses it already (it reads the limit from the page's config) …
    with pytest.raises(ValueError, match="exceeds the maximum file size"):
        _open(Client(served.url, verbose=False), big)
    # … and the server refuses a raw upload that ignores it.
    with big.open("rb") as file:
        answer = httpx.post(f"{served.url}gradio_api/upload", files={"files": file}, timeout=30)
    assert answer.status_code == 413, answer.text
    _check_next_run_works(served)
