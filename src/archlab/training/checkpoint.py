"""Checkpoints: written atomically, loaded safely (``weights_only=True``) and validated.

A checkpoint is a plain dict of tensors, numbers and strings, so ``torch.load`` can read
it without unpickling arbitrary objects::

    format, model (the run's name), spec, overrides, state_dict, optimizer, rng, cuda_rng,
    epoch, iteration,
    finished, config, normalize, test_accuracy, history, data_md5, versions, seconds

Every checkpoint is checked where it is loaded (:func:`validate_checkpoint`): its keys,
their types and finite weights. Whether the weights fit the model is checked where the
state dict is loaded into it.
"""

from __future__ import annotations

import io
import math
import os
import warnings
from pathlib import Path

import torch

from archlab._atomic import atomic_path
from archlab.errors import ArchlabError, os_reason

FORMAT = "archlab-checkpoint/1"


def save_checkpoint(payload: dict, path: str | os.PathLike) -> Path:
    """Write ``payload`` to ``path`` atomically: a temporary file, flushed, then renamed.

    A crash or Ctrl-C while writing leaves the previous checkpoint intact. The checkpoint
    is serialised in memory first, so a full disk raises ``OSError(ENOSPC)`` naming the
    file (torch's own writer reports it as ``unexpected pos ...``).
    """
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    with atomic_path(path) as partial, open(partial, "wb") as handle:
        handle.write(buffer.getbuffer())
        handle.flush()
        os.fsync(handle.fileno())
    return Path(path)


def load_checkpoint(path: str | os.PathLike, hint: str = "run `archlab train` first") -> dict:
    """Read a checkpoint with ``torch.load(..., weights_only=True)`` and validate it.

    Args:
        path: the ``checkpoint.pt`` file.
        hint: what to do when there is none. Default: run `archlab train` first.

    Returns:
        The checkpoint dict. A missing, unreadable, damaged, foreign or invalid file
        raises :class:`~archlab.ArchlabError` with one line saying what to do; a file that
        cannot be read (permissions) is never called damaged.
    """
    path = Path(path)
    try:
        handle = open(path, "rb")  # noqa: SIM115 (closed below; errors told apart first)
    except (FileNotFoundError, NotADirectoryError):
        previous = path.with_name("checkpoint.prev.pt")
        if path.name == "checkpoint.pt" and previous.is_file():
            hint = (
                f"{previous} (an earlier run) is there: rename it to {path.name} to use it, "
                f"or {hint}"
            )
        raise ArchlabError(f"no checkpoint at {path}; {hint}", 1) from None
    except IsADirectoryError:
        raise ArchlabError(f"{path} is a folder, not a checkpoint; {hint}", 1) from None
    except OSError as exc:
        raise _unreadable(path, exc) from exc
    with handle, warnings.catch_warnings():
        # a foreign pickle's protocol warning would print before the one-line refusal
        warnings.filterwarnings("ignore", message="Detected pickle protocol", category=UserWarning)
        try:
            payload = torch.load(handle, map_location="cpu", weights_only=True)
        except OSError as exc:  # the file, not its contents: an I/O error
            raise _unreadable(path, exc) from exc
        except Exception as exc:  # torch raises several types for foreign or damaged files
            raise ArchlabError(
                f"{path} is not a readable checkpoint (torch.load with weights_only=True: "
                f"{type(exc).__name__}); it is damaged or not a checkpoint: delete it or "
                "train again",
                1,
            ) from exc
    validate_checkpoint(payload, path)
    return payload


def _unreadable(path: Path, exc: OSError) -> ArchlabError:
    """A checkpoint that cannot be read is not called damaged: deleting it may lose a result."""
    return ArchlabError(
        f"cannot read {path}: {os_reason(exc)} (the file is left as it is; check its permissions)",
        1,
    )


# key: (the types it may have, what it must be) for keys that may be present
_TYPES: dict[str, tuple[tuple[type, ...], str]] = {
    "spec": ((str,), "a model spec"),
    "overrides": ((list, tuple), "a list of what-ifs"),
    "optimizer": ((dict,), "an optimizer state"),
    "config": ((dict,), "the training settings"),
    "history": ((dict,), "the training history"),
    "data_md5": ((dict,), "the data's checksums"),
    "finished": ((bool,), "True or False"),
    "iteration": ((int,), "an iteration count"),
    "epoch": ((int,), "an epoch count"),
    "params": ((int,), "a parameter count"),
    "seconds": ((int, float), "a number of seconds"),
    "eval_seconds": ((int, float), "a number of seconds"),
    "window": ((list, tuple), "a loss sum and count"),
    "interval": ((list, tuple), "a loss sum and count"),
}


