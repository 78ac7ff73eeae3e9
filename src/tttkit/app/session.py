"""What the app does, without the web framework: read an upload, make the hole mask from the
painted strokes, run test-time training in a worker thread that reports progress and can be
cancelled, and write the fill the user keeps.

Everything here goes through the public library API (:func:`tttkit.adapt`, its
``on_progress`` and ``cancel``, :mod:`tttkit.io`), so the page (``page.py``) only lays it out.
"""

from __future__ import annotations

import math
import queue
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

import tttkit
from tttkit.errors import (
    InputError,
    PluginContractError,
    PluginLoadError,
    RegistryError,
    RunCancelled,
    SpecError,
)
from tttkit.events import Progress
from tttkit.imageops import area_shrunk
from tttkit.io import read_image, read_mask, write_image

#: The largest photo the app accepts, in pixels (``tttkit app --max-pixels``): a 48 MP phone
#: photo fits; the file is refused from its header, before any decoding.
DEFAULT_MAX_PIXELS = 50_000_000
#: The largest upload, in megabytes (``tttkit app --max-upload-mb``).
DEFAULT_MAX_UPLOAD_MB = 100
#: The painting canvas shows the photo at most this many pixels on its longest side; the
#: strokes are scaled back to the photo's full resolution.
DISPLAY_SIDE = 1600
#: A hole over this share of the photo leaves too little to learn from.
MAX_HOLE_SHARE = 0.9

#: Errors whose message is meant for the user as is (shown in the page; the server goes on).
USER_ERRORS = (InputError, SpecError, RegistryError, PluginLoadError, PluginContractError)


@dataclass(frozen=True)
class Photo:
    """An uploaded photo: full-resolution pixels, and the copy the canvas shows."""

    name: str
    pixels: Tensor  # (3, H, W) uint8
    display: np.ndarray  # (h, w, 3) uint8, longest side ≤ DISPLAY_SIDE

    @property
    def size(self) -> tuple[int, int]:
        """``(height, width)`` at full resolution."""
        return int(self.pixels.shape[-2]), int(self.pixels.shape[-1])


def open_photo(path: str | Path, name: str, max_pixels: int = DEFAULT_MAX_PIXELS) -> Photo:
    """Read an uploaded photo (any format Pillow reads, EXIF orientation applied) under the
    pixel limit, and make its display copy. ``name`` is how messages call it (the browser's
    file name, never the server path)."""
    try:
        pixels = read_image(path, max_pixels=max_pixels, dtype=torch.uint8)
    except InputError as exc:
        raise InputError(str(exc).replace(str(path), name)) from None
    return Photo(name=name, pixels=pixels, display=_display_copy(pixels))


def _display_copy(pixels: Tensor) -> np.ndarray:
    return area_shrunk(pixels, DISPLAY_SIDE / max(pixels.shape[-2:]))


def _rescaled(pixels: Tensor, scale: float, mode: str) -> Tensor:
    """A ``(3, H, W)`` uint8 image resized by ``scale`` (at least one pixel a side)."""
    height, width = pixels.shape[-2:]
    size = (max(1, round(height * scale)), max(1, round(width * scale)))
    resized = torch.nn.functional.interpolate(pixels[None].float(), size=size, mode=mode)[0]
    return resized.round().clamp(0, 255).to(torch.uint8)


def hole_mask(
    photo: Photo,
    strokes: np.ndarray | None = None,
    mask_file: str | Path | None = None,
    mask_name: str = "mask",
) -> Tensor:
    """The holes at the photo's full resolution, ``(1, H, W)`` uint8 (1 = hole): the painted
    strokes (any pixel a stroke touched, at the canvas's size, scaled up) united with an
    uploaded mask file (white = hole; resized to the photo if its size differs)."""
    height, width = photo.size
    holes = torch.zeros(1, height, width, dtype=torch.uint8)
    if strokes is not None and strokes.size:
        painted = _painted(strokes)
        if painted.any():
            up = torch.nn.functional.interpolate(
                torch.from_numpy(painted)[None, None].float(), size=(height, width), mode="nearest"
            )[0]
            holes |= (up > 0.5).to(torch.uint8)
    if mask_file is not None:
        try:
            uploaded = read_mask(mask_file, max_pixels=max(height * width, DEFAULT_MAX_PIXELS))
        except InputError as exc:
            raise InputError(str(exc).replace(str(mask_file), mask_name)) from None
        if tuple(uploaded.shape[-2:]) != (height, width):
            uploaded = torch.nn.functional.interpolate(
                uploaded[None], size=(height, width), mode="nearest"
            )[0]
        holes |= (uploaded > 0.5).to(torch.uint8)
    return holes


