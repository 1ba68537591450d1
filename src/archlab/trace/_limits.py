"""How much memory the trace may hold, checked before each tensor is made.

``archlab shapes`` and ``archlab params`` run the model on a batch of zero images of the
size the user gave. ``--input 1,100000,100000`` would ask the allocator for 40 GB for the input
alone (1.3 TB for the CNN's first feature maps), and die there with a traceback. The
trace checks the input and every layer's analytic output against :func:`memory_budget`
before it allocates them, and refuses with a diagnosis; ``count_params`` reads the
trace's rows, so it runs no forward pass of its own to guard (it used to run torchinfo's,
guarded here by a second forward pass on the meta device).
"""

from __future__ import annotations

import os

# the one budget, of the memory available now, for every check of the trace: the traced
# input and each tensor the trace holds
_SHARE = 0.5
_UNKNOWN = 8 << 30  # where the system does not say what is available


def available_memory() -> int | None:
    """Bytes of memory available to a new allocation now (Linux ``MemAvailable``, else the
    free physical pages), or None where the system does not say."""
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def memory_budget() -> int:
    """Bytes a trace may hold at once: half of what is available now (8 GiB's half where
    the system does not say)."""
    available = available_memory()
    return int((_UNKNOWN if available is None else available) * _SHARE)
