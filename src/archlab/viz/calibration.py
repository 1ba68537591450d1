"""Figures of calibration: reliability diagrams, runs side by side."""

from __future__ import annotations

import math

from matplotlib.figure import Figure

from archlab.viz._figure import subplots, wrap_title


def _diagram_on(ax, result) -> None:
    before, after = result.reliability_before, result.reliability_after
    width = before.edges[1] - before.edges[0]
    lefts = before.edges[:-1]
    heights = [0.0 if math.isnan(a) else a for a in before.accuracy]
    ax.bar(
        lefts,
        heights,
        width=width,
        align="edge",
        color="C0",
        alpha=0.55,
        edgecolor="C0",
        label=f"before (ECE {100 * result.before.ece:.1f} %)",
    )
    centres = [e + width / 2 for e in lefts]
    shown = [(c, a) for c, a in zip(centres, after.accuracy, strict=True) if not math.isnan(a)]
    ax.plot(
        [c for c, _ in shown],
        [a for _, a in shown],
        "o",
        color="C3",
        ms=4,
        label=f"after T = {result.temperature:.2f} (ECE {100 * result.after.ece:.1f} %)",
    )
    ax.plot([0, 1], [0, 1], ls="--", color="gray", lw=1, label="calibrated")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_aspect("equal")
    ax.set_xlabel("confidence (max softmax)", fontsize=8)
    ax.set_ylabel("accuracy in the bin", fontsize=8)
    ax.tick_params(labelsize=7)
    ax.legend(fontsize=7, loc="upper left")
    ax.set_title(wrap_title(result.model, 3.4, 10), fontsize=10)


def _counts_on(ax, result) -> None:
    before = result.reliability_before
    width = before.edges[1] - before.edges[0]
    ax.bar(
        before.edges[:-1],
        before.counts,
        width=width,
        align="edge",
        color="C0",
        alpha=0.55,
        label="before",
    )
    ax.step(
        before.edges,
        [*result.reliability_after.counts, result.reliability_after.counts[-1]],
        where="post",
        color="C3",
        label="after",
    )
    ax.set_yscale("log")
    ax.set_xlim(0, 1)
    ax.set_xlabel("confidence", fontsize=8)
    ax.set_ylabel("test images in the bin", fontsize=8)
    ax.tick_params(labelsize=7)
    ax.legend(fontsize=7, loc="upper left")


def plot_calibration(report, ax=None) -> Figure:
    """Each run's reliability diagram (accuracy per equal-width confidence bin: before
    temperature scaling as bars, after as dots) above the count of test images in each
    bin (log scale), runs side by side; on a given ``ax``, the first run's diagram.

    Example::

        >>> archlab.calibration(["dnn", "cnn"]).plot()   # doctest: +SKIP
    """
    if ax is not None:
        _diagram_on(ax, report.results[0])
        return ax.figure
    n = len(report.results)
    fig, axes = subplots(
        2, n, figsize=(3.8 * n, 6.4), layout="constrained", height_ratios=[3, 1.3], squeeze=False
    )
    for c, result in enumerate(report.results):
        _diagram_on(axes[0][c], result)
        _counts_on(axes[1][c], result)
    fig.suptitle(
        wrap_title(
            f"reliability on {report.test_images:,} test images, {report.bins} bins; "
            f"T fitted on {report.fit_images}",
            3.8 * n,
            10,
        ),
        fontsize=10,
    )
    return fig
