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
        # matplotlib hides a label starting with "_" (a class such as _Net): a space shows it
        label = f" {r.model}" if r.model.startswith("_") else r.model
        (line,) = ax.plot(r.depth, acc, "o-", markersize=4, label=label)
        point, gain = r.jump
        if gain > 0:
            ax.annotate(
                f"{r.model}: +{100 * gain:.1f} at {r.points[point]}",
                (r.depth[point], acc[point]),
                xytext=(6, -24),
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


def _map_on(
    ax, points, labels, wrong, images, title: str, thumbnails: int, legend: bool = True
) -> None:
    """One 2-D map: points coloured by true class, mistakes as black ×, and on a
    ``thumbnails × thumbnails`` grid the image nearest each occupied cell's centre."""
    import numpy as np
    from matplotlib.offsetbox import AnnotationBbox, OffsetImage

    from archlab.training.data import CLASSES

    xy = points.numpy()
    colours = [f"C{int(c)}" for c in labels]
    ax.scatter(xy[:, 0], xy[:, 1], c=colours, s=3, alpha=0.5, linewidths=0, rasterized=True)
    if wrong is not None and bool(wrong.any()):
        bad = xy[wrong.numpy()]
        ax.scatter(bad[:, 0], bad[:, 1], c="black", marker="x", s=6, linewidths=0.5)
    if images is not None and thumbnails > 0:
        low, high = xy.min(0), xy.max(0)
        span = np.where(high > low, high - low, 1.0)
        cells = np.minimum(((xy - low) / span * thumbnails).astype(int), thumbnails - 1)
        centres = low + (cells + 0.5) * span / thumbnails
        distance = ((xy - centres) ** 2).sum(1)
        chosen: dict[tuple[int, int], int] = {}
        for i in np.argsort(distance):  # the point nearest its cell's centre, per cell
            chosen.setdefault((int(cells[i, 0]), int(cells[i, 1])), int(i))
        for i in chosen.values():
            box = OffsetImage(images[i].numpy(), cmap="gray_r", zoom=0.55)
            frame = {"edgecolor": colours[i], "linewidth": 1.0}
            ax.add_artist(AnnotationBbox(box, xy[i], frameon=True, pad=0.05, bboxprops=frame))
    if legend:  # outside, on the right: the points and thumbnails fill the axes
        handles = [
            ax.scatter([], [], c=f"C{k}", s=12, label=f"{k} {name}")
            for k, name in enumerate(CLASSES)
        ]
        ax.legend(handles=handles, fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.set_title(title, fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])


def plot_embedding(report, ax=None, thumbnails: int = 12) -> Figure:
    """The pixels' map and the layer's map side by side (on a given ``ax``, the layer's
    alone): every test image a point coloured by its true class, the model's mistakes
    marked ×, thumbnails on a ``thumbnails × thumbnails`` grid where points are.

    Example::

        >>> archlab.embedding("cnn").plot()   # doctest: +SKIP
    """
    from archlab.analysis._probe_budget import METHOD_NAMES
    from archlab.viz._figure import subplots

    wrong = report.predictions != report.labels
    k = report.k
    layer_title = (
        f"{report.model}: {report.layer}, {METHOD_NAMES[report.method]}; "
        f"{k}-NN accuracy {100 * report.knn_layer:.1f} % (× = the model's mistakes)"
    )
    if ax is not None:
        _map_on(ax, report.points, report.labels, wrong, report.images, layer_title, thumbnails)
        return ax.figure
    fig, axes = subplots(1, 2, figsize=(13.3, 6.2), layout="constrained")
    pixel_title = (
        f"pixels, {METHOD_NAMES[report.method]}; {k}-NN accuracy {100 * report.knn_pixels:.1f} %"
    )
    _map_on(
        axes[0], report.pixels, report.labels, None, report.images, pixel_title, thumbnails, False
    )
    _map_on(axes[1], report.points, report.labels, wrong, report.images, layer_title, thumbnails)
    fig.suptitle(f"{len(report.labels):,} test images before and after {report.model}", fontsize=11)
    return fig
