"""The results files of an evaluation run: append-only JSON lines, one per (image, strategy).

A record is written as one line with one ``write`` on a file opened for appending, then
flushed and ``fsync``'d: a finished pair is on disk before the next one starts, and a process
killed in between loses only the pair in flight. A power cut can still leave a partial last
line; readers skip it and :func:`repair` cuts it off before a resumed run appends.

Record (format 1)::

    {"image": "sub/a.jpg", "strategy": "default", "kind": "ttt", "seed": 123,
     "image_sha256": "…", "mask_sha256": "…", "hole_fraction": 0.29,
     "evaluations": [{"step": 0, "l1": …, "psnr": …, "ssim": …, "l1_hole": …}, …],
     "features": "features/default/sub/a.npy" | null, "output": "outputs/default/sub/a.png",
     "seconds": 12.3, "rank": 0}
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from tttkit.evaluation.layout import RunLayout
from tttkit.io import InputError, atomic_write_bytes

Record = dict[str, Any]

#: Fields that describe how a record was computed, not what: ignored when comparing runs.
VOLATILE_FIELDS = ("seconds", "rank")


def append_record(path: Path, record: Record) -> None:
    """Append ``record`` as one line, durably (one write, then fsync)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = (json.dumps(record, sort_keys=True, allow_nan=True) + "\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        written = os.write(fd, data)
        if written != len(data):  # not expected for regular files; never leave half a record
            raise OSError(f"short write to {path}: {written} of {len(data)} bytes")
        os.fsync(fd)
    finally:
        os.close(fd)


def repair(path: Path) -> bool:
    """Cut a partial last line (from an interrupted write) off ``path``; True if it had one."""
    if not path.is_file():
        return False
    data = path.read_bytes()
    if not data or data.endswith(b"\n"):
        return False
    keep = data.rfind(b"\n") + 1
    with path.open("r+b") as handle:
        handle.truncate(keep)
        handle.flush()
        os.fsync(handle.fileno())
    return True


def read_records(path: Path) -> list[Record]:
    """The complete records of one results file.

    A last line without its newline is an interrupted write and is skipped; any other line
    that is not a JSON object means the file was damaged, and is an error naming the line.
    """
    if not path.is_file():
        return []
    text = path.read_text(encoding="utf-8")
    lines = text.split("\n")
    complete, tail = lines[:-1], lines[-1]  # tail is "" when the file ends with a newline
    records = []
    for number, line in enumerate(complete, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(f"{path}:{number}: not a results record ({exc.msg})") from None
        if not isinstance(record, dict) or "image" not in record or "strategy" not in record:
            raise InputError(f"{path}:{number}: not a results record")
        records.append(record)
    del tail  # an unfinished write: ignored here, removed by repair()
    return records


def pair(record: Record) -> tuple[str, str]:
    """The (image, strategy) a record is about."""
    return record["image"], record["strategy"]


def load_records(layout: RunLayout) -> list[Record]:
    """Every finished pair of a run, once each: shards first, then the merged file.

    The per-process shards are the source of truth (the merged file is rewritten from them);
    a pair found twice — e.g. re-run after its record was written but before a crash was
    noticed — keeps its first record.
    """
    seen: dict[tuple[str, str], Record] = {}
    for path in [*layout.shard_files(), layout.results]:
        for record in read_records(path):
            seen.setdefault(pair(record), record)
    return list(seen.values())


def sort_records(records: Iterable[Record], order: list[str] | None = None) -> list[Record]:
    """Records sorted by image, then by strategy (in ``order`` when given, else by name)."""
    rank = {name: i for i, name in enumerate(order or [])}
    return sorted(
        records, key=lambda r: (r["image"], rank.get(r["strategy"], len(rank)), r["strategy"])
    )


def merge(layout: RunLayout, order: list[str] | None = None) -> list[Record]:
    """Rewrite ``results.jsonl`` from all shards (atomically), sorted; returns the records."""
    records = sort_records(load_records(layout), order)
    text = "".join(json.dumps(r, sort_keys=True) + "\n" for r in records)
    atomic_write_bytes(layout.results, text.encode())
    return records


def comparable(record: Record) -> Record:
    """``record`` without fields that depend on timing or on which process ran it."""
    return {k: v for k, v in record.items() if k not in VOLATILE_FIELDS}
