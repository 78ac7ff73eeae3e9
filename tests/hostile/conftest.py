"""Odd and hostile files for the hostile-input suite, made once per session."""

from __future__ import annotations

import io
import os
import pickle
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from tests.helpers import photo_and_mask, tiny_backbone
from tttkit.checkpoint import save_backbone
from tttkit.io import write_image


def _png_header_only(path: Path, width: int, height: int) -> None:
    """A PNG whose header claims ``width``×``height`` with almost no data: a decompression bomb."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    data = zlib.compress(b"\0" * 1024)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b"")
    )


class _RunsCode:
    """Unpickling this would write a file: a hostile ``.pt`` checkpoint."""

    def __init__(self, target: str) -> None:
        self.target = target

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (Path.write_text, (Path(self.target), "pwned"))


@pytest.fixture(scope="session")
def zoo(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every file the hostile cases point at: good inputs and odd ones."""
    root = tmp_path_factory.mktemp("zoo")
    image, mask = photo_and_mask(64)
    paths: dict[str, Path] = {}

    def add(name: str) -> Path:
        key = name.split(".")[0]
        assert key not in paths, f"two zoo files named {key}"
        paths[key] = root / name
        return root / name

    write_image(add("photo.png"), image)
    write_image(add("mask.png"), mask)
    save_backbone(tiny_backbone(), "attention-net-compact", add("weights.safetensors"))
    save_backbone(tiny_backbone(), "attention-net-small", add("other_backbone.safetensors"))
    os.mkfifo(add("fifo.png"))
    add("empty.png").write_bytes(b"")
    add("text.png").write_text("this is not an image\n")
    add("folder.png").mkdir()
    jpeg = cv2.imencode(".jpg", (image.permute(1, 2, 0).numpy() * 255).astype(np.uint8))[1]
    add("truncated.jpg").write_bytes(jpeg.tobytes()[: len(jpeg) // 2])
    png = cv2.imencode(".png", (image.permute(1, 2, 0).numpy() * 255).astype(np.uint8))[1]
    add("truncated_png.png").write_bytes(png.tobytes()[: len(png) // 2])
    nan = image.permute(1, 2, 0).numpy().copy()
    nan[10:20, 10:20] = np.nan
    cv2.imwrite(str(add("nan.tiff")), nan[:, :, ::-1].astype(np.float32))
    write_image(add("tiny8.png"), torch.rand(3, 8, 8))
    tiny_mask = torch.zeros(1, 8, 8)
    tiny_mask[:, 3:5, 3:5] = 1
    write_image(add("tiny8_mask.png"), tiny_mask)
    write_image(add("strip.png"), torch.rand(3, 16, 4000))
    strip_mask = torch.zeros(1, 16, 4000)
    strip_mask[:, 4:10, 100:120] = 1
    write_image(add("strip_mask.png"), strip_mask)
    _png_header_only(add("bomb.png"), 100_000, 100_000)
    holes = (mask[0].numpy() > 0.5).astype(np.uint8)
    cv2.imwrite(str(add("mask01.png")), holes)  # 0/1 in an 8-bit file
    cv2.imwrite(str(add("mask16.png")), holes.astype(np.uint16) * 255)  # 0/255 in 16 bits
    write_image(add("mask_white.png"), torch.ones(1, 64, 64))
    write_image(add("mask_small.png"), mask[:, :32, :32])
    add("weights_dir").mkdir()
    add("corrupt.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{broken}")
    add("junk.pt").write_text("not a checkpoint")
    add("evil.pt").write_bytes(pickle.dumps(_RunsCode(str(root / "pwned.txt"))))
    buffer = io.BytesIO()
    torch.save({"weights": torch.zeros(2)}, buffer)
    add("foreign.pt").write_bytes(buffer.getvalue())
    net = tiny_backbone()  # the generator module's own state dict: no "generator." prefix
    torch.save(net.generator.state_dict(), add("generator_only.pt"))
    # a wrapper's state dict that holds the whole backbone as `generator`: one prefix too many
    torch.save({f"generator.{k}": v for k, v in net.state_dict().items()}, add("wrapped.pt"))
    add("a_file").write_text("a file, not a folder")
    add("corrupt_run").mkdir()
    (root / "corrupt_run" / "run.json").write_text('{"version": 1, "strat')
    add("images").mkdir()
    write_image(root / "images" / "photo.png", image)
    add("masks").mkdir()
    write_image(root / "masks" / "photo.png", mask)
    add("no_images").mkdir()
    return paths
