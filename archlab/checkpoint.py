"""Checkpoints: written atomically, loaded safely (``weights_only=True``).

A checkpoint is a plain dict of tensors, numbers and strings, so ``torch.load`` can read
it without unpickling arbitrary objects::

    format, model, state_dict, optimizer, rng, cuda_rng, epoch, iteration,
    finished, config, normalize, test_accuracy, history, data_md5, versions, seconds
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

from archlab._atomic import atomic_path
from archlab.errors import ArchlabError

FORMAT = "archlab-checkpoint/1"

# measured on a 2-core CPU with the default recipe (benchmarks/README.md)
_TRAIN_TIME = {"dnn": "about 15 s", "cnn": "about 3 min"}


def checkpoint_path(runs: str | os.PathLike, model: str) -> Path:
    """``<runs>/<model>/checkpoint.pt``: where ``archlab train`` writes and others read."""
    return Path(runs) / model / "checkpoint.pt"


def save_checkpoint(payload: dict, path: str | os.PathLike) -> Path:
    """Write ``payload`` to ``path`` atomically: a temporary file, flushed, then renamed.

    A crash or Ctrl-C while writing leaves the previous checkpoint intact.
    """
    with atomic_path(path) as partial, open(partial, "wb") as handle:
        torch.save(payload, handle)
        handle.flush()
        os.fsync(handle.fileno())
    return Path(path)


def load_checkpoint(path: str | os.PathLike, model: str | None = None) -> dict:
    """Read a checkpoint with ``torch.load(..., weights_only=True)``.

    Args:
        path: the ``checkpoint.pt`` file.
        model: the architecture it must hold (e.g. ``"cnn"``). Default: any.

    Returns:
        The checkpoint dict. A missing, unreadable, foreign or other-architecture file
        raises :class:`~archlab.ArchlabError` with one line saying what to do.
    """
    path = Path(path)
    name = model or path.parent.name
    if not path.is_file():
        hint = _TRAIN_TIME.get(name, "a few minutes")
        raise ArchlabError(
            f"no checkpoint at {path}; run `archlab train {name}` first ({hint} on a 2-core CPU)", 1
        )
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
    if model is not None and payload.get("model") != model:
        raise ArchlabError(
            f"{path} holds a {payload.get('model')!r} model, not {model!r}; "
            f"train it with `archlab train {model}`",
            1,
        )
    return payload


def load_trained_model(model: str, runs: str | os.PathLike = "runs") -> tuple[nn.Module, dict]:
    """The trained model from ``<runs>/<model>/checkpoint.pt``, in eval mode, on the CPU.

    Args:
        model: a registered name (``"dnn"`` or ``"cnn"``).
        runs: the folder ``archlab train --out`` wrote. Default: ``"runs"``.

    Returns:
        ``(model, checkpoint)``; ``checkpoint["normalize"]`` is the (mean, std) its inputs
        were normalised with, or None.

    Example::

        >>> model, ckpt = archlab.load_trained_model("cnn")  # doctest: +SKIP
        >>> ckpt["test_accuracy"]                              # doctest: +SKIP
        0.9172
    """
    from archlab.models import create_model, model_description

    model_description(model)  # an unknown name is named as such, not as a missing file
    payload = load_checkpoint(checkpoint_path(runs, model), model)
    net = create_model(model)
    try:
        net.load_state_dict(payload["state_dict"])
    except (RuntimeError, KeyError) as exc:
        raise ArchlabError(
            f"{checkpoint_path(runs, model)} does not fit the {model!r} architecture; "
            f"retrain with `archlab train {model}`",
            1,
        ) from exc
    return net.eval(), payload
