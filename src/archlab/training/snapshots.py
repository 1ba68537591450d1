"""A run's model as it forms: snapshots at log-spaced iterations (``archlab train
--snapshots N``, ``archlab.train(..., snapshots=N)``).

Which iterations (:func:`snapshot_iterations`): N points spaced evenly in log(iteration)
from the first step to the last, ``round(total ** (i / (N - 1)))`` for i = 0 … N − 1;
where two round to the same step, the later one moves up to the step after the earlier
one (the first steps change the model most, so each gets its own). For the lecture's
3,000 iterations and N = 10: 1, 2, 6, 14, 35, 85, 208, 506, 1,232, 3,000.

Files, in the run folder (a contract: the explorer's timeline reads them)::

    snapshots/index.json     {"snapshots": [{"iteration": 123, "epoch": 0.205,
                               "test_accuracy": 0.8125, "file": "it-000123.pt"}, ...]}
    snapshots/it-000123.pt   {"format", "iteration", "epoch", "test_accuracy",
                               "state_dict"}: loadable with torch.load(weights_only=True)

ordered by iteration, each file written atomically before the index names it. The test
accuracy is measured when the snapshot is taken, in eval mode, on every 5th test image
(2,000 of the 10,000; 1,800 with a class held out). Measured for the CNN (one thread,
min of 3, a ratio within one process): the full test set costs as much as 32 training
steps of batch 100 each time, so 10 snapshots would add about 10 % to a 3,000-step run;
the 2,000 cost 6 steps each, about 2 %. ``benchmarks/snapshot_cost.py`` measures the whole.

A fresh run moves an earlier run's ``snapshots/`` aside as ``snapshots.prev/``; a resume
keeps the snapshots up to its checkpoint's iteration (a later one, written after the
checkpoint by a run that was killed, is taken again); a finished run given more epochs
keeps its snapshots and adds those of the new schedule past its end.
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
import os
import re
import shutil
from dataclasses import replace
from pathlib import Path

import torch
from torch import nn

from archlab._atomic import atomic_path, refuse_link
from archlab.errors import ArchlabError, os_reason

FOLDER = "snapshots"
INDEX = "index.json"
FORMAT = "archlab-snapshot/1"
# the test images a snapshot's accuracy is measured on: every this-many-th
TEST_STRIDE = 5
_FILE = re.compile(r"it-(\d{6,})\.pt")


def snapshot_iterations(count: int, total: int) -> list[int]:
    """The ``count`` iterations (1-based, the first and ``total`` among them) a run of
    ``total`` steps keeps its snapshots at: log-spaced, unique (see the module).

    Args:
        count: how many, 2 or more, at most ``total``.
        total: the run's iterations.

    Returns:
        The iterations, increasing.

    Example:

        >>> snapshot_iterations(10, 3000)
        [1, 2, 6, 14, 35, 85, 208, 506, 1232, 3000]
        >>> snapshot_iterations(4, 4)
        [1, 2, 3, 4]
    """
    if not 2 <= count <= total:
        from archlab.training.recipes import setting_error

        raise setting_error("snapshots", count, f"keep 2 to {total:,}, the run's iterations", 1)
    points: list[int] = []
    for i in range(count):
        at = round(total ** (i / (count - 1)))
        # a repeat moves up; convexity of total**t keeps the last at total (see the module)
        points.append(max(at, points[-1] + 1) if points else 1)
    points[-1] = total
    return points


def accuracy_subset(
    images: torch.Tensor, labels: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """The test images a snapshot's accuracy is measured on: every 5th."""
    return images[::TEST_STRIDE], labels[::TEST_STRIDE]


def snapshot_file(iteration: int) -> str:
    """``it-000123.pt``."""
    return f"it-{iteration:06d}.pt"


