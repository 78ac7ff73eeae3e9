"""Many photos per command: ``tttkit inpaint FOLDER|GLOB --out DIR``.

Pairs each photo with its mask — LaMa's layout (``name.png`` beside ``name_mask000.png`` …:
several masks, several outputs), a masks folder with the same stems, or one mask file for all
— checks every pair's headers before any work and prints the plan; then fills them one by one
(or in ``--jobs`` worker processes, or spread over ``torchrun`` processes), writing each output
atomically and a line per photo in ``summary.jsonl``. A rerun skips what is done; one bad file
is named, skipped and counted, never stops the batch; Ctrl-C stops after the photo in flight.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tttkit.io import IMAGE_SUFFIXES, InputError

SUMMARY = "summary.jsonl"


@dataclass(frozen=True)
class Job:
    """One photo with one mask, and where its fill goes."""

    key: str
    photo: Path
    mask: Path
    out: Path


@dataclass(frozen=True)
class Plan:
    """What a batch will do."""

    jobs: list[Job]
    done: list[Job]  # finished by an earlier run (output there, summary says done)
    order: list[Job]  # every pair, in a fixed order: what processes share out
    skipped: list[tuple[str, str]]  # (file, why) refused before any work
    photos: int
    masks: int


def is_batch(image: Path) -> bool:
    """Whether ``IMAGE`` names many photos: a folder, or a glob pattern."""
    return image.is_dir() or any(c in str(image) for c in "*?[")


def _photos(source: Path) -> tuple[Path, list[Path]]:
    """The folder keys are relative to, and the photo files: a folder's, or a glob's."""
    if source.is_dir():
        found = sorted(
            p for p in source.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
        )
        if not found:
            raise InputError(f"IMAGE {source} is a directory with no photo in it")
        return source, found
    fixed: list[str] = []
    for part in source.parts:
        if any(c in part for c in "*?["):
            break
        fixed.append(part)
    root = Path(*fixed) if fixed else Path(".")
    pattern = Path(*source.parts[len(fixed) :]).as_posix()
    found = sorted(
        p for p in root.glob(pattern) if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
    )
    if not found:
        raise InputError(f"IMAGE {source}: no photo matches")
    return root, found


def plan(source: Path, mask: Path | None, out: Path, resize_mask: bool = False) -> Plan:
    """Pair photos and masks, check their headers, and list what is done already.

    Raises:
        InputError: nothing to pair (no photo, no mask, a masks folder missing a mask…).
    """
    from tttkit.evaluation.inputs import LAMA_MASK_MARK, find_items

    root, photos = _photos(source)
    pairs: list[tuple[str, Path, Path]] = []
    if mask is not None and mask.is_file():  # one mask for every photo (masks are no photos)
        pairs = [(p.relative_to(root).as_posix(), p, mask) for p in photos
                 if p != mask and not _looks_like_mask(p)]  # fmt: skip
    elif source.is_dir():
        items = find_items(source, mask).items
        pairs = [(k, i.image, i.mask) for k, i in items.items()]
    else:  # a glob: masks beside (LaMa's layout) or in a masks folder, by stem
        for photo in (p for p in photos if not _looks_like_mask(p)):
            if mask is None:  # one output per mask, named after it
                beside = sorted(photo.parent.glob(f"{photo.stem}{LAMA_MASK_MARK}*.png"))
                pairs += [(m.relative_to(root).as_posix(), photo, m) for m in beside if m.is_file()]
            elif (mask_file := mask / f"{photo.stem}.png").is_file():
                pairs.append((photo.relative_to(root).as_posix(), photo, mask_file))
    if not pairs:
        raise InputError(f"IMAGE {source}: no photo with a mask (see --mask)")
    return _checked(pairs, out, resize_mask, photos=len({p for _, p, _ in pairs}))


def _looks_like_mask(path: Path) -> bool:
    from tttkit.evaluation.inputs import LAMA_MASK_MARK

    return LAMA_MASK_MARK in path.name and path.suffix.lower() == ".png"


def _checked(
    pairs: list[tuple[str, Path, Path]], out: Path, resize_mask: bool, photos: int
) -> Plan:
    done_keys = finished(out)
    jobs, done, skipped, order = [], [], [], []
    for key, photo, mask in pairs:
        target = out / Path(key).with_suffix(".png")
        job = Job(key, photo, mask, target)
        order.append(job)
        if key in done_keys and target.is_file():
            done.append(job)
            continue
        problem = _header_problem(photo, mask, resize_mask)
        if problem:
            skipped.append((key, problem))
            continue
        jobs.append(job)
    return Plan(jobs, done, order, skipped, photos, len({m for _, _, m in pairs}))


def _header_problem(photo: Path, mask: Path, resize_mask: bool) -> str | None:
    """Why a pair cannot be filled, from the files' headers (no decoding), or ``None``."""
    from PIL import Image

    sizes = []
    for path, what in ((photo, "photo"), (mask, "mask")):
        try:
            with Image.open(path) as image:
                sizes.append(image.size)
        except Exception as exc:  # any unreadable file: named, skipped, counted
            return f"{what} {path.name} cannot be read ({type(exc).__name__})"
    if sizes[0] != sizes[1] and not resize_mask:
        return (
            f"mask {mask.name} is {sizes[1][0]}×{sizes[1][1]}, photo {photo.name} is "
            f"{sizes[0][0]}×{sizes[0][1]} (pass --resize-mask)"
        )
    return None


def finished(out: Path) -> set[str]:
    """Keys an earlier run finished (``done`` in a summary file of ``out``)."""
    keys: set[str] = set()
    for path in sorted(out.glob("summary*.jsonl")) if out.is_dir() else []:
        for line in path.read_text().splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:  # a line cut by a hard stop: that photo is redone
                continue
            if row.get("status") == "done":
                keys.add(row["key"])
    return keys


def run_job(job: Job, fill: Callable[[Job], dict[str, Any]]) -> dict[str, Any]:
    """Fill one job; its summary row, with ``status`` done or failed (the error named)."""
    started = time.perf_counter()
    row: dict[str, Any] = {"key": job.key, "photo": str(job.photo), "mask": str(job.mask),
                           "output": str(job.out)}  # fmt: skip
    try:
        row.update(fill(job))
        row["status"] = "done"
    except KeyboardInterrupt:
        raise
    except Exception as exc:  # one bad file never stops the batch: named and counted
        message = str(exc) if isinstance(exc, InputError) else f"{type(exc).__name__}: {exc}"
        row.update(status="failed", error=message)
    row["seconds"] = round(time.perf_counter() - started, 3)
    return row


def append_summary(out: Path, row: dict[str, Any], rank: int = 0) -> None:
    """One line per photo; each process of a spread run has its own file."""
    name = SUMMARY if rank == 0 else f"summary.rank-{rank}.jsonl"
    with (out / name).open("a") as handle:
        handle.write(json.dumps(row) + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def shard(batch: Plan, rank: int, world: int) -> list[Job]:
    """This process's share of the jobs to do under torchrun: every world-th pair of the fixed
    order, from its rank — not of what is left, which another process may already have
    shortened when this one plans."""
    mine = {job.key for index, job in enumerate(batch.order) if index % world == rank}
    return [job for job in batch.jobs if job.key in mine]
