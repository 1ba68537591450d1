"""Wall-clock timing of whole commands, shared by the start-up benchmarks."""

from __future__ import annotations

import subprocess
import time


def time_command(cmd: list[str]) -> float:
    """Seconds for one run of ``cmd`` (its output discarded; a failure raises)."""
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start