class SnapshotKeeper:
    """Takes a training run's snapshots at their iterations and keeps the index."""

    def __init__(self, folder: Path, count: int, total: int, resumed_at: int | None) -> None:
        """Args:
        folder: the run folder.
        count: snapshots asked for (``config.snapshots``).
        total: the run's iterations.
        resumed_at: the checkpoint's iteration on a resume (the snapshots up to it are
            kept), or None for a fresh run (an earlier run's are moved aside first).
        """
        self.dir = Path(folder) / FOLDER
        self.due = set(snapshot_iterations(count, total))
        self.entries: list[dict] = []
        if resumed_at is not None:
            with contextlib.suppress(ArchlabError):  # a damaged index: taken again
                # a file gone since (deleted by hand) leaves the index: the index written
                # next must not name it, and its iteration cannot be taken again
                self.entries = [
                    e
                    for e in read_index(folder)
                    if e["iteration"] <= resumed_at and (self.dir / e["file"]).is_file()
                ]
        self.due -= {e["iteration"] for e in self.entries}

    def take(self, net: nn.Module, iteration: int, epoch: float, accuracy: float) -> None:
        """Write ``net``'s weights as the snapshot at ``iteration``, then the index."""
        refuse_link(self.dir)
        payload = {
            "format": FORMAT,
            "iteration": iteration,
            "epoch": epoch,
            "test_accuracy": accuracy,
            "state_dict": {k: v.detach().cpu().clone() for k, v in net.state_dict().items()},
        }
        from archlab.training.checkpoint import save_checkpoint

        name = snapshot_file(iteration)
        entries = [e for e in self.entries if e["iteration"] < iteration]
        entries.append(
            {"iteration": iteration, "epoch": epoch, "test_accuracy": accuracy, "file": name}
        )
        try:
            save_checkpoint(payload, self.dir / name)
            _write_index(self.dir, entries)
        except OSError as exc:
            where = exc.filename or self.dir
            raise ArchlabError(f"cannot write {where}: {os_reason(exc)}", 1) from exc
        self.entries = entries
        self.due.discard(iteration)


def _write_index(folder: Path, entries: list[dict]) -> None:
    with atomic_path(folder / INDEX) as partial:
        partial.write_text(json.dumps({"snapshots": entries}, indent=1), encoding="utf-8")


def keep_previous_snapshots(folder: Path) -> bool:
    """Move an earlier run's ``snapshots/`` aside as ``snapshots.prev/`` (replacing an
    older one) before a fresh run writes anything; True when there was one."""
    current, previous = Path(folder) / FOLDER, Path(folder) / f"{FOLDER}.prev"
    refuse_link(current)
    if not current.is_dir():
        return False
    try:
        if previous.is_dir() and not previous.is_symlink():
            shutil.rmtree(previous)
        os.replace(current, previous)
    except OSError as exc:
        raise ArchlabError(f"cannot keep {current} aside: {os_reason(exc)}", 1) from exc
    return True


def keep_failed_snapshots(folder: Path, moved: bool) -> None:
    """A run that learned nothing: its snapshots go to ``snapshots.failed/`` and the
    previous run's (``moved`` aside as ``snapshots.prev/``) come back."""
    folder = Path(folder)
    current, failed = folder / FOLDER, folder / f"{FOLDER}.failed"
    with contextlib.suppress(OSError):
        if current.is_dir():
            if failed.is_dir() and not failed.is_symlink():
                shutil.rmtree(failed)
            os.replace(current, failed)
        if moved and (folder / f"{FOLDER}.prev").is_dir():
            os.replace(folder / f"{FOLDER}.prev", current)


def read_index(folder: str | os.PathLike) -> list[dict]:
    """The snapshots a run folder records, by iteration (``[]``: none kept).

    Args:
        folder: the run folder.

    Returns:
        The index's entries: ``iteration``, ``epoch``, ``test_accuracy``, ``file``. A
        damaged index raises :class:`~archlab.ArchlabError` saying which.
    """
    path = Path(folder) / FOLDER / INDEX
    if not path.is_file():
        return []
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ArchlabError(f"cannot read {path}: {exc}; train the run again", 1) from exc
    entries = data.get("snapshots") if isinstance(data, dict) else None
    problem = None if isinstance(entries, list) else "no list of snapshots"
    last = 0
    for entry in entries if problem is None else []:
        ok = isinstance(entry, dict) and _entry_ok(entry) and entry["iteration"] > last
        if not ok:
            problem = f"a snapshot entry out of order or incomplete: {entry!r}"
            break
        last = entry["iteration"]
    if problem is not None:
        raise ArchlabError(f"{path} is damaged ({problem}); train the run again", 1)
    return entries


