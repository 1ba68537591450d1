"""Training dynamics figures: activation histograms per layer over iterations."""

from __future__ import annotations

import numpy as np

from archlab.viz._figure import _new_ax, figure

# a 16:9 slide: 13.33 × 7.5 inches; at most this many layers are drawn per run (the
# watched layers with parameters, spread evenly, when a model has more)
MAX_ROWS = 10


def _layers(records: list[dict]) -> list[str]:
    """Every run's layers in one order (a layer only one run has goes after the layer
    it follows there), at most :data:`MAX_ROWS` of them, spread evenly."""
    order: list[str] = []
    for rec in records:
        at = 0
        for name in rec["layers"]:
            if name in order:
                at = order.index(name) + 1
            else:
                order.insert(at, name)
                at += 1
    if len(order) <= MAX_ROWS:
        return order
    keep = sorted({round(i * (len(order) - 1) / (MAX_ROWS - 1)) for i in range(MAX_ROWS)})
    return [order[i] for i in keep]


def plot_dynamics(report, ax=None):
    """See :meth:`archlab.analysis.dynamics.Dynamics.plot`. Rows are layers by name,
    aligned across runs (fc1 on one row for every run), with a gap where a run lacks
    the layer."""
    if ax is not None:
        return _plot_std(report, ax)
    layers = _layers(report.records)
    rows, cols = len(layers), len(report.records)
    # inches: two lines of figure title and a line of run names above, the iteration
    # axis below, the layer names left
    top, bottom, row_h = 0.95, 0.55, 0.65
    height = min(7.5, top + bottom + row_h * rows)
    width = min(13.33, 2.5 + 4.2 * cols)
    fig = figure(figsize=(width, height))
    grid = fig.add_gridspec(
        rows,
        cols,
        left=1.3 / width,
        right=0.98,
        top=1 - top / height,
        bottom=bottom / height,
        hspace=0.15,
        wspace=0.12,
    )
    for k, (name, rec) in enumerate(zip(report.runs, report.records, strict=True)):
        its = [p["iteration"] for p in rec["points"]]
        for r, layer in enumerate(layers):
            a = fig.add_subplot(grid[r, k])
            a.set_yticks([])
            if k == 0:
                a.set_ylabel(layer, rotation=0, ha="right", va="center", fontsize=9)
            if r == 0:
                a.set_title(name, fontsize=11)
            if r < rows - 1:
                a.set_xticks([])
            else:
                a.set_xlabel("iteration", fontsize=9)
                a.tick_params(labelsize=8)
            if layer not in rec["layers"]:  # a gap: this run has no such layer
                a.set_xticks([])
                a.text(
                    0.5,
                    0.5,
                    "no such layer",
                    ha="center",
                    va="center",
                    fontsize=8,
                    color="0.5",
                    transform=a.transAxes,
                )
                for spine in a.spines.values():
                    spine.set_visible(False)
                continue
            i = rec["layers"].index(layer)
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
    fig.suptitle(
        f"|activation| histogram per layer over training\n(0 at the bottom, "
        f"{report.records[0]['hist_max']:g} at the top; brighter: more units)",
        fontsize=11,
        y=1 - 0.08 / height,
        va="top",
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
