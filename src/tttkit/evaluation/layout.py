"""Where everything of an evaluation run lives, how images are named, and how seeds are derived.

An image is identified by its *key*: its path relative to the images folder, with ``/``
separators (``"sub/photo.jpg"``). Every per-image file of a run is named after the key with the
suffix replaced, so ``sub/photo.jpg`` has the mask ``MASKS/sub/photo.png``, the output
``RUN/outputs/<strategy>/sub/photo.png`` and the features ``RUN/features/<strategy>/sub/photo.npy``.

Seeds are derived by hashing, never by counting, so a seed depends only on the run seed and the
names involved — not on how many images there are, their order, or which process runs them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from tttkit.io import InputError

#: Directory of the ground-truth features (never a strategy name: those cannot start with "_").
REAL = "_real"


def derive_seed(seed: int, *names: str) -> int:
    """A 63-bit seed from ``seed`` and ``names`` (e.g. an image key and a strategy name).

    SHA-256 of the parts joined by a separator that cannot occur in them, so
    ``("a", "bc")`` and ``("ab", "c")`` differ.
    """
    text = "\x1f".join([str(int(seed)), *names])
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big") >> 1


def image_key(path: Path, root: Path) -> str:
    """The key of ``path`` under ``root``: its relative path with ``/`` separators."""
    return path.relative_to(root).as_posix()


def with_suffix(key: str, suffix: str) -> str:
    """``key`` with its file suffix replaced (``"a/b.jpg"`` → ``"a/b.png"``)."""
    return PurePosixPath(key).with_suffix(suffix).as_posix()


def check_unique_stems(keys: Iterable[str], folder: Path) -> None:
    """Refuse keys that would share derived files (``a.jpg`` and ``a.png`` in one folder)."""
    seen: dict[str, str] = {}
    for key in keys:
        stem = with_suffix(key, "")
        if stem in seen:
            raise InputError(
                f"{folder}: {seen[stem]} and {key} differ only in their suffix; their masks and "
                "outputs would share a file name (rename one)"
            )
        seen[stem] = key


def check_outside(folder: Path, images: Path, option: str) -> None:
    """Refuse to write inside the images folder: its PNGs would be read as photos next time."""
    inner, outer = folder.resolve(), images.resolve()
    if inner == outer or outer in inner.parents:
        raise InputError(f"{option} {folder} is inside the images folder {images}: choose another")


def check_row_name(name: str) -> None:
    """A strategy name must be usable as a directory name."""
    if not name or name.startswith((".", "_")) or "/" in name or "\\" in name:
        raise InputError(f"strategy name {name!r} cannot name a directory of the run")


@dataclass(frozen=True)
class RunLayout:
    """The files of an evaluation run under ``root`` (see docs/evaluation.md)."""

    root: Path

    @property
    def settings(self) -> Path:
        """``run.json``: the settings every resumed run must match."""
        return self.root / "run.json"

    def read_settings(self) -> dict[str, Any]:
        """The stored ``run.json``; a damaged one is an :class:`InputError` naming it."""
        try:
            settings = json.loads(self.settings.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InputError(
                f"{self.settings} is damaged and cannot be read ({exc}); it records the run's "
                "settings: restore it, or start the run again in another --out"
            ) from None
        if not isinstance(settings, dict):
            raise InputError(f"{self.settings} is not an evaluation run's settings")
        return settings

    @property
    def results(self) -> Path:
        """``results.jsonl``: all records, merged and sorted by rank 0 at the end of a run."""
        return self.root / "results.jsonl"

    @property
    def shards(self) -> Path:
        """Folder of the append-only per-process results files."""
        return self.root / "shards"

    def shard(self, rank: int) -> Path:
        """The results file process ``rank`` appends to."""
        return self.shards / f"rank-{rank:05d}.jsonl"

    def shard_files(self) -> list[Path]:
        """Every per-process results file present, sorted."""
        return sorted(self.shards.glob("rank-*.jsonl")) if self.shards.is_dir() else []

    @property
    def set_metrics(self) -> Path:
        """``set_metrics.json``: FID per strategy and step."""
        return self.root / "set_metrics.json"

    def features(self, strategy: str, key: str) -> Path:
        """Feature vectors ``(evaluations, D)`` of a strategy's outputs on one image."""
        return self.root / "features" / strategy / with_suffix(key, ".npy")

    def real_features(self, key: str) -> Path:
        """Feature vector ``(1, D)`` of one ground-truth image."""
        return self.features(REAL, key)

    def output(self, strategy: str, key: str) -> Path:
        """A strategy's completion of one image at its last evaluation step."""
        return self.root / "outputs" / strategy / with_suffix(key, ".png")

    def original(self, key: str) -> Path:
        """The ground truth as evaluated (cropped and resized)."""
        return self.root / "inputs" / with_suffix(key, ".png")

    def mask(self, key: str) -> Path:
        """The user mask as evaluated (at the working size)."""
        return self.root / "masks" / with_suffix(key, ".png")

    def relative(self, path: Path) -> str:
        """``path`` relative to the run folder, for records (the folder may move)."""
        return path.relative_to(self.root).as_posix()


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def sha256_parts(parts: Sequence[bytes]) -> str:
    """Hex SHA-256 of several byte strings, each length-prefixed."""
    digest = hashlib.sha256()
    for part in parts:
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()
