"""Figures of test-set results: confusion matrices, mistakes, and models side by side."""

from __future__ import annotations

from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from archlab.viz._figure import (
    SLIDE_WIDTH,
    add_axes_inches,
    colorbar_beside,
    figure,
    subplots,
    wrap_title,
)
from archlab.viz.curves import _lecture_accuracy
from archlab.viz.explanation import plot_image

# a confusion matrix's square in its cell, inches from the lower left: room for the class
# names left and below (rotated), the title above
_MATRIX = (1.3, 1.3, 5.2, 5.2)
_MATRIX_CELL = (6.9, 7.0)


def plot_confusion(
    report, ax=None, colorbar: bool = True, counts: bool = True, fontsize: float = 10
) -> Figure:
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
    matrix = report.matrix.cpu()
    shares = matrix / matrix.sum(1, keepdim=True).clamp(min=1)
    shown = ax.imshow(shares.numpy(), cmap="Blues", vmin=0, vmax=1)
    n = len(matrix)
    for i in range(n if counts else 0):
        for j in range(n):
            value = int(matrix[i, j])
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
    ax.set_xticks(range(n), report.classes, rotation=45, ha="right", fontsize=fontsize)
    held = getattr(report, "held_out", None)  # its row is empty: the run never saw it
    rows = [f"{c} (held out)" if i == held else c for i, c in enumerate(report.classes)]
    ax.set_yticks(range(n), rows, fontsize=fontsize)
    ax.set_xlabel("predicted", fontsize=fontsize)
    ax.set_ylabel("true", fontsize=fontsize)
    ax.set_title(f"{report.model}: accuracy {100 * report.accuracy:.2f}%", y=1.0)
    label = "share of the true class"
    if colorbar and beside:
        colorbar_beside(ax, width=0.2, pad=0.15).set_label(label)
    elif colorbar:
        fig.colorbar(shown, ax=ax, fraction=0.046, pad=0.02, label=label)
    return fig


