"""Weights by name: known checkpoints of the registered backbones, a cache, and downloads.

A backbone plugin states the checkpoints it knows as ``checkpoints={name: Checkpoint(...)}``
when it registers the backbone; ``BACKBONE:NAME`` (``lama:big-lama``) then names one wherever
a weights file is taken (``--weights``, ``adapt(weights=…)``). It is found, in order: shipped
with the package; in the cache (``$TTTKIT_HOME/weights``, else the platform's cache folder);
in a local model folder (``$TTTKIT_MODELS``, folders separated as in ``PATH``: for machines
without internet, where the file is put by hand). ``tttkit weights pull NAME`` downloads it
with a progress bar into a partial file beside its destination, checks its size and SHA-256
before it takes its name (a wrong or cut download is removed), and, for an archive, keeps the
one file that is the checkpoint. Publishers that give no checksum get the first download's
recorded (``FILE.sha256``): ``verify`` checks against it from then on.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import sys
import tempfile
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tttkit.evaluation.layout import sha256_file
from tttkit.io import InputError

#: ``BACKBONE:NAME`` — a checkpoint named, not a file.
NAME_PATTERN = re.compile(r"^([A-Za-z0-9][\w.-]*):([A-Za-z0-9][\w.-]*)$")
ENV_HOME, ENV_MODELS, ENV_MIRROR = "TTTKIT_HOME", "TTTKIT_MODELS", "TTTKIT_WEIGHTS_MIRROR"
_CHUNK = 1 << 20


@dataclass(frozen=True)
class Checkpoint:
    """A checkpoint a backbone plugin knows: where it is published and how to check it.

    Attributes:
        file: the name tttkit keeps it under (in the cache or a model folder).
        url: its official address (``None``: it ships with the package, at ``bundled``).
        sha256: of the download, as the publisher gives it (``None``: none published; the
            first download's is recorded).
        size: bytes of the download (the progress bar's total, and a cut download's check).
        licence: its licence, in a few words.
        member: inside a zip download, the path of the file to keep.
        bundled: the file inside the package, for a checkpoint that ships with it.
    """

    file: str
    url: str | None = None
    sha256: str | None = None
    size: int | None = None
    licence: str = ""
    member: str | None = None
    bundled: Path | None = None


@dataclass(frozen=True)
class Known:
    """A checkpoint with its names."""

    name: str  # BACKBONE:NAME
    backbone: str
    checkpoint: Checkpoint


def is_name(value: str | Path) -> bool:
    """Whether ``value`` names a checkpoint (``BACKBONE:NAME``) rather than a file."""
    return bool(NAME_PATTERN.match(str(value))) and not Path(value).exists()


def cache_home() -> Path:
    """``$TTTKIT_HOME``, else the platform's cache folder for tttkit."""
    given = os.environ.get(ENV_HOME)
    if given:
        return Path(given).expanduser()
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
        return base / "tttkit" / "Cache"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Caches" / "tttkit"
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "tttkit"


def weights_dir() -> Path:
    """Where pulled checkpoints are kept."""
    return cache_home() / "weights"


def model_dirs() -> list[Path]:
    """Local model folders (``$TTTKIT_MODELS``) searched after the cache."""
    return [Path(p).expanduser() for p in os.environ.get(ENV_MODELS, "").split(os.pathsep) if p]


def known() -> dict[str, Known]:
    """Every checkpoint the registered backbones state, by ``BACKBONE:NAME``."""
    from tttkit.plugins import get_host

    registry = get_host().registry("backbones")
    found = {}
    for backbone in registry.names():
        for name, checkpoint in (registry.entry(backbone).extra.get("checkpoints") or {}).items():
            key = f"{backbone}:{name}"
            found[key] = Known(key, backbone, checkpoint)
    return found


def lookup(name: str) -> Known:
    """The known checkpoint ``name``; an unknown name lists the known ones."""
    table = known()
    if name not in table:
        listed = ", ".join(sorted(table)) or "none"
        raise InputError(
            f"no known weights named {name!r} (known: {listed}; `tttkit weights list`)"
        )
    return table[name]


def local_path(entry: Known) -> Path | None:
    """Where the checkpoint is on this machine, or ``None``."""
    checkpoint = entry.checkpoint
    if checkpoint.bundled is not None and Path(checkpoint.bundled).is_file():
        return Path(checkpoint.bundled)
    for folder in (weights_dir(), *model_dirs()):
        path = folder / checkpoint.file
        if path.is_file():
            return path
    return None


def resolve(name: str) -> tuple[str, Path]:
    """``(backbone, file)`` of a named checkpoint on this machine.

    Raises:
        InputError: unknown, or not on this machine (the message says how to get it).
    """
    entry = lookup(name)
    path = local_path(entry)
    if path is None:
        raise InputError(f"weights {name} are not on this machine: {offline_hint(entry)}")
    return entry.backbone, path


def offline_hint(entry: Known) -> str:
    """One line: how to get the checkpoint, with or without internet."""
    checkpoint = entry.checkpoint
    keep = f" and keep {checkpoint.member}" if checkpoint.member else ""
    return (
        f"run `tttkit weights pull {entry.name}`, or download {checkpoint.url}{keep} as "
        f"{weights_dir() / checkpoint.file} (or into a folder named by ${ENV_MODELS})"
    )


def recorded_sha256(path: Path) -> str | None:
    """The SHA-256 recorded at the first download of a checkpoint whose publisher gives none."""
    record = path.with_name(path.name + ".sha256")
    return record.read_text().split()[0] if record.is_file() else None


def pull(
    name: str,
    *,
    mirror: str | None = None,
    on_progress: Callable[[int, int | None], None] | None = None,
    timeout: float = 30.0,
) -> Path:
    """Download a known checkpoint into the cache, checked; return its path.

    Args:
        name: ``BACKBONE:NAME``.
        mirror: fetch ``MIRROR/FILE-NAME-OF-THE-URL`` instead of the official address
            (``$TTTKIT_WEIGHTS_MIRROR``): a local or company mirror.
        on_progress: called with (bytes so far, total or ``None``) as data arrives.
        timeout: seconds without data before giving up.

    Raises:
        InputError: unknown name, no address, unreachable (one line saying what to download and
            where to put it), a cut download, or a wrong checksum; nothing partial is left.
    """
    entry = lookup(name)
    checkpoint = entry.checkpoint
    if checkpoint.url is None:
        raise InputError(f"weights {name} ship with tttkit: nothing to download")
    mirror = mirror or os.environ.get(ENV_MIRROR)
    url = (
        checkpoint.url
        if not mirror
        else f"{mirror.rstrip('/')}/{checkpoint.url.rsplit('/', 1)[-1]}"
    )
    folder = weights_dir()
    folder.mkdir(parents=True, exist_ok=True)
    destination = folder / checkpoint.file
    handle, part_name = tempfile.mkstemp(prefix=f".{checkpoint.file}.", suffix=".part", dir=folder)
    part = Path(part_name)
    try:
        with os.fdopen(handle, "wb") as out:
            digest, received = _download(url, out, checkpoint.size, on_progress, timeout, entry)
        if checkpoint.size is not None and received != checkpoint.size:
            raise InputError(
                f"the download of {name} from {url} stopped at {received} of {checkpoint.size} "
                "bytes: nothing was kept; pull again"
            )
        if checkpoint.sha256 is not None and digest != checkpoint.sha256:
            raise InputError(
                f"the download of {name} from {url} has SHA-256 {digest[:16]}…, not the "
                f"published {checkpoint.sha256[:16]}…: refused, nothing was kept"
            )
        kept = _extract(part, checkpoint.member, folder, name) if checkpoint.member else part
        kept_digest = sha256_file(kept) if checkpoint.member else digest
        os.replace(kept, destination)
        # What `verify` checks the kept file against: for an archive, or a publisher that gives
        # no checksum (trust on first use, said in `tttkit weights list`), this record.
        destination.with_name(destination.name + ".sha256").write_text(f"{kept_digest}  {url}\n")
    finally:
        part.unlink(missing_ok=True)
    return destination


def _download(
    url: str,
    out: object,
    size: int | None,
    on_progress: Callable[[int, int | None], None] | None,
    timeout: float,
    entry: Known,
) -> tuple[str, int]:
    digest, received = hashlib.sha256(), 0
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            total = int(response.headers.get("Content-Length") or 0) or size
            while block := response.read(_CHUNK):
                out.write(block)  # type: ignore[attr-defined]
                digest.update(block)
                received += len(block)
                if on_progress is not None:
                    on_progress(received, total)
    except urllib.error.HTTPError as exc:
        raise InputError(
            f"cannot download {entry.name}: {url} answered {exc.code} {exc.reason}"
        ) from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        if received:  # connection cut mid-way
            raise InputError(
                f"the download of {entry.name} from {url} broke off after {received} bytes "
                f"({reason}): nothing was kept; pull again"
            ) from None
        raise InputError(f"cannot reach {url} ({reason}): {offline_hint(entry)}") from None
    return digest.hexdigest(), received


def _extract(archive: Path, member: str, folder: Path, name: str) -> Path:
    """The archive's ``member`` as a partial file beside the destination."""
    try:
        with zipfile.ZipFile(archive) as zipped, zipped.open(member) as source:
            handle, target = tempfile.mkstemp(prefix=".extract.", suffix=".part", dir=folder)
            with os.fdopen(handle, "wb") as out:
                shutil.copyfileobj(source, out, _CHUNK)
    except (zipfile.BadZipFile, KeyError) as exc:
        raise InputError(f"the download of {name} is not the expected archive ({exc})") from None
    return Path(target)


def verify(entry: Known) -> tuple[bool | None, str]:
    """Check a checkpoint on this machine against its published or recorded SHA-256:
    ``(ok, what)``, ``ok`` ``None`` when it is absent or nothing can be checked."""
    path = local_path(entry)
    if path is None:
        return None, "not on this machine"
    expected = entry.checkpoint.sha256 if not entry.checkpoint.member else None
    expected = expected or recorded_sha256(path)
    if expected is None:
        return None, f"{path}: no published or recorded SHA-256 to check"
    actual = sha256_file(path)
    if actual != expected:
        return False, f"{path}: SHA-256 {actual[:16]}… differs from {expected[:16]}…"
    return True, f"{path}: SHA-256 matches"
