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


def _cancelled_inside_step_3(where: str) -> tuple[pytest.ExceptionInfo[RunCancelled], list[str]]:
    """Run with a cancel set from inside step 3 — during the generator's forward pass
    (``where="forward"``) or its backward pass (``"backward"``) — as a Cancel click landing
    mid-step would; return the exception and what happened after the click."""
    image, mask = photo_and_mask(64)
    net = tiny_backbone()
    cancel = threading.Event()
    armed = threading.Event()  # set once step 2 is reported: the next training pass is step 3
    after: list[str] = []
    leaves = [m for m in net.generator.modules() if next(m.children(), None) is None]

    def set_cancel(*_: object) -> None:
        if armed.is_set() and not cancel.is_set():
            cancel.set()

    def on_generator(module: torch.nn.Module, _args: object, output: object) -> None:
        if where == "backward" and module.training and armed.is_set():
            first = output[0] if isinstance(output, tuple) else output
            first.register_hook(set_cancel)  # among the first gradients of the step's backward

    def on_first_leaf(module: torch.nn.Module, _args: object) -> None:
        if where == "forward" and module.training:
            set_cancel()

    net.generator.register_forward_hook(on_generator)
    leaves[0].register_forward_pre_hook(on_first_leaf)
    leaves[-1].register_forward_hook(
        lambda *_: after.append("last layer ran") if cancel.is_set() else None
    )

    def watch(progress: Progress) -> None:
        after.append(f"step {progress.step} reported") if cancel.is_set() else None
        if progress.step == 2:
            armed.set()

    with pytest.raises(RunCancelled) as raised:
        tttkit.adapt(image, mask, backbone=net, on_progress=watch, cancel=cancel,
                     sets=["eval_every=100"], **_quick(steps=20))  # fmt: skip
    return raised, after


def test_cancel_takes_effect_inside_a_steps_forward_pass() -> None:
    raised, after = _cancelled_inside_step_3("forward")
    assert raised.value.step == 2
    assert after == []  # the forward pass stopped at its next layer: step 3 never finished


def test_cancel_takes_effect_inside_a_steps_backward_pass() -> None:
    raised, after = _cancelled_inside_step_3("backward")
    assert raised.value.step == 2 and after == []
    # raised by a gradient check, inside backward(), not by the check before the next step
    assert any(entry.name == "gradient_check" for entry in raised.traceback)


def test_cancellation_checks_are_removed_after_the_run() -> None:
    image, mask = photo_and_mask(64)
    net = tiny_backbone()
    tttkit.adapt(image, mask, backbone=net, cancel=threading.Event(), **_quick(steps=2))
    hooked = [m for m in net.modules() if m._forward_pre_hooks or m._forward_hooks]
    assert hooked == []  # the user's network never carried them (the run trains a copy)


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


def test_the_raw_fill_is_handed_over_before_any_finetuning_step() -> None:
    image, mask = photo_and_mask(64)
    photo = (image * 255).round().to(torch.uint8)  # a photo as the CLI and app hold it
    events: list[object] = []
    result = tttkit.adapt(
        photo, mask, backbone=tiny_backbone(), on_progress=lambda p: events.append(p.step),
        on_raw=events.append, **_quick(steps=3),
    )  # fmt: skip
    raws = [e for e in events if isinstance(e, torch.Tensor)]
    assert len(raws) == 1 and events.index(raws[0]) == 0  # before even the step-0 report
    assert raws[0].dtype == torch.uint8 and torch.equal(raws[0], result.raw)


def test_a_photo_in_windows_hands_over_its_whole_raw_fill_first() -> None:
    from tests.core.test_windows import holes, small_net

    image, _ = photo_and_mask(size=160)
    scratch = holes((160, 160), (0, 0, 12, 12), (80, 20, 1, 100), (140, 150, 20, 10))
    events: list[object] = []
    result = tttkit.adapt(
        image, scratch, backbone=small_net(), on_progress=lambda p: events.append(p.step),
        on_raw=events.append, **_quick(steps=2),
    )  # fmt: skip
    assert result.windows is not None and len(result.windows) == 3
    assert isinstance(events[0], torch.Tensor) and events[1:] == [0, 1, 2] * 3
    assert torch.equal(events[0], result.raw)  # every window's raw fill, pasted
