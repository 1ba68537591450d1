"""Figures of a run: its training curves."""

from __future__ import annotations

from matplotlib.figure import Figure

from archlab.viz._figure import figure

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


def plot_curves(history: dict, axes=None) -> Figure:
    """Training loss and test accuracy against iteration, from a run's ``history``.

    Args:
        history: :attr:`archlab.Run.history` or a loaded ``history.json``.
        axes: two matplotlib axes (loss, accuracy), or one axes for the accuracy alone.
            Default: a new 1×2 figure.

    Example::

        >>> from archlab.viz import plot_curves
        >>> history = {"model": "toy", "train": [{"iteration": 50, "loss": 0.9}],
        ...            "eval": [{"iteration": 50, "test_accuracy": 0.8, "test_loss": 0.6}]}
        >>> plot_curves(history).axes[1].get_title()
        'toy: test accuracy'
    """
    if axes is None:
        axes = _curves_axes(figure(figsize=_CURVES_SIZE))
    if hasattr(axes, "plot"):  # one axes: the accuracy
        _accuracy_panel(history, axes)
        return axes.figure
    ax_loss, ax_acc = axes
    _loss_panel(history, ax_loss)
    _accuracy_panel(history, ax_acc)
    return ax_loss.figure


def _loss_panel(history: dict, ax) -> None:
    model = history.get("model", "")
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
    ax.set(xlabel="iteration", ylabel="cross-entropy", title=f"{model}: loss")
    ax.legend()
    ax.grid(alpha=0.3)


def _accuracy_panel(history: dict, ax) -> None:
    model = history.get("model", "")
    evals = history.get("eval", [])
    ax.plot(
        [p["iteration"] for p in evals],
        [100 * p["test_accuracy"] for p in evals],
        "o-",
        color="tab:green",
        label="test accuracy (eval mode)",
    )
    if evals:
        last = evals[-1]
        ax.annotate(
            f"{100 * last['test_accuracy']:.2f}%",
            (last["iteration"], 100 * last["test_accuracy"]),
            textcoords="offset points",
            xytext=(-10, 8),
            ha="right",
        )
    lecture = _lecture_accuracy(model)
    if lecture is not None:
        ax.axhline(lecture, ls="--", color="gray", label=f"the lecture's {lecture}%")
    ax.set(xlabel="iteration", ylabel="accuracy (%)", title=f"{model}: test accuracy")
    ax.legend(loc="lower right")
    ax.grid(alpha=0.3)


def _lecture_accuracy(model: str) -> float | None:
    from archlab.models import is_model, model_card

    return model_card(model).lecture_accuracy if is_model(model) else None
