"""Finding companion photos by their EXIF data: shots of the same scene, taken near the target.

The thesis's last idea for future work: "exploit EXIF data in user images to find companion
images that were captured at roughly the same time and location". A photo in the folder is a
companion of the target when

* both state when they were taken (``DateTimeOriginal``, else ``DateTime``) and the times are
  at most ``minutes`` apart;
* both state where (GPS), the places are at most ``meters`` apart (not checked when either
  does not say);
* both name their camera (``Make`` and ``Model``), it is the same one (likewise).

Only the files' headers are read: a folder of large photos is scanned in moments.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from tttkit.io import InputError

#: Default largest time between the target and a companion.
DEFAULT_MINUTES = 10.0
#: Default largest distance between them, when both have GPS positions.
DEFAULT_METERS = 200.0

_EXIF_IFD, _GPS_IFD = 0x8769, 0x8825
_DATETIME_ORIGINAL, _DATETIME = 0x9003, 0x0132
_MAKE, _MODEL = 0x010F, 0x0110
_EARTH_RADIUS_M = 6_371_000.0
_IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".tif", ".tiff", ".webp", ".heic", ".bmp"}


@dataclass(frozen=True)
class ShotInfo:
    """What a photo's EXIF says about when, where and with what it was taken."""

    taken: datetime | None = None
    position: tuple[float, float] | None = None  # (latitude, longitude) in degrees
    camera: str | None = None


@dataclass(frozen=True)
class Candidate:
    """A photo of the folder, and whether (and why) it was taken as a companion."""

    path: Path
    taken: bool
    reason: str


def shot_info(path: str | Path) -> ShotInfo:
    """Read a photo's EXIF capture time, GPS position and camera (each ``None`` if absent);
    a file Pillow cannot open says nothing."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            exif = image.getexif()
    except Exception:  # not an image, or a damaged one: no information
        return ShotInfo()
    details = exif.get_ifd(_EXIF_IFD)
    stamp = details.get(_DATETIME_ORIGINAL) or exif.get(_DATETIME)
    make, model = exif.get(_MAKE), exif.get(_MODEL)
    camera = " ".join(str(v).strip() for v in (make, model) if v) or None
    return ShotInfo(_parse_time(stamp), _position(exif.get_ifd(_GPS_IFD)), camera)


def _parse_time(value: Any) -> datetime | None:
    if not value:
        return None
    text = str(value).strip().rstrip("\x00")
    try:
        return datetime.strptime(text, "%Y:%m:%d %H:%M:%S")
    except ValueError:
        return None


def _position(gps: dict[int, Any]) -> tuple[float, float] | None:
    try:
        latitude = _degrees(gps[2], gps.get(1, "N"), "S")
        longitude = _degrees(gps[4], gps.get(3, "E"), "W")
    except (KeyError, TypeError, ValueError, ZeroDivisionError):
        return None
    return (latitude, longitude) if abs(latitude) <= 90 and abs(longitude) <= 180 else None


def _degrees(parts: Any, ref: Any, negative: str) -> float:
    d, m, s = (float(v) for v in parts)
    value = d + m / 60 + s / 3600
    return -value if str(ref).strip().upper().startswith(negative) else value


def distance_m(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Great-circle distance in metres between two (latitude, longitude) points."""
    lat1, lon1, lat2, lon2 = map(math.radians, (*a, *b))
    h = (
        math.sin((lat2 - lat1) / 2) ** 2
        + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    )
    return 2 * _EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))


def judge(target: ShotInfo, other: ShotInfo, minutes: float, meters: float) -> tuple[bool, str]:
    """Whether ``other`` is a companion of ``target``, and why (one line)."""
    if other.taken is None:
        return False, "no capture time in its EXIF"
    assert target.taken is not None
    gap = abs((other.taken - target.taken).total_seconds())
    if gap > minutes * 60:
        return False, f"taken {_duration(gap)} apart (more than {minutes:g} min)"
    if target.camera and other.camera and target.camera != other.camera:
        return False, f"another camera ({other.camera})"
    where = ""
    if target.position and other.position:
        apart = distance_m(target.position, other.position)
        if apart > meters:
            return False, f"taken {apart:.0f} m away (more than {meters:g} m)"
        where = f", {apart:.0f} m away"
    same = ", same camera" if target.camera and other.camera else ""
    return True, f"taken {_duration(gap)} apart{where}{same}"


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def find_companions(
    target: str | Path,
    folder: str | Path,
    minutes: float = DEFAULT_MINUTES,
    meters: float = DEFAULT_METERS,
) -> list[Candidate]:
    """Judge every photo in ``folder`` (not its subfolders) as a companion of ``target``.

    Returns:
        one :class:`Candidate` per photo file, the taken ones first, nearest in time first.

    Raises:
        InputError: ``folder`` is not a folder, or ``target`` states no capture time (then
            name the references with ``--reference``).
    """
    target, folder = Path(target), Path(folder)
    if not folder.is_dir():
        raise InputError(f"--companions {folder}: not a folder")
    info = shot_info(target)
    if info.taken is None:
        raise InputError(
            f"{target} has no capture time in its EXIF (DateTimeOriginal), so companions "
            "cannot be found by time: name them with --reference FILE or --references DIR"
        )
    candidates = []
    for path in _photos(folder):
        if path.resolve() == target.resolve():
            continue
        other = shot_info(path)
        taken, reason = judge(info, other, minutes, meters)
        gap = abs((other.taken - info.taken).total_seconds()) if other.taken else math.inf
        candidates.append((not taken, gap, path.name, Candidate(path, taken, reason)))
    return [c for *_, c in sorted(candidates, key=lambda item: item[:3])]


def _photos(folder: Path) -> Iterable[Path]:
    return sorted(
        p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in _IMAGE_SUFFIXES
    )


def photos_in(folder: str | Path) -> list[Path]:
    """The photo files of ``folder`` (``--references DIR``), sorted by name.

    Raises:
        InputError: not a folder, or no photo in it.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"--references {folder}: not a folder")
    found = list(_photos(folder))
    if not found:
        raise InputError(f"--references {folder}: no photo in it")
    return found
