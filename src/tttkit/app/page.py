"""The app's page (Gradio): open a photo, paint the hole, run and watch, compare, keep.

Gradio because it is how inpainting models are demonstrated (LaMa's, MAT's and most papers'
demos): its image editor has the brush, eraser and size control a user expects, its queue
shows a waiting user their place, and its test client and plain HTTP serve the tests. The
page itself holds no logic: ``session.py`` does the work through the library's public API.
"""

from __future__ import annotations

import html
import threading
import time
import typing
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import gradio as gr

import tttkit
from tttkit.app.session import (
    DEFAULT_MAX_PIXELS,
    USER_ERRORS,
    Outcome,
    Pace,
    Photo,
    RunRequest,
    Workspace,
    backbone_choices,
    check_holes,
    downloaded_weights,
    format_seconds,
    hole_mask,
    open_photo,
    overall_steps,
    run_in_thread,
    to_display,
)
from tttkit.errors import InputError
from tttkit.options import DEFAULT_STRATEGY, Overrides

#: Fonts the browser already has: the default theme would fetch web fonts from the internet.
SYSTEM_FONTS = ["ui-sans-serif", "system-ui", "Segoe UI", "Roboto", "sans-serif"]
SYSTEM_MONO = ["ui-monospace", "SFMono-Regular", "Menlo", "monospace"]

#: Previews at the network's working size (often 128²) are shown at least this large.
PREVIEW_SIDE = 384

#: The overrides under "Advanced" (steps has its own field).
ADVANCED = tuple(name for name in Overrides.names() if name != "steps")


@dataclass
class AppConfig:
    """What ``tttkit app`` was started with."""

    backbone: str | None = None
    weights: Path | None = None
    device: str = "cpu"
    max_pixels: int = DEFAULT_MAX_PIXELS
    workspace: Workspace = field(default_factory=Workspace)


@dataclass
class _Sessions:
    """Per-browser-session cancel switches and click times, keyed by the framework's session
    id, and which sessions have a run clicked and not yet over (the app's own queue view)."""

    running: dict[str, threading.Event] = field(default_factory=dict)
    armed: dict[str, threading.Event] = field(default_factory=dict)
    clicked: dict[str, float] = field(default_factory=dict)
    active: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def arm(self, session: str) -> int:
        """Run was clicked: a switch for the coming run, before it waits in the queue, so
        that Cancel also stops a run that has not started. Returns how many other sessions'
        runs are ahead of it."""
        event = threading.Event()
        with self.lock:
            ahead = len(self.active - {session})
            self.armed[session] = event
            self.running[session] = event
            self.clicked[session] = time.perf_counter()
            self.active.add(session)
        return ahead

    def take(self, session: str) -> tuple[threading.Event, float]:
        """The switch of the run starting now and when it was clicked: the armed one, or a
        new one for a run started without the button (an API call)."""
        with self.lock:
            event = self.armed.pop(session, None) or threading.Event()
            self.running[session] = event
            self.active.add(session)
            return event, self.clicked.pop(session, time.perf_counter())

    def finish(self, session: str) -> None:
        """The session's run is over (done, failed, cancelled or abandoned)."""
        with self.lock:
            self.active.discard(session)

    def cancel(self, session: str) -> bool:
        """Set the switch of the session's latest run; whether there was one."""
        event = self.running.get(session)
        if event is None:
            return False
        event.set()
        return True


def strategy_description(name: str) -> str:
    """One line about a registered strategy."""
    try:
        spec = tttkit.get_strategy(name)
    except USER_ERRORS as exc:
        return f"⚠ {exc}"
    return f"**{spec.name}** — {spec.description} ({spec.steps} steps)"


def parse_overrides(values: dict[str, Any]) -> dict[str, Any]:
    """The "Advanced" fields as :func:`tttkit.adapt` overrides; empty fields keep the
    strategy's values. A value of the wrong type names its field."""
    hints = typing.get_type_hints(Overrides)
    out: dict[str, Any] = {}
    for name, raw in values.items():
        text = "" if raw is None else str(raw).strip()
        if not text:
            continue
        if name == "sets":
            out[name] = [line.strip() for line in text.splitlines() if line.strip()]
            continue
        kind = next(t for t in typing.get_args(hints[name]) if t is not type(None))
        out[name] = _convert(name, text, kind)
    return out