def _painted(strokes: np.ndarray) -> np.ndarray:
    """Where a stroke layer has paint: alpha > 0 (RGBA), else any non-zero channel."""
    if strokes.ndim == 3 and strokes.shape[-1] == 4:
        return strokes[..., 3] > 0
    if strokes.ndim == 3:
        return strokes.any(axis=-1)
    return strokes > 0


def check_holes(holes: Tensor) -> None:
    """Refuse a hole the run cannot use: none painted, or nearly the whole photo."""
    share = float(holes.float().mean())
    if share == 0.0:
        raise InputError(
            "no hole: paint over what should go (or upload a mask, white = hole), then run"
        )
    if share > MAX_HOLE_SHARE:
        raise InputError(
            f"the hole covers {share:.0%} of the photo: too little is left to learn from "
            f"(at most {MAX_HOLE_SHARE:.0%}); paint a smaller hole"
        )


@dataclass(frozen=True)
class RunRequest:
    """One run as the page asks for it."""

    photo: Photo
    holes: Tensor
    backbone: str | None = None
    weights: str | Path | None = None
    strategy: str = "default"
    seed: int = 0
    device: str = "cpu"
    overrides: dict[str, Any] = field(default_factory=dict)
    references: tuple[str, ...] = ()  # other shots of the scene (uploaded files)


