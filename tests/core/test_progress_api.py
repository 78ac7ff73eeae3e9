"""The run-watching API a program builds on (the app): progress callbacks, previews, cancel."""

from __future__ import annotations

import threading

import pytest
import torch

import tttkit
from tests.helpers import photo_and_mask, tiny_backbone
from tttkit.errors import RunCancelled
from tttkit.events import Progress


def _quick(**overrides: object) -> dict[str, object]:
    return {"steps": 4, "batch_size": 1, **overrides}


def test_progress_reports_every_step_with_previews_at_evaluations() -> None:
    image, mask = photo_and_mask(64)
    seen: list[Progress] = []
    result = tttkit.adapt(
        image, mask, backbone=tiny_backbone(), strategy="default", on_progress=seen.append,
        sets=["eval_every=2"], **_quick(),
    )  # fmt: skip
    assert [p.step for p in seen] == [0, 1, 2, 3, 4]
    assert seen[0].loss is None and all(p.loss is not None for p in seen[1:])
    assert all(p.total_steps == 4 and (p.window, p.windows) == (1, 1) for p in seen)
    assert [p.preview is not None for p in seen] == [True, False, True, False, True]
    assert seen[0].preview.shape == image.shape and seen[0].preview.device.type == "cpu"
    # the step-0 preview is the raw fill, the last one the output (select="last")
    torch.testing.assert_close(seen[0].preview, result.raw)
    torch.testing.assert_close(seen[-1].preview, result.finetuned)
    assert [p.seconds for p in seen] == sorted(p.seconds for p in seen)


def test_a_run_without_a_callback_gives_the_same_result() -> None:
    image, mask = photo_and_mask(64)
    watched = tttkit.adapt(image, mask, backbone=tiny_backbone(), on_progress=lambda p: None,
                           **_quick())  # fmt: skip
    plain = tttkit.adapt(image, mask, backbone=tiny_backbone(), **_quick())
    assert torch.equal(watched.finetuned, plain.finetuned)


def test_cancel_stops_before_the_next_step() -> None:
    image, mask = photo_and_mask(64)
    cancel = threading.Event()
    steps: list[int] = []

    def watch(progress: Progress) -> None:
        steps.append(progress.step)
        if progress.step == 2:
            cancel.set()  # as a button press in another thread would, mid-run

    with pytest.raises(RunCancelled) as raised:
        tttkit.adapt(image, mask, backbone=tiny_backbone(), on_progress=watch, cancel=cancel,
                     **_quick(steps=20))  # fmt: skip
    assert raised.value.step == 2 and steps == [0, 1, 2]


def test_a_cancel_set_before_the_run_stops_it_before_any_training() -> None:
    image, mask = photo_and_mask(64)
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(RunCancelled) as raised:
        tttkit.adapt(image, mask, backbone=tiny_backbone(), cancel=cancel, **_quick())
    assert raised.value.step == 0


def test_progress_of_a_photo_done_in_windows_names_the_window() -> None:
    from tests.core.test_windows import holes, small_net

    image, _ = photo_and_mask(size=160)
    scratch = holes((160, 160), (0, 0, 12, 12), (80, 20, 1, 100), (140, 150, 20, 10))
    seen: list[Progress] = []
    result = tttkit.adapt(image, scratch, backbone=small_net(), on_progress=seen.append,
                          **_quick(steps=2))  # fmt: skip
    assert result.windows is not None and len(result.windows) == 3
    assert [(p.window, p.step) for p in seen] == [(w, s) for w in (1, 2, 3) for s in (0, 1, 2)]
    assert all(p.windows == 3 and f"window {p.window}/3" in p.label for p in seen)
