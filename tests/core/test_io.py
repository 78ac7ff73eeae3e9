from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tttkit.io import InputError, read_image, read_mask, write_image


def test_round_trip_and_conventions(tmp_path: Path) -> None:
    image = torch.rand(3, 10, 12)
    write_image(tmp_path / "a.png", image)
    back = read_image(tmp_path / "a.png")
    assert back.shape == (3, 10, 12) and back.dtype == torch.float32
    assert torch.allclose(back, image, atol=1 / 255)
    mask = torch.zeros(1, 10, 12)
    mask[:, 2:5, 3:9] = 1
    write_image(tmp_path / "m.png", mask)
    assert torch.equal(read_mask(tmp_path / "m.png", size=(10, 12)), mask)


def test_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=f"image {tmp_path / 'nope.png'} does not exist"):
        read_image(tmp_path / "nope.png")
    (tmp_path / "junk.png").write_bytes(b"not an image")
    with pytest.raises(InputError, match="junk.png is not an image"):
        read_image(tmp_path / "junk.png")
    write_image(tmp_path / "m.png", torch.zeros(1, 8, 8))
    with pytest.raises(InputError, match=r"mask .*m.png is 8×8 but the image is 12×10"):
        read_mask(tmp_path / "m.png", size=(10, 12))


def test_writes_are_atomic(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="unsupported image format"):
        write_image(tmp_path / "out.notaformat", torch.zeros(3, 4, 4))
    assert list(tmp_path.iterdir()) == []  # nothing half-written
