"""Finding companion photos by EXIF: time, place and camera, with files the tests write."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tttkit.companions import distance_m, find_companions, shot_info
from tttkit.io import InputError


def _photo(
    path: Path,
    when: str | None = "2026:07:01 12:00:00",
    where: tuple[float, float] | None = None,
    camera: tuple[str, str] | None = ("Acme", "One"),
) -> Path:
    exif = Image.Exif()
    if camera:
        exif[0x010F], exif[0x0110] = camera
    if when:
        exif.get_ifd(0x8769)[0x9003] = when
    if where:
        gps = exif.get_ifd(0x8825)
        lat, lon = where
        gps[1], gps[3] = ("N" if lat >= 0 else "S"), ("E" if lon >= 0 else "W")
        gps[2] = (float(int(abs(lat))), float(abs(lat) % 1 * 60), 0.0)
        gps[4] = (float(int(abs(lon))), float(abs(lon) % 1 * 60), 0.0)
    pixels = np.random.default_rng(len(path.name)).integers(0, 255, (24, 32, 3), np.uint8)
    Image.fromarray(pixels).save(path, exif=exif)
    return path


def test_companions_are_chosen_by_time_place_and_camera(tmp_path: Path) -> None:
    folder = tmp_path / "shots"
    folder.mkdir()
    here = (52.5, 13.4)
    target = _photo(folder / "target.jpg", where=here)
    _photo(folder / "a_seconds_later.jpg", "2026:07:01 12:00:40", where=here)
    _photo(folder / "b_no_gps.jpg", "2026:07:01 12:03:00")
    _photo(folder / "c_next_day.jpg", "2026:07:02 12:00:00", where=here)
    _photo(folder / "d_other_town.jpg", "2026:07:01 12:01:00", where=(48.1, 11.6))
    _photo(folder / "e_other_camera.jpg", "2026:07:01 12:00:10", camera=("Other", "X"))
    _photo(folder / "f_no_time.jpg", None)
    (folder / "notes.txt").write_text("not a photo")
    info = shot_info(target)
    assert info.camera == "Acme One" and info.position is not None
    assert abs(info.position[0] - 52.5) < 1e-6 and abs(info.position[1] - 13.4) < 1e-6
    found = find_companions(target, folder)
    taken = [c.path.name for c in found if c.taken]
    assert taken == ["a_seconds_later.jpg", "b_no_gps.jpg"]  # nearest in time first
    why = {c.path.name: c.reason for c in found}
    assert why["a_seconds_later.jpg"] == "taken 40 s apart, 0 m away, same camera"
    assert "more than 10 min" in why["c_next_day.jpg"]
    assert "m away (more than 200 m)" in why["d_other_town.jpg"]
    assert why["e_other_camera.jpg"] == "another camera (Other X)"
    assert why["f_no_time.jpg"] == "no capture time in its EXIF"
    assert "notes.txt" not in why and "target.jpg" not in why
    wider = find_companions(target, folder, minutes=60 * 25, meters=1e6)
    assert {c.path.name for c in wider if c.taken} >= {"c_next_day.jpg", "d_other_town.jpg"}


def test_a_target_without_a_capture_time_says_to_name_references(tmp_path: Path) -> None:
    target = _photo(tmp_path / "t.jpg", None)
    with pytest.raises(InputError, match="--reference"):
        find_companions(target, tmp_path)
    with pytest.raises(InputError, match="not a folder"):
        find_companions(target, tmp_path / "missing")


def test_distances_are_great_circle_metres() -> None:
    assert distance_m((0.0, 0.0), (0.0, 1.0)) == pytest.approx(111_195, rel=1e-3)
    assert distance_m((52.5, 13.4), (52.5, 13.4)) == 0.0
