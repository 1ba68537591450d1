"""Figures of test-set results: confusion matrices, mistakes, and models side by side."""

from __future__ import annotations

from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from archlab.viz._figure import add_axes_inches, colorbar_beside, figure, subplots
from archlab.viz.curves import _lecture_accuracy
from archlab.viz.explanation import plot_image

# a confusion matrix's square in its cell, inches from the lower left: room for the class
# names left and below (rotated), the title above
_MATRIX = (1.3, 1.3, 5.2, 5.2)
_MATRIX_CELL = (6.9, 7.0)


def plot_confusion(report, ax=None, colorbar: bool = True) -> Figure:
    """Confusion matrix: colour = share of the true class (row-normalised), text = counts.

    Example::

        >>> from archlab.analysis.evaluation import classification_report
        >>> report = classification_report("toy", torch.eye(10), torch.arange(10))
        >>> report.plot().axes[0].get_title()
        'toy: accuracy 100.00%'
    """
    if ax is None:
        # placed in inches: class names left and below, the colour bar right; a
        # constrained layout would draw the figure once more only to measure its labels
        ax = add_axes_inches(figure(figsize=(7.8, 7.0)), *_MATRIX)
        beside = True
    else:
        beside = False
    fig = ax.figure
    counts = report.matrix.cpu()
    shares = counts / counts.sum(1, keepdim=True).clamp(min=1)
    shown = ax.imshow(shares.numpy(), cmap="Blues", vmin=0, vmax=1)
    n = len(counts)
    for i in range(n):
        for j in range(n):
            value = int(counts[i, j])
            if value:
                dark = float(shares[i, j]) > 0.55
                ax.text(
                    j,
                    i,
                    str(value),
                    ha="center",
                    va="center",
                    fontsize=8,
                    color="white" if dark else "black",
                )
    ax.set_xticks(range(n), report.classes, rotation=45, ha="right")
    ax.set_yticks(range(n), report.classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(f"{report.model}: accuracy {100 * report.accuracy:.2f}%", y=1.0)
    label = "share of the true class"
    if colorbar and beside:
        colorbar_beside(ax, width=0.2, pad=0.15).set_label(label)
    elif colorbar:
        fig.colorbar(shown, ax=ax, fraction=0.046, pad=0.02, label=label)
    return fig


def plot_mistakes(images, labels, probs, indices, classes, title: str = "") -> Figure:
    """A gallery of test images with their true class and the wrong, confident prediction.

    Example::

        >>> archlab.evaluate("cnn").plot_mistakes(16)  # doctest: +SKIP
    """
    n = len(indices)
    cols = min(n, 8) or 1
    rows = max(1, -(-n // cols))
    fig, axes = subplots(
        rows, cols, figsize=(1.9 * cols, 2.3 * rows), layout="constrained", squeeze=False
    )
    for ax in axes.flat:
        ax.set_axis_off()
    for ax, i in zip(axes.flat, indices, strict=False):
        p = probs[i]
        pred = int(p.argmax())
        plot_image(images[i], ax=ax)
        ax.set_title(
            f"#{i}\ntrue {classes[int(labels[i])]}\nsaid {classes[pred]} ({float(p[pred]):.2f})",
            fontsize=8,
        )
    fig.suptitle(title or "the most confident mistakes")
    return fig


def plot_comparison(comparison) -> Figure:
    """Every model's confusion matrix and the per-class accuracy of each, in one figure
    (a whole figure: one panel per model, in rows of up to three, placed in inches).

    Example::

        >>> archlab.compare(["dnn", "cnn"]).plot()  # doctest: +SKIP
    """
    models = comparison.models
    cols = min(3, len(models))
    rows = -(-len(models) // cols)
    cell_w, cell_h = _MATRIX_CELL
    bars_h, title_h = 4.4, 0.7  # the per-class bars under the matrices; the suptitle
    width = max(cell_w * cols, 9.0)
    fig = figure(figsize=(width, title_h + cell_h * rows + bars_h))
    x0, y0, side, _ = _MATRIX
    for k, m in enumerate(models):
        row, col = divmod(k, cols)
        y = bars_h + (rows - 1 - row) * cell_h
        ax = add_axes_inches(fig, col * cell_w + x0, y + y0, side, side)
        plot_confusion(m.report, ax=ax, colorbar=False)
        ax.set_title(f"{m.name}: {100 * m.report.accuracy:.2f}%, {m.params:,} parameters", y=1.0)
    ax = add_axes_inches(fig, 0.9, 1.3, width - 1.2, bars_h - 1.3 - 0.55)
    classes = models[0].report.classes
    bar = 0.8 / len(models)
    for k, m in enumerate(models):
        xs = [i + (k - (len(models) - 1) / 2) * bar for i in range(len(classes))]
        ax.bar(xs, (100 * m.report.recall).tolist(), bar, label=m.name)
    ax.set_xticks(range(len(classes)), classes, rotation=30, ha="right")
    lowest = min(float(m.report.recall.min()) for m in models)
    ax.set_ylim(max(0, 10 * int(10 * lowest) - 10), 100)  # the differences, not the bars
    ax.set_ylabel("test accuracy per class (%)")
    ax.legend(fontsize=8, ncols=min(4, len(models)))
    ax.grid(axis="y", alpha=0.3)
    ax.set_title("per class: where each architecture pays", y=1.0)
    fig.suptitle(
        " vs ".join(m.name for m in models) + " on the Fashion-MNIST test set",
        fontsize=14,
        y=1 - 0.2 / fig.get_figheight(),
        va="top",
    )
    return fig


def plot_tradeoff(comparison, axes=None) -> Figure:
    """Test accuracy against parameters and against multiply-accumulates (log x), one
    labelled point per model: which idea buys what.

    Args:
        comparison: a :class:`~archlab.analysis.evaluation.Comparison`.
        axes: two matplotlib axes (against parameters, against MACs), or one (against
            parameters). Default: a new figure.

    Example::

        >>> archlab.compare(["lecture", "zoo"]).plot()  # doctest: +SKIP
    """
    if axes is None:
        # placed in inches (no second draw to measure): the y labels left, the axis
        # labels below, the title above; the right panel shares the left one's y axis
        fig, axes = subplots(1, 2, figsize=(12, 4.8), sharey=True)
        fig.subplots_adjust(left=0.8 / 12, right=1 - 0.2 / 12, bottom=0.7 / 4.8, top=1 - 0.55 / 4.8)
        fig.subplots_adjust(wspace=0.06)
    else:
        fig = axes[0].figure
    models = comparison.models
    panels = (("params", "parameters"), ("macs", "multiply-accumulates per image"))
    for ax, (key, label) in zip(axes, panels[: len(axes)], strict=True):
        for m in models:
            x, y = getattr(m, key), 100 * m.report.accuracy
            lecture = _lecture_accuracy(m.name) is not None
            ax.scatter(x, y, s=60, marker="s" if lecture else "o", zorder=3)
            ax.annotate(m.name, (x, y), textcoords="offset points", xytext=(6, 4), fontsize=9)
        ax.set_xscale("log")
        # 200k, 500k, 1M, 2M: matplotlib's own minor labels (2×10⁵ 3×10⁵ …) overlap when
        # the points span one to two decades, as the zoo's MACs do
        ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: _short(x)))
        ax.xaxis.set_minor_formatter(FuncFormatter(lambda x, _: _short(x, only=(2, 5))))
        ax.margins(x=0.15, y=0.08)  # room for the labels right of the last point
        ax.set_xlabel(f"{label} (log scale)")
        ax.grid(alpha=0.3, which="both")
    axes[0].set_ylabel("test accuracy (%)")
    fig.suptitle("accuracy against cost (squares: the lecture's models)")
    return fig


def _short(x: float, only: tuple[int, ...] = ()) -> str:
    """A tick label in engineering form: 200k, 1M, 50; with ``only``, labels only the
    numbers whose leading digit is one of them (the others get "").

    Example:

        >>> archlab.viz.evaluation._short(2e5), archlab.viz.evaluation._short(3e6, only=(2, 5))
        ('200k', '')
    """
    if x <= 0:
        return ""
    if only and int(f"{x:e}"[0]) not in only:
        return ""
    for scale, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if x >= scale:
            return f"{x / scale:g}{suffix}"
    return f"{x:g}"
