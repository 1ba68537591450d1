"""Figures of a run: its training curves."""

from __future__ import annotations

from matplotlib.figure import Figure

from archlab.viz._figure import figure, wrap_title

_CURVES_SIZE = (11.0, 4.0)


def curves_figure(history: dict) -> Figure:
    """:func:`plot_curves` on a Figure made without pyplot, for a file: ``archlab train``
    writes curves.png with it and does not pay pyplot's import (0.5 s on 2 cores)."""
    fig = Figure(figsize=_CURVES_SIZE)
    plot_curves(history, axes=_curves_axes(fig))
    return fig


def _curves_axes(fig: Figure):
    """The two panels, placed in inches (tick labels and axis labels around each): saved
    with one draw, where a constrained layout draws once more only to measure."""
    w, h = fig.get_size_inches()
    fig.subplots_adjust(left=0.75 / w, right=1 - 0.2 / w, bottom=0.55 / h, top=1 - 0.4 / h)
    fig.subplots_adjust(wspace=0.9 / ((w - 0.95) / 2))  # room for the second y label
    return fig.subplots(1, 2)


def plot_curves(
    history: dict,
    axes=None,
    *,
    name: str | None = None,
    color=None,
    label: str | None = None,
) -> Figure:
    """Training loss and test accuracy against iteration, from a run's ``history``.

    On one given axes, the accuracy alone, as one line of an overlay: labelled by the run
    (and its last accuracy), in the next colour of that axes' cycle, so that several runs
    drawn into one axes stay apart.

    Args:
        history: :attr:`archlab.Run.history` or a loaded ``history.json``.
        axes: two matplotlib axes (loss, accuracy), or one axes for the accuracy alone.
            Default: a new 1×2 figure.
        name: the run's name for titles and labels. Default: ``history["model"]``.
        color: the accuracy line's colour. Default: green on a new figure, the axes'
            next colour on a given one.
        label: the accuracy line's label. Default: the run's name and last accuracy.

    Example::

        >>> from archlab.viz import plot_curves
        >>> history = {"model": "toy", "train": [{"iteration": 50, "loss": 0.9}],
        ...            "eval": [{"iteration": 50, "test_accuracy": 0.8, "test_loss": 0.6}]}
        >>> plot_curves(history).axes[1].get_title()
        'toy: test accuracy'
    """
    name = name or history.get("model", "")
    if axes is None:
        axes = _curves_axes(figure(figsize=_CURVES_SIZE))
    if hasattr(axes, "plot"):  # one axes: the accuracy, one line of an overlay
        _accuracy_panel(history, axes, name, color, label, overlay=True)
        return axes.figure
    ax_loss, ax_acc = axes
    _loss_panel(history, ax_loss, name)
    _accuracy_panel(history, ax_acc, name, color or "tab:green", label, overlay=False)
    return ax_loss.figure


def _loss_panel(history: dict, ax, name: str) -> None:
    train = history.get("train", [])
    evals = history.get("eval", [])
    ax.plot(
        [p["iteration"] for p in train],
        [p["loss"] for p in train],
        label="training loss (mean of 50 iterations)",
        color="tab:blue",
    )
    ax.plot(
        [p["iteration"] for p in evals],
        [p["test_loss"] for p in evals],
        "o-",
        label="test loss",
        color="tab:orange",
    )
    ax.set(xlabel="iteration", ylabel="cross-entropy", title=f"{name}: loss")
    ax.legend()
    ax.grid(alpha=0.3)


def _accuracy_panel(history: dict, ax, name: str, color, label, overlay: bool) -> None:
    evals = history.get("eval", [])
    last = f": {100 * evals[-1]['test_accuracy']:.2f}%" if evals else ""
    if label is None:
        # the last accuracy in the legend, not beside the line's end: a label there
        # leaves the axes or sits on another run's line; a long run name wraps at its
        # + , . _ boundaries so that the legend leaves room for the lines
        label = f"{name}{last}" if overlay else f"test accuracy (eval mode){last}"
        if overlay:
            inches = ax.get_position().width * ax.figure.get_figwidth()
            label = wrap_title(label, 0.4 * inches, 10)
    ax.plot(
        [p["iteration"] for p in evals],
        [100 * p["test_accuracy"] for p in evals],
        "o-",
        color=color,  # None: the axes' next colour
        label=label,
    )
    lecture = _lecture_accuracy(history.get("model", ""))
    if lecture is not None:
        mark = f"the lecture's {history['model']}: {lecture}%"
        if mark not in ax.get_legend_handles_labels()[1]:  # once per model, not per run
            # the model's, not this run's: gray in an overlay of several runs
            ax.axhline(lecture, ls="--", lw=1, color="0.5" if overlay else "gray", label=mark)
    title = "test accuracy" if overlay else f"{name}: test accuracy"
    ax.set(xlabel="iteration", ylabel="accuracy (%)", title=title)
    # where the lines leave room (matplotlib's "best"): the lecture's line and several
    # runs' curves may run through any corner
    ax.legend(loc="best")
    ax.grid(alpha=0.3)


def _lecture_accuracy(model: str) -> float | None:
    from archlab.models import is_model, model_card

    return model_card(model).lecture_accuracy if is_model(model) else None
