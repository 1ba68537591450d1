"""Figures. Each plot function takes ``ax=None`` (or ``axes``), returns the Figure and
never calls ``plt.show()``; :func:`save_figure` writes a PNG atomically and closes it."""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib

if not os.environ.get("DISPLAY") and not os.environ.get("MPLBACKEND"):
    matplotlib.use("Agg")  # headless: no window to open; Jupyter sets its own backend

import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from archlab.lecture import LECTURE_ACCURACY


def save_figure(fig: Figure, path: str | os.PathLike, dpi: int = 120) -> Path:
    """Save ``fig`` as a PNG (temporary file, then rename) and close it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.stem}.partial.png")
    try:
        fig.savefig(partial, dpi=dpi, bbox_inches="tight")
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
        plt.close(fig)
    return path


def plot_curves(history: dict, axes=None) -> Figure:
    """Training loss and test accuracy against iteration, from a run's ``history``.

    Args:
        history: ``TrainResult.history`` or a loaded ``history.json``.
        axes: two matplotlib axes (loss, accuracy). Default: a new 1×2 figure.
    """
    if axes is None:
        fig, axes = plt.subplots(1, 2, figsize=(11, 4), layout="constrained")
    ax_loss, ax_acc = axes
    fig = ax_loss.figure
    model = history.get("model", "")
    train = history.get("train", [])
    evals = history.get("eval", [])
    ax_loss.plot(
        [p["iteration"] for p in train],
        [p["loss"] for p in train],
        label="training loss (mean of 50 iterations)",
        color="tab:blue",
    )
    ax_loss.plot(
        [p["iteration"] for p in evals],
        [p["test_loss"] for p in evals],
        "o-",
        label="test loss",
        color="tab:orange",
    )
    ax_loss.set(xlabel="iteration", ylabel="cross-entropy", title=f"{model}: loss")
    ax_loss.legend()
    ax_loss.grid(alpha=0.3)
    ax_acc.plot(
        [p["iteration"] for p in evals],
        [100 * p["test_accuracy"] for p in evals],
        "o-",
        color="tab:green",
        label="test accuracy (eval mode)",
    )
    for i, p in enumerate(evals):
        if i == len(evals) - 1:
            ax_acc.annotate(
                f"{100 * p['test_accuracy']:.2f}%",
                (p["iteration"], 100 * p["test_accuracy"]),
                textcoords="offset points",
                xytext=(-10, 8),
                ha="right",
            )
    if model in LECTURE_ACCURACY:
        ax_acc.axhline(
            LECTURE_ACCURACY[model],
            ls="--",
            color="gray",
            label=f"the lecture's {LECTURE_ACCURACY[model]}%",
        )
    ax_acc.set(xlabel="iteration", ylabel="accuracy (%)", title=f"{model}: test accuracy")
    ax_acc.legend(loc="lower right")
    ax_acc.grid(alpha=0.3)
    return fig