@dataclass
class Outcome:
    """A finished run: both fills at full resolution, and what to show of them."""

    raw: Tensor  # (3, H, W) uint8
    finetuned: Tensor
    output_step: int
    steps: int
    scores: dict[str, float | None]  # self-validation score (lower is better) of each fill
    notices: list[str]
    holes: Tensor | None = None  # (1, H, W) uint8, for the comparison's close-up

    def fill(self, which: str) -> Tensor:
        """``"raw"`` or ``"finetuned"``."""
        return self.raw if which == "raw" else self.finetuned

    def compared(self, whole: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """Both fills for the before/after view: a close-up of the holes (a hole is a few
        pixels of a whole phone photo at the page's size), or the whole photo."""
        box = None if whole or self.holes is None else close_up(self.holes)
        views = []
        for image in (self.raw, self.finetuned):
            if box is not None:
                top, left, bottom, right = box
                image = image[:, top:bottom, left:right]
            views.append(to_display(image, at_least=CLOSE_UP_SIDE))
        return views[0], views[1]


#: The close-up of the holes is shown at least this large (a small hole is enlarged).
CLOSE_UP_SIDE = 512


def close_up(holes: Tensor, margin: float = 0.5, least: int = 96) -> tuple[int, int, int, int]:
    """``(top, left, bottom, right)``: the holes' bounding box grown by ``margin`` of its size
    (at least ``least`` pixels) on every side, within the photo."""
    rows = torch.nonzero(holes[0].any(dim=1)).flatten()
    cols = torch.nonzero(holes[0].any(dim=0)).flatten()
    height, width = holes.shape[-2:]
    if len(rows) == 0:
        return 0, 0, height, width
    top, bottom, left, right = int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
    grow = max(least, round(margin * max(bottom - top, right - left)))
    return (max(0, top - grow), max(0, left - grow), min(height, bottom + grow),
            min(width, right + grow))  # fmt: skip


@dataclass(frozen=True)
class Update:
    """What the worker reports: the raw fill and progress, then exactly one of outcome, error
    or cancelled (the last update)."""

    progress: Progress | None = None
    raw: Tensor | None = None  # (3, H, W) uint8: the whole photo's raw fill, before finetuning
    outcome: Outcome | None = None
    error: str | None = None
    cancelled_at: int | None = None

    @property
    def final(self) -> bool:
        """Whether the run is over with this update."""
        return self.outcome is not None or self.error is not None or self.cancelled_at is not None


#: One run at a time in this process: the CPU has no room for two, and a cancelled run's
#: thread may still be finishing its last step when the next one starts.
RUN_LOCK = threading.Lock()


def run_in_thread(request: RunRequest, cancel: threading.Event) -> Iterator[Update]:
    """Run ``request`` in a worker thread; yield its :class:`Update` s as they come.

    The worker waits for :data:`RUN_LOCK`; setting ``cancel`` stops it within a layer's work
    (:mod:`tttkit.engine.cancellation`). The generator's ``close()`` (the page went away) also
    cancels the run.
    """
    updates: queue.Queue[Update] = queue.Queue()
    worker = threading.Thread(
        target=_work, args=(request, cancel, updates), name="tttkit-app-run", daemon=True
    )
    worker.start()
    try:
        while True:
            update = updates.get()
            yield update
            if update.final:
                return
    finally:
        cancel.set()  # a no-op after a normal end; stops an abandoned run


def warm_up(backbone: str | None, weights: str | Path | None, device: str) -> threading.Thread:
    """Run the network once, on a small made-up photo, in the background as the app starts:
    the first Run then finds the modules imported and the weights read, and shows its raw fill
    seconds sooner. It holds :data:`RUN_LOCK` (a Run clicked meanwhile waits for it); a failure
    is left for that first Run to report."""

    def work() -> None:
        with RUN_LOCK:
            try:
                image = torch.rand(3, 64, 64, generator=torch.Generator().manual_seed(0))
                holes = torch.zeros(1, 64, 64, dtype=torch.uint8)
                holes[:, 24:40, 24:40] = 1
                tttkit.adapt(image, holes, backbone=backbone, weights=weights, steps=0,
                             device=device)  # fmt: skip
            except Exception:
                pass

    thread = threading.Thread(target=work, name="tttkit-warm-up", daemon=True)
    thread.start()
    return thread


def _work(request: RunRequest, cancel: threading.Event, updates: queue.Queue[Update]) -> None:
    with RUN_LOCK:
        if cancel.is_set():
            updates.put(Update(cancelled_at=0))
            return
        try:
            result = tttkit.adapt(
                request.photo.pixels, request.holes, backbone=request.backbone,
                weights=request.weights, strategy=request.strategy, seed=request.seed,
                device=request.device, label=request.photo.name, cancel=cancel,
                on_progress=lambda progress: updates.put(Update(progress=progress)),
                on_raw=lambda raw: updates.put(Update(raw=raw)),
                references=list(request.references) or None, **request.overrides,
            )  # fmt: skip
        except RunCancelled as exc:
            updates.put(Update(cancelled_at=exc.step))
            return
        except USER_ERRORS as exc:
            updates.put(Update(error=_named(str(exc), request.references)))
            return
        except Exception as exc:
            updates.put(Update(error=f"the run failed: {type(exc).__name__}: {exc}"))
            return
        updates.put(Update(outcome=_outcome(result, request.holes)))


def _named(message: str, uploads: tuple[str, ...]) -> str:
    """A message with the server's paths of uploaded files replaced by their names."""
    for path in uploads:
        message = message.replace(str(path), Path(path).name)
    return message


def _outcome(result: Any, holes: Tensor) -> Outcome:
    scores: dict[str, float | None] = {"raw": None, "finetuned": None}
    selection = result.selection
    if selection is not None and selection.validation:
        by_step = dict(selection.validation)
        scores = {"raw": by_step.get(0), "finetuned": by_step.get(selection.chosen_step)}
    return Outcome(
        raw=result.raw, finetuned=result.finetuned, output_step=result.output_step,
        steps=result.strategy.steps, scores=scores, notices=list(result.notices), holes=holes,
    )  # fmt: skip


def overall_steps(progress: Progress) -> tuple[int, int]:
    """``(done, total)`` steps over all the photo's windows (each window plans as many)."""
    done = (progress.window - 1) * progress.total_steps + progress.step
    return done, progress.windows * progress.total_steps


class Pace:
    """Seconds left, from the measured times of finished steps.

    Each window's first step is left out: it also pays for setting the run up (the network's
    copy, the first allocations), and counting it made the first estimates several times too
    long. Before a second step has finished there is no estimate.
    """

    def __init__(self) -> None:
        self.durations: list[float] = []
        self._last: tuple[tuple[int, int], float] | None = None

    def observe(self, progress: Progress, now: float | None = None) -> None:
        """Note the moment ``progress`` arrived."""
        now = time.perf_counter() if now is None else now
        here = (progress.window, progress.step)
        if self._last is not None and progress.step >= 2:
            (window, step), then = self._last
            if (window, step + 1) == here:
                self.durations.append(now - then)
        self._last = (here, now)

    def seconds_left(self, progress: Progress) -> float | None:
        """The estimate after ``progress``: mean step time × steps left (``None`` if unknown)."""
        if not self.durations:
            return None
        done, total = overall_steps(progress)
        return sum(self.durations) / len(self.durations) * max(0, total - done)


def to_display(image: Tensor, at_least: int = 0) -> np.ndarray:
    """A ``(3, H, W)`` image (uint8 or float in [0, 1]) as an ``(H, W, 3)`` uint8 array,
    shrunk to the canvas's size, or enlarged until its longest side is ``at_least`` (a
    preview at the network's small working size)."""
    if image.is_floating_point():
        image = (image.clamp(0, 1) * 255).round().to(torch.uint8)
    longest = max(image.shape[-2:])
    if 0 < longest < at_least:
        image = _rescaled(image, at_least / longest, "bilinear")
    return _display_copy(image)


class Workspace:
    """The app's temporary files: one folder per browser session under one root, removed
    when the session's next run starts and, all of them, when the app stops."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="tttkit-app-", dir=root))

    def folder(self, session: str) -> Path:
        """The session's folder, emptied (``session`` is the framework's random session id)."""
        safe = "".join(c for c in session if c.isalnum())[:64] or "anonymous"
        path = self.root / "sessions" / safe
        shutil.rmtree(path, ignore_errors=True)
        path.mkdir(parents=True)
        return path

    def write_fill(self, folder: Path, outcome: Outcome, which: str, stem: str) -> Path:
        """The kept fill as a PNG at the photo's full resolution."""
        path = folder / f"{_safe_stem(stem)}_{which}.png"
        write_image(path, outcome.fill(which))
        return path

    def close(self) -> None:
        """Remove every file the app wrote."""
        shutil.rmtree(self.root, ignore_errors=True)


