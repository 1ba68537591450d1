"""Figures of an architecture's shapes (the trace's feature-map sizes)."""

from __future__ import annotations

from matplotlib.figure import Figure


def plot_shapes(report, ax=None) -> Figure:
    """How the feature map's side shrinks layer by layer (a :class:`~archlab.ShapeReport`).

    Each bar is one layer's output height; flat layers (after the flatten) are left out.

    Example::

        >>> archlab.plot_shapes(archlab.trace_shapes("cnn"))  # doctest: +SKIP
    """
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=(9, 3.6), layout="constrained")
    fig = ax.figure
    rows = [("input", report.input_shape)] + [
        (r.name, r.output) for r in report.layers if r.output is not None and len(r.output) == 3
    ]
    names = [name for name, _ in rows]
    sides = [shape[-2] for _, shape in rows]
    bars = ax.bar(range(len(rows)), sides, color="tab:blue")
    for bar, (_, shape) in zip(bars, rows, strict=True):
        ax.annotate(
            "×".join(map(str, shape)),
            (bar.get_x() + bar.get_width() / 2, bar.get_height()),
            ha="center",
            va="bottom",
            fontsize=8,
            xytext=(0, 2),
            textcoords="offset points",
        )
    ax.set_xticks(range(len(rows)), names, rotation=30, ha="right")
    ax.set_ylabel("map height (pixels)")
    ax.set_ylim(0, max(sides) * 1.18)
    ax.set_title(f"{report.model}: feature-map size after each layer (C×H×W)")
    return fig