def validate_checkpoint(payload: object, path: str | os.PathLike = "the checkpoint") -> dict:
    """Check a loaded checkpoint's contents: its format, keys, their types, finite weights
    and a usable normalisation. Raises :class:`~archlab.ArchlabError` (exit 1) naming
    what is wrong; returns ``payload``.

    Whether the weights fit the architecture is checked where they are loaded into it
    (:func:`archlab.training.run.load_run`, ``--resume``).
    """

    def refuse(problem: str) -> ArchlabError:
        return ArchlabError(f"{path} {problem}; delete it or train again", 1)

    if isinstance(payload, dict) and _newer(payload.get("format")):
        raise ArchlabError(
            f"{path} was written by a newer archlab (checkpoint format {payload['format']!r}, "
            f"this one reads {FORMAT!r}): upgrade archlab to use it",
            1,
        )
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ArchlabError(f"{path} is not an archlab checkpoint", 1)
    if not isinstance(payload.get("model"), str) or not payload["model"]:
        raise refuse("does not say which model it holds")
    for key, (types, meaning) in _TYPES.items():
        value = payload.get(key)
        if value is not None and (
            not isinstance(value, types) or (isinstance(value, bool) and bool not in types)
        ):
            raise refuse(f"is invalid: its {key!r} is a {type(value).__name__}, not {meaning}")
    state = payload.get("state_dict")
    if state is None or state == {}:
        raise refuse("holds no weights (no state_dict)")
    if not isinstance(state, dict):
        raise refuse(f"is invalid: its 'state_dict' is a {type(state).__name__}, not weights")
    for name, tensor in state.items():
        if not isinstance(name, str) or not isinstance(tensor, torch.Tensor):
            raise refuse(f"is invalid: its state_dict entry {name!r} is not a tensor")
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise refuse(
                f"holds non-finite weights (NaN or inf in {name}): a diverged run's result"
            )
    try:
        check_normalize(payload.get("normalize"))
    except ValueError as exc:
        raise refuse(f"has {exc}") from None
    accuracy = payload.get("test_accuracy")
    if accuracy is not None and not _fraction(accuracy):
        raise refuse(f"is invalid: test accuracy {accuracy!r} is not a fraction from 0 to 1")
    problem = _numbers_problem(payload)
    if problem is None and payload.get("history") is not None:
        problem = history_problem(payload["history"])
    if problem is not None:
        raise refuse(f"is invalid: {problem}")
    return payload


def _number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _fraction(value: object) -> bool:
    return _number(value) and 0 <= value <= 1


def _numbers_problem(payload: dict) -> str | None:
    """What is wrong with the loop's own numbers (counts, seconds, loss sums), or None."""
    for key in ("params", "iteration", "epoch", "seconds", "eval_seconds"):
        value = payload.get(key)
        if value is not None and not (_number(value) and value >= 0):
            return f"its {key!r} {value!r} is not a count or a duration"
    for key in ("window", "interval"):
        value = payload.get(key)
        if value is not None and not (len(value) == 2 and all(map(_number, value))):
            return f"its {key!r} {value!r} is not a loss sum and a count"
    return None


# an eval point's numbers: (key, may it be None, must it be a fraction)
_EVAL = (
    ("iteration", False, False),
    ("train_loss", True, False),
    ("test_loss", True, False),
    ("test_accuracy", False, True),
)


def history_problem(history: dict) -> str | None:
    """What is wrong with a checkpoint's training history, or None: its ``train`` and
    ``eval`` points and its ``dynamics`` record are read by the loop, the curves and
    :func:`archlab.dynamics`, so a damaged one is refused before any training starts."""
    for key in ("train", "eval"):
        points = history.get(key, [])
        if not isinstance(points, list) or not all(isinstance(p, dict) for p in points):
            return f"its history's {key!r} is not a list of points"
    for point in history.get("train", []):
        if not (_number(point.get("iteration")) and _number(point.get("loss"))):
            return f"its history has a training point without numbers: {point!r}"
    for point in history.get("eval", []):
        for key, optional, fraction in _EVAL:
            value = point.get(key)
            ok = (optional and value is None) or (_fraction(value) if fraction else _number(value))
            if not ok:
                return f"its history's evaluation has {key} {value!r}"
    dynamics = history.get("dynamics")
    if dynamics is not None:
        return _dynamics_problem(dynamics)
    return None


def _dynamics_problem(record: object) -> str | None:
    """What is wrong with a ``--watch`` record (:mod:`archlab.training.dynamics`), or None."""
    if not isinstance(record, dict):
        return "its dynamics record is not a dict"
    every, layers, points = record.get("every"), record.get("layers"), record.get("points")
    if isinstance(every, bool) or not isinstance(every, int) or every < 1:
        return f"its dynamics record's 'every' {every!r} is not a step count"
    if not isinstance(layers, list) or not all(isinstance(n, str) for n in layers):
        return "its dynamics record's 'layers' is not a list of layer names"
    if not isinstance(points, list):
        return "its dynamics record's 'points' is not a list"
    for point in points:
        if not isinstance(point, dict) or not _number(point.get("iteration")):
            return "its dynamics record has a point without an iteration"
        for key, values in point.items():
            if key != "iteration" and not (isinstance(values, list) and len(values) == len(layers)):
                return f"its dynamics record's {key!r} does not have one value per layer"
    return None


def _newer(format: object) -> bool:
    """True for ``archlab-checkpoint/N`` with N above this archlab's."""
    family, _, version = FORMAT.partition("/")
    if not isinstance(format, str) or not format.startswith(family + "/"):
        return False
    number = format[len(family) + 1 :]
    return number.isdigit() and int(number) > int(version)


def check_normalize(norm: object) -> tuple[float, float] | None:
    """``norm`` as a ``(mean, std)`` pair of finite floats with std > 0, or None; raises
    ``ValueError`` saying what is wrong with anything else."""
    if norm is None:
        return None
    ok = (
        isinstance(norm, (list, tuple))
        and len(norm) == 2
        and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in norm)
        and all(math.isfinite(v) for v in norm)
        and norm[1] > 0
    )
    if not ok:
        raise ValueError(
            f"an unusable input normalisation {norm!r}: it must be (mean, std) with std > 0"
        )
    return float(norm[0]), float(norm[1])
