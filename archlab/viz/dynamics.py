"""Training dynamics figures: activation histograms per layer over iterations."""

from __future__ import annotations

import numpy as np

from archlab.viz._figure import _new_ax, figure

# a 16:9 slide: 13.33 × 7.5 inches; at most this many layers are drawn per run (the
# watched layers with parameters, spread evenly, when a model has more)
MAX_ROWS = 10


def _rows(rec: dict) -> list[int]:
    n = len(rec["layers"])
    if n <= MAX_ROWS:
        return list(range(n))
    return sorted({round(i * (n - 1) / (MAX_ROWS - 1)) for i in range(MAX_ROWS)})


def plot_dynamics(report, ax=None):
    """See :meth:`archlab.analysis.dynamics.Dynamics.plot`."""
    if ax is not None:
        return _plot_std(report, ax)
    rows = max(len(_rows(r)) for r in report.records)
    cols = len(report.records)
    fig = figure(figsize=(min(13.33, 2.5 + 4.2 * cols), min(7.5, 1.0 + 0.65 * rows)))
    grid = fig.add_gridspec(
        rows, cols, left=0.12, right=0.98, top=0.86, bottom=0.1, hspace=0.15, wspace=0.35
    )
    for k, (name, rec) in enumerate(zip(report.runs, report.records, strict=True)):
        its = [p["iteration"] for p in rec["points"]]
        for r, i in enumerate(_rows(rec)):
            a = fig.add_subplot(grid[r, k])
            hist = np.array(
                [p["hist"][i] or [0.0] * rec["bins"] for p in rec["points"]], dtype=float
            ).T
            a.imshow(
                np.log1p(hist * 1000),
                aspect="auto",
                origin="lower",
                cmap="viridis",
                extent=(its[0], its[-1], 0, rec["hist_max"]),
            )
            a.set_yticks([])
            a.set_ylabel(rec["layers"][i], rotation=0, ha="right", va="center", fontsize=9)
            if r < len(_rows(rec)) - 1:
                a.set_xticks([])
            else:
                a.set_xlabel("iteration", fontsize=9)
                a.tick_params(labelsize=8)
            if r == 0:
                a.set_title(name, fontsize=11)
    fig.suptitle(
        f"|activation| histogram per layer over training\n(0 at the bottom, "
        f"{report.records[0]['hist_max']:g} at the top; brighter: more units)",
        fontsize=11,
    )
    return fig


def _plot_std(report, ax):
    fig, ax = _new_ax(ax, (6, 4))
    for name, rec in zip(report.runs, report.records, strict=True):
        its = [p["iteration"] for p in rec["points"]]
        for i, layer in enumerate(rec["layers"]):
            ys = [p["std"][i] for p in rec["points"]]
            if any(y is None for y in ys):
                continue
            ax.plot(its, ys, label=f"{name}: {layer}")  # by run: other runs may share ax
    ax.set_yscale("log")
    ax.set_xlabel("iteration")
    ax.set_ylabel("activation std")
    ax.legend(fontsize=7, ncol=2)
    return fig
