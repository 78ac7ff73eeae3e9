"""The app's framework-free logic: photos, hole masks from strokes, checks, runs in a thread."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch
from PIL import Image

from tests.helpers import tiny_backbone
from tttkit.app.session import (
    DISPLAY_SIDE,
    Pace,
    RunRequest,
    Workspace,
    check_holes,
    hole_mask,
    open_photo,
    run_in_thread,
)
from tttkit.errors import InputError
from tttkit.events import Progress


def _photo_file(tmp_path, size=(300, 200), name="photo.png"):  # (width, height)
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
    path = tmp_path / name
    Image.fromarray(pixels).save(path)
    return path, pixels


def test_a_photo_keeps_full_resolution_and_gets_a_small_canvas_copy(tmp_path) -> None:
    path, pixels = _photo_file(tmp_path, size=(3200, 1000))
    photo = open_photo(path, "holiday.png")
    assert photo.size == (1000, 3200)
    assert torch.equal(photo.pixels.permute(1, 2, 0), torch.from_numpy(pixels))
    assert photo.display.shape == (500, DISPLAY_SIDE, 3) and photo.display.dtype == np.uint8


@pytest.mark.parametrize(
    ("content", "expected"),
    [(b"not an image at all", "holiday.png"), (b"\x89PNG\r\n\x1a\n" + b"\0" * 40, "holiday.png")],
)
def test_an_unreadable_upload_is_named_by_its_browser_name(tmp_path, content, expected) -> None:
    path = tmp_path / "upload_9f3a.png"
    path.write_bytes(content)
    with pytest.raises(InputError) as raised:
        open_photo(path, "holiday.png")
    assert expected in str(raised.value) and str(tmp_path) not in str(raised.value)


def test_a_photo_over_the_pixel_limit_is_refused_before_decoding(tmp_path) -> None:
    path, _ = _photo_file(tmp_path, size=(400, 300))
    with pytest.raises(InputError, match="pixel"):
        open_photo(path, "big.png", max_pixels=100_000)


def test_strokes_on_the_canvas_copy_become_holes_at_full_resolution(tmp_path) -> None:
    path, _ = _photo_file(tmp_path, size=(3200, 1600))
    photo = open_photo(path, "p.png")
    strokes = np.zeros((*photo.display.shape[:2], 4), dtype=np.uint8)  # RGBA layer
    strokes[100:200, 400:600, 3] = 200  # painted: alpha > 0, whatever the colour
    holes = hole_mask(photo, strokes)
    assert holes.shape == (1, 1600, 3200) and holes.dtype == torch.uint8
    assert holes[0, 200:400, 800:1200].all() and holes.sum() == 200 * 400  # scale 2


def test_an_uploaded_mask_of_another_size_is_resized_and_added(tmp_path) -> None:
    path, _ = _photo_file(tmp_path, size=(200, 100))
    photo = open_photo(path, "p.png")
    mask = np.zeros((50, 100), dtype=np.uint8)
    mask[10:20, 10:20] = 255
    Image.fromarray(mask).save(tmp_path / "m.png")
    strokes = np.zeros((100, 200, 4), dtype=np.uint8)
    strokes[80:90, 150:160, 3] = 255
    holes = hole_mask(photo, strokes, tmp_path / "m.png")
    assert holes[0, 20:40, 20:40].all() and holes[0, 80:90, 150:160].all()
    assert holes.sum() == 400 + 100


def test_no_hole_and_a_hole_over_ninety_percent_are_refused() -> None:
    with pytest.raises(InputError, match="no hole"):
        check_holes(torch.zeros(1, 10, 10, dtype=torch.uint8))
    nearly_all = torch.ones(1, 10, 10, dtype=torch.uint8)
    nearly_all[0, 0, :5] = 0
    with pytest.raises(InputError, match="95%"):
        check_holes(nearly_all)
    check_holes(torch.eye(10, dtype=torch.uint8)[None])


def test_the_eta_comes_from_measured_steps_without_each_windows_first() -> None:
    pace = Pace()

    def at(window: int, step: int, now: float) -> Progress:
        progress = Progress("p", step, 10, None, now, window=window, windows=2)
        pace.observe(progress, now)
        return progress

    at(1, 0, 0.0)  # the raw fill
    first = at(1, 1, 30.0)  # the first step also pays for the set-up
    assert pace.seconds_left(first) is None  # nothing measured yet: no guess
    assert pace.seconds_left(at(1, 2, 32.0)) == pytest.approx(2.0 * 18)
    at(1, 3, 36.0)  # steps of 2 s and 4 s: 3 s a step
    at(2, 0, 50.0)
    at(2, 1, 70.0)  # window 2's first step, set-up included: left out again
    assert pace.seconds_left(at(2, 2, 73.0)) == pytest.approx(3.0 * 8)


def _request(tmp_path, steps: int) -> RunRequest:
    from tttkit.checkpoint import save_backbone

    weights = tmp_path / "tiny.safetensors"
    save_backbone(tiny_backbone(), "attention-net-compact", weights)
    path, _ = _photo_file(tmp_path, size=(64, 64))
    photo = open_photo(path, "p.png")
    holes = torch.zeros(1, 64, 64, dtype=torch.uint8)
    holes[0, 20:30, 20:40] = 1
    return RunRequest(photo=photo, holes=holes, weights=weights,
                      overrides={"steps": steps, "batch_size": 1})  # fmt: skip


def test_a_run_in_a_thread_reports_progress_then_its_outcome(tmp_path) -> None:
    updates = list(run_in_thread(_request(tmp_path, 2), threading.Event()))
    raw = updates[0].raw  # the raw fill comes first, before any progress
    assert [u.progress.step for u in updates[1:-1]] == [0, 1, 2]
    outcome = updates[-1].outcome
    assert outcome is not None and outcome.finetuned.shape == (3, 64, 64)
    assert outcome.finetuned.dtype == torch.uint8  # the photo's own type, full resolution
    assert raw is not None and torch.equal(raw, outcome.raw)


def test_a_cancelled_run_reports_where_it_stopped(tmp_path) -> None:
    cancel = threading.Event()
    updates = []
    for update in run_in_thread(_request(tmp_path, 200), cancel):
        updates.append(update)
        if update.progress is not None and update.progress.step == 1:
            cancel.set()
    # the worker may have begun step 2 when the flag was set: it stops within one step
    assert updates[-1].cancelled_at in (1, 2)


def test_a_failing_run_reports_a_message_not_an_exception(tmp_path) -> None:
    request = _request(tmp_path, 2)
    bad = RunRequest(photo=request.photo, holes=request.holes, weights=request.weights,
                     overrides={"lr": -1.0})  # fmt: skip
    updates = list(run_in_thread(bad, threading.Event()))
    assert len(updates) == 1 and updates[0].error and "lr" in updates[0].error


def test_the_workspace_empties_a_session_folder_and_removes_everything_at_close() -> None:
    workspace = Workspace()
    folder = workspace.folder("abc/../x")
    assert folder.parent.parent == workspace.root and folder.name == "abcx"
    (folder / "old.png").write_bytes(b"x")
    assert not any(workspace.folder("abc/../x").iterdir())
    workspace.close()
    assert not workspace.root.exists()


def test_a_run_takes_other_shots_of_the_scene_and_names_a_broken_one_by_file(tmp_path) -> None:
    request = _request(tmp_path, 1)
    shot = tmp_path / "uploads" / "shot.png"
    shot.parent.mkdir()
    flipped = request.photo.pixels.flip(-1)  # another picture: the aligner will not match it
    Image.fromarray(flipped.permute(1, 2, 0).numpy()).save(shot)
    with_shot = RunRequest(photo=request.photo, holes=request.holes, weights=request.weights,
                           overrides=request.overrides, references=(str(shot),))  # fmt: skip
    outcome = list(run_in_thread(with_shot, threading.Event()))[-1].outcome
    assert outcome is not None
    assert any(n.startswith("reference shot.png:") for n in outcome.notices), outcome.notices
    broken = tmp_path / "uploads" / "broken.jpg"
    broken.write_bytes(b"not a photo")
    bad = RunRequest(photo=request.photo, holes=request.holes, weights=request.weights,
                     overrides=request.overrides, references=(str(broken),))  # fmt: skip
    error = list(run_in_thread(bad, threading.Event()))[-1].error
    assert error is not None and "broken.jpg" in error and str(tmp_path) not in error


def test_the_page_lists_a_downloaded_checkpoint_with_its_backbone(tmp_path, monkeypatch) -> None:
    from tttkit.app.session import backbone_choices, downloaded_weights

    monkeypatch.setenv("TTTKIT_HOME", str(tmp_path))
    assert ("lama (needs a weights file)", "lama") in backbone_choices()
    (tmp_path / "weights").mkdir()
    (tmp_path / "weights" / "big-lama.ckpt").write_bytes(b"as `tttkit weights pull` keeps it")
    assert ("lama (weights: lama:big-lama, downloaded)", "lama") in backbone_choices()
    assert downloaded_weights("lama") == tmp_path / "weights" / "big-lama.ckpt"
