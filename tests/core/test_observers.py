"""Run-lifecycle hooks reach every observer; the built-in progress bar is one of them."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

import tttkit
from tttkit import progress
from tttkit.events import RunInfo, StepRecord
from tttkit.plugins import PluginHost


def simulate(host: PluginHost, run: RunInfo, steps: int) -> None:
    host.hook.tttkit_run_start(run=run)
    for step in range(1, steps + 1):
        record = StepRecord(step=step, losses={"total": 1.0 / step}, lr=1e-6, seconds=0.01)
        host.hook.tttkit_step_end(run=run, record=record)
    host.hook.tttkit_run_end(run=run, result=None)


@pytest.fixture
def recorded(monkeypatch: pytest.MonkeyPatch) -> io.StringIO:
    buffer = io.StringIO()
    monkeypatch.setattr(progress, "console", Console(file=buffer, width=120, color_system=None))
    return buffer


def test_progress_bar_draws_when_asked(host: PluginHost, recorded: io.StringIO) -> None:
    simulate(
        host, RunInfo(label="photo.png", strategy="optimal", total_steps=3, show_progress=True), 3
    )
    out = recorded.getvalue()
    assert "photo.png [optimal]" in out and "3/3" in out and "loss 0.3333" in out
    assert progress._bars == {}  # closed at run end


def test_progress_bar_stays_silent_for_library_runs(
    host: PluginHost, recorded: io.StringIO
) -> None:
    simulate(host, RunInfo(label="x", strategy="s", total_steps=2), 2)
    assert recorded.getvalue() == ""


def test_third_party_observer_sees_every_event(host: PluginHost) -> None:
    events: list[tuple[str, int | None]] = []

    class Recorder:
        @tttkit.hookimpl
        def tttkit_run_start(self, run):
            events.append(("start", run.total_steps))

        @tttkit.hookimpl
        def tttkit_step_end(self, record):  # a subset of the hook's parameters is fine
            events.append(("step", record.step))

        @tttkit.hookimpl
        def tttkit_run_end(self, result):
            events.append(("end", None))

    host.register(Recorder(), "recorder")
    try:
        simulate(host, RunInfo(label="x", strategy="s", total_steps=2), 2)
    finally:
        host.unregister("recorder")
    assert events == [("start", 2), ("step", 1), ("step", 2), ("end", None)]