def _convert(name: str, text: str, kind: type) -> Any:
    label = name.replace("_", " ")
    if kind is bool:
        if text.lower() not in ("yes", "no", "true", "false"):
            raise InputError(f"{label}: expected yes or no, got {text!r}")
        return text.lower() in ("yes", "true")
    try:
        return kind(text)
    except ValueError:
        raise InputError(f"{label}: expected {kind.__name__}, got {text!r}") from None


def status_html(text: str, *, step: int = 0, total: int = 0, kind: str = "info") -> str:
    """The run's status line: a progress bar while it runs, a message otherwise."""
    bar = f'<progress id="ttt-progress" value="{step}" max="{total}"></progress>' if total else ""
    return (
        f'<div class="ttt-status ttt-{kind}" data-kind="{kind}">{bar}'
        f'<div class="ttt-text">{html.escape(text)}</div></div>'
    )


def _editor_value(photo: Photo) -> dict[str, Any]:
    return {"background": photo.display, "layers": [], "composite": photo.display}


def _strokes(editor: dict[str, Any] | None) -> Any:
    if not editor:
        return None
    layers = [layer for layer in (editor.get("layers") or []) if layer is not None]
    if not layers:
        return None
    painted = layers[0]
    for layer in layers[1:]:
        painted = painted | layer if painted.shape == layer.shape else painted
    return painted


CSS = """
.ttt-status progress { width: 100%; height: 1.2em; }
.ttt-error .ttt-text { color: #b00020; font-weight: 600; }
.ttt-done .ttt-text { color: #0a7a32; font-weight: 600; }
"""