def _safe_stem(name: str) -> str:
    stem = Path(name).stem
    cleaned = "".join(c if c.isalnum() or c in "-_" else "_" for c in stem)[:80]
    return cleaned or "photo"


def format_seconds(seconds: float | None) -> str:
    """``"1 min 05 s"``, ``"12 s"`` or ``"—"``."""
    if seconds is None or not math.isfinite(seconds):
        return "—"
    whole = round(seconds)
    return f"{whole // 60} min {whole % 60:02d} s" if whole >= 60 else f"{whole} s"


def backbone_choices(
    given: str | None = None, weights: Path | None = None
) -> list[tuple[str, str]]:
    """Registered backbones the page can build: ``(label, name)``; one that ships no weights
    says so (its runs need a weights file), unless it is ``given``, the backbone the app was
    started with ``--weights`` for: that one names the file."""
    from tttkit.registry import REQUIRED

    registry = tttkit.backbones()
    here = _downloaded()
    choices = []
    for name in registry.names():
        entry = registry.entry(name)
        if any(default == REQUIRED for default in entry.parameters().values()):
            continue  # needs options (a file path…) the page does not ask for
        bundled = entry.extra.get("weights")
        ships = bundled is not None and Path(bundled).is_file()
        if weights is not None and name == given:
            label = f"{name} (weights: {weights.name})"
        elif not ships and name in here:
            label = f"{name} (weights: {here[name][0]}, downloaded)"
        else:
            label = name if ships else f"{name} (needs a weights file)"
        choices.append((label, name))
    return choices


def downloaded_weights(backbone: str) -> Path | None:
    """A downloaded known checkpoint of ``backbone`` (``tttkit weights pull``), if any."""
    found = _downloaded().get(backbone)
    return None if found is None else found[1]


def _downloaded() -> dict[str, tuple[str, Path]]:
    """Backbone → ``(BACKBONE:NAME, file)`` of its first downloaded known checkpoint."""
    from tttkit.weights_store import known, local_path

    found: dict[str, tuple[str, Path]] = {}
    for entry in known().values():
        if entry.checkpoint.bundled is None and entry.backbone not in found:
            path = local_path(entry)
            if path is not None:
                found[entry.backbone] = (entry.name, path)
    return found
