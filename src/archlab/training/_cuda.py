"""What training on CUDA sets up, and nothing the CPU path runs: the determinism mode.

A run's ``deterministic`` setting (``archlab train --deterministic``, the default, or
``--fast``) decides how cuDNN and cuBLAS pick their kernels:

- deterministic: ``torch.backends.cudnn.deterministic = True``, ``benchmark = False``,
  ``torch.use_deterministic_algorithms(True, warn_only=True)`` and the cuBLAS workspace
  variable ``CUBLAS_WORKSPACE_CONFIG=:4096:8``. An operation that has no deterministic CUDA
  kernel (torch raises or warns for those) runs anyway; its name is recorded in the run,
  so the run says exactly what was left to chance.
- fast: ``cudnn.benchmark = True`` (cuDNN times its algorithms and keeps the fastest, which
  may differ from run to run), no deterministic algorithms.

The CPU's kernels are deterministic already, and none of these settings is touched there:
a CPU run is bit-identical whatever the mode.
"""

from __future__ import annotations

import contextlib
import os
import re
import warnings
from collections.abc import Iterator

import torch

CUBLAS_WORKSPACE = ":4096:8"  # the value torch's reproducibility notes give for cuBLAS ≥ 10.2

# torch's wording when an op lacks a deterministic kernel under warn_only=True
_NONDETERMINISTIC = re.compile(r"^(\S+) does not have a deterministic implementation")


def prepare(device: torch.device, deterministic: bool) -> None:
    """Before the first cuBLAS call of a deterministic CUDA run: the workspace variable
    (read when cuBLAS first runs in the process, so it is set early and left set)."""
    if device.type == "cuda" and deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", CUBLAS_WORKSPACE)


@contextlib.contextmanager
def cuda_mode(device: torch.device, deterministic: bool) -> Iterator[list[str]]:
    """Set the CUDA determinism flags of ``deterministic`` while the block runs, and
    restore the caller's afterwards. Yields a list that collects the operations that ran
    without a deterministic kernel (always empty off CUDA, or in the fast mode)."""
    left_to_chance: list[str] = []
    if device.type != "cuda":
        yield left_to_chance
        return
    from torch.backends import cudnn
    from torch.utils import deterministic as det

    prepare(device, deterministic)
    saved = (
        cudnn.deterministic,
        cudnn.benchmark,
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
        det.fill_uninitialized_memory,
    )
    cudnn.deterministic, cudnn.benchmark = deterministic, not deterministic
    torch.use_deterministic_algorithms(deterministic, warn_only=True)
    det.fill_uninitialized_memory = False  # a debugging aid (NaN in torch.empty), not needed
    shown = warnings.showwarning

    def record(message, category, filename, lineno, file=None, line=None):
        found = _NONDETERMINISTIC.match(str(message))
        if found is None:
            return shown(message, category, filename, lineno, file, line)
        if found.group(1) not in left_to_chance:
            left_to_chance.append(found.group(1))

    try:
        # a fresh catch_warnings forgets what was shown before: each op is seen once per run
        with warnings.catch_warnings():
            warnings.showwarning = record
            yield left_to_chance
    finally:
        cudnn.deterministic, cudnn.benchmark = saved[0], saved[1]
        torch.use_deterministic_algorithms(saved[2], warn_only=saved[3])
        det.fill_uninitialized_memory = saved[4]
