"""The glibc allocator setting the command line applies at start (no torch: it runs before any
command, also for ``--help``); :mod:`tttkit.engine.execution` re-exports it."""

from __future__ import annotations

import ctypes
import ctypes.util
import platform

# glibc's mallopt parameters (malloc.h).
_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_MAX, _M_ARENA_MAX = -1, -2, -4, -8


def tune_allocator() -> bool:
    """Keep freed memory in the process instead of returning it to the OS after every step.

    A training step allocates and frees gigabytes of activations; glibc's defaults hand large
    blocks back with ``munmap`` and fault them in again on the next step (millions of page faults
    per step). One arena, no mmap for large blocks and no trimming make the memory reused.
    Linux/glibc only; returns whether the settings were applied. Peak memory is unchanged: the
    process keeps what it has already needed once.
    """
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    path = ctypes.util.find_library("c")
    if path is None:
        return False
    libc = ctypes.CDLL(path)
    settings = (
        (_M_ARENA_MAX, 1),
        (_M_MMAP_MAX, 0),
        (_M_TRIM_THRESHOLD, 1 << 36),
        (_M_TOP_PAD, 1 << 30),
    )
    return all(libc.mallopt(option, value) == 1 for option, value in settings)