def build_app(config: AppConfig | None = None) -> gr.Blocks:
    """The page, ready for ``launch()`` (:func:`tttkit.app.serve` starts it)."""
    config = config or AppConfig()
    sessions = _Sessions()
    default_spec = tttkit.get_strategy(DEFAULT_STRATEGY)
    default_backbone = config.backbone or default_spec.backbone or backbone_choices()[0][1]
    if config.weights is not None and config.backbone is None:
        # Weights without a backbone are the default backbone's, as for `tttkit inpaint`
        # (`tttkit app` reads a tttkit checkpoint's own backbone before this).
        config = replace(config, backbone=default_backbone)
    choices = backbone_choices(config.backbone, config.weights)
    strategies = sorted(tttkit.registry("strategies").names())

    with gr.Blocks(
        title="tttkit — test-time training inpainting",
        analytics_enabled=False,
        delete_cache=(600, 3600),  # previews older than an hour go, every 10 minutes
    ) as app:
        photo_state = gr.State(None)
        outcome_state = gr.State(None)
        gr.Markdown(
            "# tttkit: fill holes with test-time training\n\n"
            "1. Open a photo (drop another one on it to replace it).\n"
            "2. Paint over what should go (white strokes; the eraser takes strokes back).\n"
            "3. **Run**: the network first fills the hole as it is (*raw*), then finetunes "
            "itself on your photo and fills it again (*finetuned*).\n"
            "4. Compare both and download the one you prefer, at the photo's full resolution."
        )
        with gr.Row():
            with gr.Column(scale=3):
                photo_file = gr.File(
                    label="Photo (any size; drop it here)", file_types=["image"],
                    type="filepath", elem_id="photo-file",
                )  # fmt: skip
                editor = gr.ImageEditor(
                    label="Paint the hole", type="numpy", image_mode="RGBA", sources=(),
                    transforms=(), layers=False, elem_id="editor", height=560, visible=False,
                    brush=gr.Brush(colors=[("#ffffff", 0.85), ("#ff00aa", 0.7)],
                                   default_size=24, color_mode="defaults"),
                    eraser=gr.Eraser(default_size=24),
                )  # fmt: skip
                mask_file = gr.File(
                    label="…or upload a mask (white = hole; added to the strokes)",
                    file_types=["image"], type="filepath", elem_id="mask-file",
                )  # fmt: skip
                companions = gr.File(
                    label="Other shots of the same scene (optional): where the hidden part "
                    "shows, the network learns it from them",
                    file_types=["image"], type="filepath", file_count="multiple",
                    elem_id="companions",
                )  # fmt: skip
            with gr.Column(scale=2):
                backbone = gr.Dropdown(
                    choices=choices, value=default_backbone, label="Backbone", elem_id="backbone"
                )
                weights = gr.File(
                    label="Weights file (for a backbone that ships none)",
                    file_types=[".safetensors", ".pt", ".pth"], type="filepath",
                    elem_id="weights-file",
                )  # fmt: skip
                strategy = gr.Dropdown(
                    choices=strategies, value=DEFAULT_STRATEGY, label="Strategy",
                    elem_id="strategy",
                )  # fmt: skip
                strategy_info = gr.Markdown(strategy_description(DEFAULT_STRATEGY))
                with gr.Row():
                    steps = gr.Number(
                        label="Steps", precision=0, minimum=1, maximum=5000,
                        value=default_spec.steps, elem_id="steps",
                    )  # fmt: skip
                    seed = gr.Number(label="Seed", precision=0, value=0, elem_id="seed")
                with gr.Accordion("Advanced (the command line's strategy flags)", open=False):
                    advanced = [
                        gr.Textbox(
                            label=f"--{name.replace('_', '-')}",
                            placeholder="the strategy's value"
                            if name != "sets"
                            else "field=value, one per line",
                            lines=2 if name == "sets" else 1,
                            elem_id=f"opt-{name}",
                        )
                        for name in ADVANCED
                    ]
                with gr.Row():
                    run_button = gr.Button("Run", variant="primary", elem_id="run")
                    cancel_button = gr.Button("Cancel", variant="stop", elem_id="cancel")
                status = gr.HTML(status_html("Open a photo to begin."), elem_id="status")
                preview = gr.Image(
                    label="Current fill", interactive=False, elem_id="preview", height=260
                )
        with gr.Row():
            compare = gr.ImageSlider(
                label="Raw (left) · finetuned (right)", interactive=False, elem_id="compare"
            )
            with gr.Column():
                whole = gr.Checkbox(
                    label="Show the whole photo (else a close-up of the holes)", value=False,
                    elem_id="whole",
                )  # fmt: skip
                scores = gr.Markdown(elem_id="scores")
                keep = gr.Radio(
                    choices=["finetuned", "raw"], value="finetuned", label="Keep",
                    elem_id="keep",
                )  # fmt: skip
                download = gr.DownloadButton(
                    "Download PNG", value=None, interactive=False, elem_id="download"
                )

        inputs = _Inputs(photo_state, editor, mask_file, backbone, weights, strategy, steps,
                         seed, dict(zip(ADVANCED, advanced, strict=True)), companions,
                         whole)  # fmt: skip
        handlers = _Handlers(config, sessions, inputs)
        photo_file.upload(
            handlers.load_photo,
            [photo_file],
            [editor, photo_state, status, preview, compare, scores, download, outcome_state,
             photo_file],
            queue=False,
        )  # fmt: skip
        whole.change(handlers.compare_view, [whole, outcome_state], [compare], queue=False)
        strategy.change(handlers.strategy_changed, [strategy], [strategy_info, steps], queue=False)
        run_button.click(handlers.arm, None, [status], queue=False, api_name="arm").then(
            handlers.run,
            inputs.components(),
            [status, preview, compare, scores, download, outcome_state],
            concurrency_limit=1,
            concurrency_id="ttt",
            show_progress="minimal",
        )
        cancel_button.click(handlers.cancel, None, [status], queue=False)
        keep.change(handlers.choose, [keep, outcome_state, photo_state], [download], queue=False)

    app.queue(default_concurrency_limit=1)
    return app


@dataclass(frozen=True)
class _Inputs:
    """The page's fields a run reads."""

    photo: Any
    editor: Any
    mask_file: Any
    backbone: Any
    weights: Any
    strategy: Any
    steps: Any
    seed: Any
    advanced: dict[str, Any]
    companions: Any
    whole: Any  # the comparison shows the whole photo, not a close-up

    def components(self) -> set[Any]:
        """All of them, as a set: the handler receives one ``{component: value}`` dict."""
        fixed = (self.photo, self.editor, self.mask_file, self.backbone, self.weights,
                 self.strategy, self.steps, self.seed, self.companions,
                 self.whole)  # fmt: skip
        return {*fixed, *self.advanced.values()}


