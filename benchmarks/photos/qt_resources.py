"""Read the files inside a Qt binary resource file (``.rcc``), as GCompris ships its images.

The format (Qt's ``rcc.cpp``): a ``qres`` header with the version and the offsets of the tree,
the data and the names; tree nodes of 14 bytes (version 1) or 22 (version 2+: a modification
time) — name offset, flags, then a directory's child count and first child, or a file's
locale and data offset; names as UTF-16BE with their length; data as a 4-byte length, zlib
(flag 1, after a 4-byte uncompressed size) or zstd (flag 4) compressed or stored as is.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator

COMPRESSED, DIRECTORY, COMPRESSED_ZSTD = 1, 2, 4


def resource_files(blob: bytes) -> Iterator[tuple[str, bytes]]:
    """``(path, content)`` of every file in the resource ``blob``; paths start with ``/``."""
    if blob[:4] != b"qres":
        raise ValueError("not a Qt resource file (no 'qres' header)")
    version, tree, data, names = struct.unpack(">IIII", blob[4:20])
    node_size = 22 if version >= 2 else 14

    def name_at(offset: int) -> str:
        (length,) = struct.unpack(">H", blob[names + offset : names + offset + 2])
        start = names + offset + 6  # after the length and a 4-byte hash
        return blob[start : start + 2 * length].decode("utf-16-be")

    def walk(index: int, prefix: str) -> Iterator[tuple[str, bytes]]:
        base = tree + index * node_size
        name_offset, flags = struct.unpack(">IH", blob[base : base + 6])
        path = f"{prefix}/{name_at(name_offset)}" if index else ""
        if flags & DIRECTORY:
            count, first = struct.unpack(">II", blob[base + 6 : base + 14])
            for child in range(first, first + count):
                yield from walk(child, path)
            return
        (offset,) = struct.unpack(">I", blob[base + 10 : base + 14])
        (size,) = struct.unpack(">I", blob[data + offset : data + offset + 4])
        content = blob[data + offset + 4 : data + offset + 4 + size]
        if flags & COMPRESSED:
            content = zlib.decompress(content[4:])
        elif flags & COMPRESSED_ZSTD:
            import zstandard  # only for resources built with zstd

            content = zstandard.ZstdDecompressor().decompress(content)
        yield path, content

    yield from walk(0, "")
