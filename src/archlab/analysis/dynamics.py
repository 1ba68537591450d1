"""The training dynamics of trained runs, read from their histories (``train --watch``)."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from archlab import _table
from archlab._report import Report
from archlab.errors import ArchlabError
from archlab.training.dynamics import STATS

if TYPE_CHECKING:
    from archlab.training.run import Run

__all__ = ["Dynamics", "check_record", "dynamics"]


@dataclass
class Dynamics(Report):
    """What happened inside each layer of one or more runs while they trained.

    ``records[k]`` is run ``k``'s ``history["dynamics"]`` (see
    :mod:`archlab.training.dynamics`): ``layers``, ``types``, ``every``, and ``points``,
    one per record, each with ``iteration`` and per layer ``mean``, ``std``, ``dead``,
    ``grad_norm``, ``update_ratio``, ``hist``. ``str()`` is the table of the last values;
    :meth:`plot` the activation histograms over training.

    Example::

        >>> report = archlab.dynamics(["cnn", "cnn+layer1.1=Identity"])  # doctest: +SKIP
        >>> report.last(0)["layer1.2"]["dead"]  # doctest: +SKIP
    """

    runs: list[str]
    records: list[dict] = field(default_factory=list)
    _shows_figure = True

    def last(self, k: int = 0) -> dict[str, dict[str, float | None]]:
        """Run ``k``'s last record: ``{layer: {statistic: value}}``."""
        rec = self.records[k]
        point = rec["points"][-1]
        stats = ("mean", "std", "dead", "grad_norm", "update_ratio")
        return {name: {s: point[s][i] for s in stats} for i, name in enumerate(rec["layers"])}

    def _parts(self) -> list[_table.Table | str]:
        parts: list[_table.Table | str] = []
        for k, name in enumerate(self.runs):
            rec = self.records[k]
            it = rec["points"][-1]["iteration"]
            rows = [
                [
                    layer,
                    kind,
                    _fmt(v["mean"], "+.3f"),
                    _fmt(v["std"], ".3f"),
                    _fmt(v["dead"] and 100 * v["dead"], ".1f"),
                    _fmt(v["grad_norm"], ".3g"),
                    _fmt(v["update_ratio"], ".2e"),
                ]
                for (layer, v), kind in zip(self.last(k).items(), rec["types"], strict=True)
            ]
            parts.append(
                _table.Table(
                    ("layer", "type", "mean", "std", "dead %", "‖grad‖", "‖Δw‖/‖w‖"),
                    rows,
                    f"{name}: at iteration {it:,} (recorded every {rec['every']})",
                )
            )
        parts.append(
            "dead %: output units never positive over the batch (after a ReLU: dead units); "
            "‖Δw‖/‖w‖: the optimiser's step relative to the weights (≈1e-3 is healthy)"
        )
        return parts

    def plot(self, ax=None):
        """The histogram of ``|activation|`` per layer over training (fast.ai's
        "colourful dimension"), one column per run. Given ``ax``: the activations' std
        per layer over training, every run on that one panel."""
        from archlab.viz.dynamics import plot_dynamics

        return plot_dynamics(self, ax)


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def check_record(rec: object, name: str) -> dict:
    """A run's ``history["dynamics"]`` as :func:`~archlab.training.dynamics.watch` writes
    it, or one :class:`ArchlabError` saying what is damaged (a checkpoint is data from
    disk: every field is checked before the table or the plot reads it).

    Returns:
        The record, unchanged.
    """

    def damaged(what: str) -> ArchlabError:
        return ArchlabError(
            f"{name}'s training dynamics record is damaged ({what}); train it again with "
            "watch on (archlab.train(..., watch=50))",
            1,
            f"{name}'s training dynamics record is damaged ({what}); train it again with "
            "`archlab train ... --watch`",
        )

    if not isinstance(rec, dict):
        raise damaged("not a mapping")
    layers, types = rec.get("layers"), rec.get("types")
    if not isinstance(layers, list) or not all(isinstance(x, str) for x in layers):
        raise damaged("layers")
    if not isinstance(types, list) or len(types) != len(layers):
        raise damaged("types")
    for key in ("every", "bins"):
        if not (isinstance(rec.get(key), int) and not isinstance(rec[key], bool) and rec[key] > 0):
            raise damaged(key)
    if not (_is_number(rec.get("hist_max")) and rec["hist_max"] > 0):
        raise damaged("hist_max")
    points = rec.get("points")
    if not isinstance(points, list) or not points:
        raise damaged("points")
    for point in points:
        if not isinstance(point, dict) or not isinstance(point.get("iteration"), int):
            raise damaged("a point's iteration")
        for stat in STATS:
            values = point.get(stat)
            if not isinstance(values, list) or len(values) != len(layers):
                raise damaged(stat)
            if not all(v is None or _is_number(v) for v in values):
                raise damaged(stat)
        hist = point.get("hist")
        if not isinstance(hist, list) or len(hist) != len(layers):
            raise damaged("hist")
        for h in hist:
            if h is not None and not (
                isinstance(h, list) and len(h) == rec["bins"] and all(map(_is_number, h))
            ):
                raise damaged("hist")
    return rec


def _record_of(run) -> dict | None:
    """The run's dynamics record, checked; None when it has none."""
    history = run.history if isinstance(run.history, dict) else {}
    rec = history.get("dynamics")
    if not rec or (isinstance(rec, dict) and not rec.get("points")):
        return None
    return check_record(rec, run.name)


def _fmt(value, spec: str) -> str:
    return "—" if value is None else format(value, spec)


def dynamics(
    models: Sequence | str | Run = ("dnn", "cnn"),
    *,
    runs: str | os.PathLike = "runs",
) -> Dynamics:
    """The training dynamics recorded by ``archlab train --watch`` (``archlab.train(...,
    watch=50)``) of one or more runs.

    Args:
        models: a :class:`~archlab.Run`, a spec, a group or a run folder's name, or a list
            of them. Default: the lecture's two.
        runs: the runs folder, for the names. Default: ``"runs"``.

    Returns:
        A :class:`Dynamics` report: the last values as a table, the histograms over
        training as its plot.

    Example::

        >>> print(archlab.dynamics(["cnn", "cnn+layer1.1=Identity"]))  # doctest: +SKIP
    """
    from archlab.training.run import as_runs

    loaded = as_runs(models, runs)
    records = []
    for run in loaded:
        rec = _record_of(run)
        if not rec or not rec.get("points"):
            from archlab.training.runs import RunRef, train_command

            # the model as the user named it (a run of their own code: its file), and the
            # run's folder when its name is not the model's own
            command = train_command(RunRef(run.folder.parent, run.name, run.spec))
            held = getattr(run, "held_out", None)
            held = f" --hold-out {held}" if held is not None else ""
            command = f"{command}{held} --watch 50" if command else None
            raise ArchlabError(
                f"{run.name} has no training dynamics: train it with "
                + (f"`{command}`" if command else "--watch")
                + " (archlab.train(..., watch=50))"
            )
        records.append(rec)
    return Dynamics([run.name for run in loaded], records)
