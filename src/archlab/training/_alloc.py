"""Keep freed tensor memory in the process instead of returning it to the OS each step.

glibc serves blocks over 128 KB with mmap and returns them with munmap, so every
training step maps, zero-fills (page faults) and unmaps its ~10 MB activation buffers
again. Raising the mmap and trim thresholds lets malloc reuse them. Measured here on the
CNN (2 CPU cores, batch 100): 50 → 40 ms per training step; a quarter of the process's
system time. A no-op off glibc (macOS, Windows, musl).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_done = False


def keep_freed_memory() -> bool:
    """Apply the thresholds once per process; returns True where they took effect."""
    global _done
    if _done:
        return True
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    # 32 MB is glibc's upper limit for the mmap threshold on 64-bit systems
    _done = bool(mallopt(_M_MMAP_THRESHOLD, 32 << 20)) and bool(
        mallopt(_M_TRIM_THRESHOLD, 256 << 20)
    )
    return _done