def _entry_ok(entry: dict) -> bool:
    it, epoch, acc = entry.get("iteration"), entry.get("epoch"), entry.get("test_accuracy")
    numbers = all(
        isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
        for v in (epoch, acc)
    )
    return (
        isinstance(it, int)
        and not isinstance(it, bool)
        and it >= 1
        and numbers
        and 0 <= acc <= 1
        and entry.get("file") == snapshot_file(it)
    )


def snapshots(run, *, runs: str | os.PathLike = "runs") -> list:
    """A run's snapshots (``archlab train --snapshots N``), each a :class:`~archlab.Run`.

    Args:
        run: a :class:`~archlab.Run`, a spec or a run folder's name.
        runs: the runs folder, for a name. Default: ``"runs"``.

    Returns:
        One :class:`~archlab.Run` per snapshot, by iteration: the run with that
        snapshot's weights, ``iteration`` and recorded ``test_accuracy`` (on every 5th test
        image), named ``<run>@<iteration>``; every analysis takes it. A run without
        snapshots raises :class:`~archlab.ArchlabError` saying how to keep them.

    Example::

        >>> [s.name for s in archlab.snapshots("cnn")][:3]   # doctest: +SKIP
        ['cnn@1', 'cnn@2', 'cnn@6']
    """
    from archlab.training.run import as_run

    run = as_run(run, runs)
    entries = read_index(run.folder)
    if not entries:
        raise ArchlabError(
            f"run {run.name} kept no snapshots; train it with --snapshots N "
            "(archlab.train(..., snapshots=N)) to keep N states as it forms",
            1,
        )
    return [_snapshot_run(run, entry) for entry in entries]


def _snapshot_run(run, entry: dict):
    path = run.folder / FOLDER / entry["file"]
    hint = "delete the snapshots folder or train the run again"
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise ArchlabError(f"{path} is missing (its index names it); {hint}", 1) from None
    except OSError as exc:
        raise ArchlabError(f"cannot read {path}: {os_reason(exc)}", 1) from exc
    except Exception as exc:  # torch raises several types for damaged files
        raise ArchlabError(f"{path} is not a readable snapshot; {hint}", 1) from exc
    state = payload.get("state_dict") if isinstance(payload, dict) else None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT or not state:
        raise ArchlabError(f"{path} is not an archlab snapshot; {hint}", 1)
    model = copy.deepcopy(run.model)
    try:
        model.load_state_dict(state)
    except (RuntimeError, KeyError, TypeError) as exc:
        raise ArchlabError(f"{path} does not fit {run.name}'s model; {hint}", 1) from exc
    iteration = entry["iteration"]
    return replace(
        run,
        name=f"{run.name}@{iteration}",
        model=model.eval(),
        iteration=iteration,
        test_accuracy=entry["test_accuracy"],
        finished=run.finished and iteration == run.iteration,
        interrupted=False,
        files=[path],
        snapshot=iteration,
    )


def pick_snapshots(run, which: str | int | None, *, runs: str | os.PathLike = "runs") -> list:
    """``[run]`` (``which`` None), its snapshot at iteration ``which``, or all of them
    (``"all"``): what ``--snapshot K`` shows.

    Args:
        run: a :class:`~archlab.Run`, a spec or a run folder's name.
        which: None, an iteration the run kept a snapshot at, or ``"all"``.
        runs: the runs folder, for a name. Default: ``"runs"``.

    Returns:
        The runs to show.
    """
    from archlab.training.run import as_run

    if which is None:
        return [as_run(run, runs)]
    found = snapshots(run, runs=runs)
    if which == "all":
        return found
    at = [s for s in found if str(s.iteration) == str(which).strip()]
    if not at:
        kept = ", ".join(f"{s.iteration:,}" for s in found)
        parent = found[0].name.rpartition("@")[0]
        raise ArchlabError(
            f"snapshot={which!r}: {parent} kept snapshots at iterations {kept}; pick one, or all",
            cli_message=f"--snapshot {which}: {parent} kept snapshots at iterations {kept}; "
            "pick one, or all",
        )
    return at