def grid_shape(n: int, most: int = 8) -> tuple[int, int]:
    """``(rows, cols)`` for ``n`` pictures, at most ``most`` a row, with the fewest empty
    cells (then the widest rows): 12 mistakes are 2 rows of 6, not 8 and a half-empty 4.

    Example:

        >>> [grid_shape(n) for n in (16, 12, 10, 5, 1, 0)]
        [(2, 8), (2, 6), (2, 5), (1, 5), (1, 1), (1, 1)]
    """
    if n <= most:
        return 1, max(n, 1)
    best = min(range(most // 2, most + 1), key=lambda c: (-(-n // c) * c - n, -c))
    return -(-n // best), best


def plot_mistakes(images, labels, probs, indices, classes, title: str = "") -> Figure:
    """A gallery of test images with their true class and the wrong, confident prediction.

    Example::

        >>> archlab.evaluate("cnn").plot_mistakes(16)  # doctest: +SKIP
    """
    n = len(indices)
    rows, cols = grid_shape(n)
    cell = min(1.9, SLIDE_WIDTH / cols)  # eight to a row fit a slide's width
    fig, axes = subplots(
        rows, cols, figsize=(cell * cols, (cell + 0.45) * rows), layout="constrained", squeeze=False
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
    (a whole figure: the matrices in one row, the per-class bars under them, placed in
    inches and sized for a 16:9 slide; from five models on, the matrices are too small
    for their counts and show the shares alone).

    Example::

        >>> archlab.compare(["dnn", "cnn"]).plot()  # doctest: +SKIP
    """
    models = comparison.models
    n = len(models)
    rows, cols = 1, n  # one row: no empty cells (four models were 3 + 1 and two blanks)
    side = min(2.9, (SLIDE_WIDTH - 1.6 - 0.25 * (cols - 1)) / cols)
    width = max(1.25 + cols * side + 0.25 * (cols - 1) + 0.3, 9.0)
    # room above the panels for the longest (wrapped) name and the figure's title: a
    # long name wraps at its + , . _ boundaries, whole, never elided
    line = 1.3 / 72  # inches per point of font size, with the line spacing
    names = [wrap_title(m.name, side + 0.2, 9) for m in models]
    heading = wrap_title(
        " vs ".join(m.name for m in models) + " on the Fashion-MNIST test set", width - 0.4, 12
    )
    names_w, below = 1.25, 1.05  # class names left of the first panel; x names below
    head = 0.12 + (max(t.count("\n") for t in names) + 2) * 9 * line
    bars_h, title_h = 2.5, 0.15 + (heading.count("\n") + 1) * 12 * line
    cell_h = head + side + below
    fig = figure(figsize=(width, title_h + cell_h * rows + bars_h))
    # exact counts where every title has room for them (2,430,000), else all in short
    # form (2.43M): neighbouring titles touched at seven runs
    counts = [f"{m.params:,}" for m in models]
    if max(len(c) for c in counts) + 16 > (side + 0.2) * 72 / (0.62 * 9):
        counts = [_short(m.params) for m in models]
    for k, m in enumerate(models):
        row, col = divmod(k, cols)
        y = bars_h + (rows - 1 - row) * cell_h + below
        ax = add_axes_inches(fig, names_w + col * (side + 0.25), y, side, side)
        plot_confusion(m.report, ax=ax, colorbar=False, counts=side >= 2.5, fontsize=7)
        if col:
            ax.set_ylabel("")
            ax.set_yticklabels([])
        ax.set_title(f"{names[k]}\n{100 * m.report.accuracy:.2f}%, {counts[k]} params", fontsize=9)
    # the legend right of the bars, never over them (five runs hid a 29.5 % bar); its
    # names wrapped at their + , . _ boundaries, whole, as the panels' titles have them
    key_w = 1.75
    ax = add_axes_inches(fig, 0.9, 1.05, width - 1.2 - key_w, bars_h - 1.05 - 0.35)
    classes = models[0].report.classes
    bar = 0.8 / n
    for k, m in enumerate(models):
        xs = [i + (k - (n - 1) / 2) * bar for i in range(len(classes))]
        label = wrap_title(m.name, key_w - 0.45, 7)
        ax.bar(xs, (100 * _seen_recall(m.report)).tolist(), bar, label=label)
    ax.set_xticks(range(len(classes)), classes, rotation=20, ha="right", fontsize=8)
    ax.tick_params(axis="y", labelsize=8)
    lowest = min(float(r[~r.isnan()].min()) for r in map(_seen_recall, (m.report for m in models)))
    ax.set_ylim(max(0, 10 * int(10 * lowest) - 10), 100)  # the differences, not the bars
    ax.set_ylabel("accuracy per class (%)", fontsize=8)
    ax.legend(
        fontsize=7,
        loc="upper left",
        bbox_to_anchor=(1.01, 1.0),
        ncols=1 if n <= 7 else 2,
        frameon=False,
        borderaxespad=0.0,
        labelspacing=0.3,
        handlelength=1.2,
    )
    ax.grid(axis="y", alpha=0.3)
    ax.set_title("per class: where each architecture pays", y=1.0, fontsize=9)
    fig.suptitle(heading, fontsize=12, y=1 - 0.1 / fig.get_figheight(), va="top")
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
        ax.set_xscale("log")
        # 200k, 500k, 1M, 2M: matplotlib's own minor labels (2×10⁵ 3×10⁵ …) overlap when
        # the points span one to two decades, as the zoo's MACs do
        ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: _short(x)))
        ax.xaxis.set_minor_formatter(FuncFormatter(lambda x, _: _short(x, only=(2, 5))))
        ax.margins(x=0.15, y=0.08)  # room for the labels right of the last point
        ax.set_xlabel(f"{label} (log scale)")
        ax.grid(alpha=0.3, which="both")
        _label_points(ax, models, key)
    axes[0].set_ylabel("test accuracy (%)")
    fig.suptitle("accuracy against cost (squares: the lecture's models)")
    return fig


def _label_points(ax, models, key: str) -> None:
    """Each point's run name, right of it in the left half of the panel and left of it in
    the right half, a long name in lines: a name never runs off the panel's edge."""
    import math

    lo, hi = (math.log10(v) for v in ax.get_xlim())
    inches = ax.get_position().width * ax.figure.get_figwidth() / 2 - 0.15
    for m in models:
        x, y = getattr(m, key), 100 * m.report.accuracy
        right = (math.log10(x) - lo) / ((hi - lo) or 1) > 0.5
        ax.annotate(
            wrap_title(m.name, inches, 9),
            (x, y),
            textcoords="offset points",
            xytext=(-6, 4) if right else (6, 4),
            ha="right" if right else "left",
            fontsize=9,
        )


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


def _seen_recall(report):
    """Recall per class, NaN (no bar, not a 0 % one) for the class the run held out."""
    recall = report.recall.clone()
    held = getattr(report, "held_out", None)
    if held is not None:
        recall[held] = float("nan")
    return recall
