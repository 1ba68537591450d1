"""Linear-probe accuracy against depth, and the 2-D map of a layer's features."""

from __future__ import annotations

from archlab.viz._figure import Figure, _new_ax


def plot_probes(report, ax=None) -> Figure:
    """Probe test accuracy against relative depth (0: pixels, 1: the last row), one line
    per model on one axis; each model's largest jump marked and named.

    Example::

        >>> archlab.probes(["dnn", "cnn"]).plot()   # doctest: +SKIP
    """
    fig, ax = _new_ax(ax, (7.5, 4.5))
    for r in report.results:  # the axes' next colour: runs drawn before keep theirs
        acc = [100 * a for a in r.test_accuracy]
        (line,) = ax.plot(r.depth, acc, "o-", markersize=4, label=r.model)
        point, gain = r.jump
        if gain > 0:
            ax.annotate(
                f"{r.model}: +{100 * gain:.1f} at {r.points[point]}",
                (r.depth[point], acc[point]),
                xytext=(6, -14),
                textcoords="offset points",
                fontsize=7,
                color=line.get_color(),
            )
    ax.set_xlabel("relative depth (0 = pixels, 1 = last row)")
    ax.set_ylabel("linear-probe test accuracy (%)")
    ax.set_xlim(-0.03, 1.03)
    ax.grid(alpha=0.3)
    if report.results:
        ax.legend(fontsize=8, loc="lower right")
    ax.set_title(
        f"where the classes become linearly separable ({report.images:,} training images "
        f"per probe, {report.test_images:,} test)",
        fontsize=10,
    )
    return fig