#: What a run yields to the page: status, preview, comparison, scores, download, outcome.
_Yield = tuple[Any, Any, Any, Any, Any, Any]


@dataclass
class _Handlers:
    """The page's event handlers (one object per page, shared by its sessions)."""

    config: AppConfig
    sessions: _Sessions
    inputs: _Inputs

    def load_photo(self, path: str | None) -> tuple[Any, ...]:
        """A photo was dropped: read it at full resolution and show its canvas copy; whatever
        the previous photo's run left (fill, comparison, download) goes, on success or error.
        The drop zone is emptied, so that another drop replaces the photo."""
        cleared = (None, None, "", gr.update(value=None, interactive=False), None, None)
        hidden = gr.update(value=None, visible=False)
        if path is None:
            return hidden, None, status_html("Open a photo to begin."), *cleared
        name = Path(path).name
        try:
            photo = open_photo(path, name, self.config.max_pixels)
        except USER_ERRORS as exc:
            return hidden, None, status_html(str(exc), kind="error"), *cleared
        height, width = photo.size
        message = f"{name}: {width}×{height}. Paint the hole, then Run."
        shown = gr.update(value=_editor_value(photo), visible=True)
        return shown, photo, status_html(message), *cleared

    def compare_view(self, whole: bool, outcome: Outcome | None) -> Any:
        """The before/after view: a close-up of the holes, or the whole photo."""
        return None if outcome is None else outcome.compared(whole)

    def strategy_changed(self, name: str) -> tuple[str, Any]:
        """Show the strategy's description and preset its step count."""
        try:
            steps = tttkit.get_strategy(name).steps
        except USER_ERRORS:
            return strategy_description(name), gr.update()
        return strategy_description(name), gr.update(value=steps)

    def arm(self, request: gr.Request) -> str:
        """Run was clicked: a new cancel switch, before the run waits in the queue; the
        status says at once what happens next."""
        ahead = self.sessions.arm(request.session_hash or "anonymous")
        if ahead:
            runs = "1 run is" if ahead == 1 else f"{ahead} runs are"
            text = f"Waiting: {runs} ahead of yours (one run at a time); yours starts next."
        else:
            text = "Starting: reading your strokes…"
        return status_html(text, kind="running")

    def run(self, values: dict[Any, Any], request: gr.Request) -> Iterator[_Yield]:
        """Check the fields, run in a worker thread, and stream its progress to the page."""
        session = request.session_hash or "anonymous"
        cancel, clicked = self.sessions.take(session)
        try:
            yield from self._run(values, session, cancel, clicked)
        finally:
            self.sessions.finish(session)

    def _run(
        self, values: dict[Any, Any], session: str, cancel: threading.Event, clicked: float
    ) -> Iterator[_Yield]:
        keep = gr.update()
        try:
            run_request = self.request(values)
        except USER_ERRORS as exc:
            yield status_html(str(exc), kind="error"), keep, keep, keep, keep, None
            return
        folder = self.config.workspace.folder(session)  # the previous run's files go
        yield (status_html("Filling the hole with the network…", kind="running"), None, None,
               "", gr.update(value=None, interactive=False), None)  # fmt: skip
        pace = Pace()
        for update in run_in_thread(run_request, cancel):
            if update.raw is not None:
                text = "Raw fill shown (the network as it is); finetuning on your photo…"
                yield (status_html(text, kind="running"), to_display(update.raw), keep, keep,
                       keep, keep)  # fmt: skip
            elif update.progress is not None:
                pace.observe(update.progress)
                yield _progress_view(update.progress, pace)
            elif update.cancelled_at is not None:
                text = f"Cancelled after step {update.cancelled_at}."
                yield status_html(text, kind="cancelled"), keep, keep, keep, keep, None
            elif update.error is not None:
                yield status_html(update.error, kind="error"), keep, keep, keep, keep, None
            elif update.outcome is not None:
                outcome = update.outcome
                path = self.config.workspace.write_fill(
                    folder, outcome, "finetuned", run_request.photo.name
                )
                yield (
                    status_html(_done_text(outcome, time.perf_counter() - clicked), kind="done"),
                    to_display(outcome.finetuned),
                    outcome.compared(bool(values[self.inputs.whole])),
                    _scores_text(outcome),
                    gr.update(value=str(path), interactive=True),
                    outcome,
                )

    def request(self, values: dict[Any, Any]) -> RunRequest:
        """The run the page's fields ask for, checked before any work starts."""
        fields, config = self.inputs, self.config
        photo: Photo | None = values[fields.photo]
        if photo is None:
            raise InputError("no photo: open one first")
        mask_path = values[fields.mask_file]
        mask_name = Path(mask_path).name if mask_path else "mask"
        holes = hole_mask(photo, _strokes(values[fields.editor]), mask_path, mask_name)
        check_holes(holes)
        overrides = parse_overrides({k: values[c] for k, c in fields.advanced.items()})
        if values[fields.steps] is not None:
            overrides["steps"] = int(values[fields.steps])
        backbone = values[fields.backbone] or None
        weights = values[fields.weights]
        if weights is None and config.weights is not None and backbone == config.backbone:
            weights = config.weights
        if weights is None and backbone is not None:
            weights = downloaded_weights(backbone)  # `tttkit weights pull` put one here
        references = tuple(str(p) for p in (values[fields.companions] or []))
        return RunRequest(
            photo=photo, holes=holes, backbone=backbone, weights=weights,
            strategy=values[fields.strategy] or DEFAULT_STRATEGY,
            seed=int(values[fields.seed] or 0), device=config.device, overrides=overrides,
            references=references,
        )  # fmt: skip

    def cancel(self, request: gr.Request) -> str:
        """Stop this session's run, inside its current step (a waiting one stops as it
        starts)."""
        stopped = self.sessions.cancel(request.session_hash or "anonymous")
        text = "Cancelling: stopping within a second…" if stopped else "No run."
        return status_html(text, kind="cancelled")

    def choose(
        self, which: str, outcome: Outcome | None, photo: Photo | None, request: gr.Request
    ) -> Any:
        """The kept fill changed: write it as the PNG to download."""
        if outcome is None or photo is None:
            return gr.update(value=None, interactive=False)
        folder = self.config.workspace.folder(request.session_hash or "anonymous")
        path = self.config.workspace.write_fill(folder, outcome, which, photo.name)
        return gr.update(value=str(path), interactive=True)


