"""Figures. Each plot function takes ``ax=None`` (or ``axes``), returns the Figure and
never calls ``plt.show()``; :func:`save_figure` writes a PNG atomically and closes it.

One module per subject: ``architecture`` (shapes), ``curves`` (training history),
``explanation`` (attributions),
``features`` (filters, activations), ``evaluation`` (confusion matrices, comparisons);
``_figure`` picks the backend and saves.
"""

from __future__ import annotations

from archlab.viz._figure import close_figure, figure, save_figure, subplots
from archlab.viz.architecture import plot_shapes
from archlab.viz.curves import plot_curves
from archlab.viz.evaluation import plot_comparison, plot_confusion, plot_mistakes, plot_tradeoff
from archlab.viz.explanation import plot_attribution, plot_explanation, plot_image
from archlab.viz.features import plot_activations, plot_filters

__all__ = [
    "close_figure",
    "figure",
    "plot_activations",
    "plot_attribution",
    "plot_comparison",
    "plot_confusion",
    "plot_curves",
    "plot_explanation",
    "plot_filters",
    "plot_image",
    "plot_mistakes",
    "plot_shapes",
    "plot_tradeoff",
    "save_figure",
    "subplots",
]


def __getattr__(name: str):
    """``from archlab.viz import plt``: pyplot with archlab's backend, imported on use."""
    if name == "plt":
        import matplotlib.pyplot as plt

        return plt
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
