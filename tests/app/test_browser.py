"""End to end in a real headless browser: Debian's Chromium driven by Playwright.

Load the page, open a photo, paint a stroke, run, see the preview and the comparison, and
download a PNG of the photo's size; nothing is fetched from outside this machine.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.app.conftest import SCREENSHOTS, Served

DEMO = Path(__file__).resolve().parents[2] / "src" / "tttkit" / "data" / "demo"


def chromium() -> str | None:
    """A Chromium (or Chrome) binary from the system: ``$TTTKIT_CHROMIUM``, else on PATH."""
    given = os.environ.get("TTTKIT_CHROMIUM")
    if given:
        return given
    names = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
    return next((path for name in names if (path := shutil.which(name))), None)


@pytest.fixture(scope="module")
def browser():  # type: ignore[no-untyped-def]
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="playwright is not installed (pip install -e '.[dev]')"
    )
    binary = chromium()
    if binary is None:
        pytest.skip("no Chromium on this machine: apt-get install chromium (Debian) or set "
                    "TTTKIT_CHROMIUM to a Chrome/Chromium binary")  # fmt: skip
    with sync_api.sync_playwright() as playwright:
        try:
            launched = playwright.chromium.launch(
                executable_path=binary, args=["--no-sandbox", "--disable-dev-shm-usage"]
            )
        except Exception as exc:  # a binary that cannot start here (missing libraries…)
            pytest.skip(f"Chromium at {binary} does not start: {str(exc).splitlines()[0]}")
        yield launched
        launched.close()


def _shoot(page, path: Path) -> None:  # type: ignore[no-untyped-def]
    page.screenshot(path=str(path), full_page=True, type="jpeg", quality=70)


def _wait(page, done, timeout: float, what: str, every: float = 0.25) -> str:  # type: ignore[no-untyped-def]
    """Poll the status text (``#status .ttt-text``) until ``done(text)``; return the text."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = page.locator("#status .ttt-text").inner_text()
        if done(text):
            return text
        time.sleep(every)
    raise AssertionError(f"{what} within {timeout} s: the status says {text!r}")


def _wait_status(page, text: str, timeout: float) -> str:  # type: ignore[no-untyped-def]
    def shown(status: str) -> bool:
        assert "rror" not in status and "Cancelled" not in status, status
        return text in status

    return _wait(page, shown, timeout, f"{text!r} not shown")


def _wait_error(page, text: str, timeout: float) -> str:  # type: ignore[no-untyped-def]
    def named(status: str) -> bool:
        return text in status and page.locator("#status .ttt-error").count() > 0

    return _wait(page, named, timeout, f"no error naming {text!r}")


def _wait_change(page, before: str, timeout: float) -> str:  # type: ignore[no-untyped-def]
    return _wait(page, lambda s: s != before, timeout, "no change", every=0.05)


def test_paint_run_compare_and_download_in_a_browser(browser, served: Served, tmp_path) -> None:  # type: ignore[no-untyped-def]
    shots = Path(os.environ.get(SCREENSHOTS) or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    page = browser.new_page(viewport={"width": 1400, "height": 1500}, accept_downloads=True)
    outside: list[str] = []
    local = ("http://127.0.0.1", "data:", "blob:")
    page.on("request", lambda r: None if r.url.startswith(local) else outside.append(r.url))
    page.goto(served.url, wait_until="load")

    photo = DEMO / "street.jpg"
    page.set_input_files("#photo-file input[type=file]", str(photo))
    _wait_status(page, "256×256", 30)
    time.sleep(1)  # the canvas draws the photo
    _shoot(page, shots / "app-photo.jpg")

    page.locator("#editor button[aria-label='Brush']").first.click()
    canvas = page.locator("#editor canvas").first.bounding_box()
    assert canvas is not None
    x, y = canvas["x"] + canvas["width"] * 0.38, canvas["y"] + canvas["height"] * 0.55
    page.mouse.move(x, y)
    page.mouse.down()
    for i in range(1, 5):  # few moves: each redraws the canvas in software WebGL (~0.5 s)
        page.mouse.move(x + 30 * i, y + 6 * i)
    page.mouse.up()
    time.sleep(0.5)
    _shoot(page, shots / "app-painted.jpg")

    steps = 2 if not os.environ.get(SCREENSHOTS) else 60
    page.locator("#steps input").fill(str(steps))
    before = page.locator("#status .ttt-text").inner_text()
    page.locator("#run").click()
    # the click is answered by the page's own status, not by Gradio's overlay alone
    answered = _wait_change(page, before, 30)
    assert answered.startswith(("Starting", "Filling", "Raw fill", "raw fill", "step", "Done")), (
        answered
    )
    _wait_status(page, f"Done: {steps} steps", 300)
    assert page.locator("#preview img").count() == 1
    assert page.locator("#compare img").count() == 2
    _shoot(page, shots / "app-compare.jpg")

    with page.expect_download() as download:
        page.locator("#download").click()
    kept = tmp_path / "kept.png"
    download.value.save_as(kept)
    original = np.asarray(Image.open(photo).convert("RGB"))
    filled = np.asarray(Image.open(kept))
    assert Image.open(kept).format == "PNG" and filled.shape == original.shape
    changed = (filled != original).any(axis=-1)
    assert 0.005 < changed.mean() < 0.25  # the stroke's hole was filled, and nothing else

    # the comparison is a close-up of the hole; the checkbox shows the whole photo
    close_up = page.locator("#compare img").first.get_attribute("src")
    page.locator("#whole input").check()
    deadline = time.monotonic() + 30
    while page.locator("#compare img").first.get_attribute("src") == close_up:
        assert time.monotonic() < deadline, "the whole photo was not shown"
        time.sleep(0.25)

    # a failed upload leaves no trace of the previous photo's run next to its error
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8 this is not a photo")
    page.set_input_files("#photo-file input[type=file]", str(broken))
    _wait_error(page, "broken.jpg", 30)
    assert page.locator("#preview img").count() == 0
    assert page.locator("#compare img").count() == 0
    assert page.locator("#download").is_disabled()
    assert outside == [], f"the page fetched from outside this machine: {outside}"
