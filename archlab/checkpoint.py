"""Checkpoints: written atomically, loaded safely (``weights_only=True``).

A checkpoint is a plain dict of tensors, numbers and strings, so ``torch.load`` can read
it without unpickling arbitrary objects::

    format, model (the run's name), spec, overrides, state_dict, optimizer, rng, cuda_rng,
    epoch, iteration,
    finished, config, normalize, test_accuracy, history, data_md5, versions, seconds
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from archlab._atomic import atomic_path
from archlab.errors import ArchlabError

FORMAT = "archlab-checkpoint/1"


def save_checkpoint(payload: dict, path: str | os.PathLike) -> Path:
    """Write ``payload`` to ``path`` atomically: a temporary file, flushed, then renamed.

    A crash or Ctrl-C while writing leaves the previous checkpoint intact.
    """
    with atomic_path(path) as partial, open(partial, "wb") as handle:
        torch.save(payload, handle)
        handle.flush()
        os.fsync(handle.fileno())
    return Path(path)


def load_checkpoint(path: str | os.PathLike, hint: str = "run `archlab train` first") -> dict:
    """Read a checkpoint with ``torch.load(..., weights_only=True)``.

    Args:
        path: the ``checkpoint.pt`` file.
        hint: what to do when there is none. Default: run `archlab train` first.

    Returns:
        The checkpoint dict. A missing, unreadable or foreign file
        raises :class:`~archlab.ArchlabError` with one line saying what to do.
    """
    path = Path(path)
    if not path.is_file():
        raise ArchlabError(f"no checkpoint at {path}; {hint}", 1)
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for foreign or damaged files
        raise ArchlabError(
            f"{path} is not a readable checkpoint (torch.load with weights_only=True: "
            f"{type(exc).__name__}); delete it or train again",
            1,
        ) from exc
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ArchlabError(f"{path} is not an archlab checkpoint", 1)
    return payload