def _progress_view(progress: Any, pace: Pace) -> _Yield:
    keep = gr.update()
    done, total = overall_steps(progress)
    image = (
        to_display(progress.preview, at_least=PREVIEW_SIDE)
        if progress.preview is not None and progress.step > 0  # step 0: the raw fill is shown
        else keep
    )
    status = status_html(_progress_text(progress, pace), step=done, total=total, kind="running")
    return status, image, keep, keep, keep, keep


def _progress_text(progress: Any, pace: Pace) -> str:
    where = f"part {progress.window} of {progress.windows} · " if progress.windows > 1 else ""
    loss = f" · loss {progress.loss:.4f}" if progress.loss is not None else ""
    if progress.step == 0:
        return f"{where}raw fill done; finetuning…"
    left = pace.seconds_left(progress)
    eta = "measuring the pace…" if left is None else f"about {format_seconds(left)} left"
    return f"{where}step {progress.step}/{progress.total_steps}{loss} · {eta}"


def _done_text(outcome: Outcome, since_click: float) -> str:
    chosen = (
        f" (output of step {outcome.output_step})" if outcome.output_step != outcome.steps else ""
    )
    return f"Done: {outcome.steps} steps in {format_seconds(since_click)}{chosen}."


def _scores_text(outcome: Outcome) -> str:
    lines = [f"- {note}" for note in outcome.notices]
    raw, finetuned = outcome.scores["raw"], outcome.scores["finetuned"]
    if raw is not None and finetuned is not None:
        better = "finetuned" if finetuned < raw else "raw"
        lines.insert(0, f"Self-validation error (lower is better): raw **{raw:.4f}**, "
                        f"finetuned **{finetuned:.4f}** → {better} looks better.")  # fmt: skip
    else:
        lines.insert(0, "This strategy scores no held-out area (select `best` under Advanced "
                        "to get a self-validation score of each fill); judge by eye.")  # fmt: skip
    return "\n".join(lines)
