"""Figures of an architecture's shapes (the trace's feature-map sizes)."""

from __future__ import annotations

from matplotlib.figure import Figure

from archlab.trace.formulas import fmt_shape
from archlab.viz._figure import subplots


def plot_shapes(report, ax=None) -> Figure:
    """How the feature map's side shrinks layer by layer (a :class:`~archlab.ShapeReport`).

    Each bar is one layer's output height; flat layers (after the flatten) are left out.

    Example::

        >>> archlab.trace_shapes("cnn").plot()  # doctest: +SKIP
    """
    rows = [("input", report.input_shape)] + [
        (r.name, r.output) for r in report.layers if r.output is not None and len(r.output) == 3
    ]
    names = [name for name, _ in rows]
    sides = [shape[-2] for _, shape in rows]
    if ax is not None:
        return _shapes_line(report, ax, names, sides)
    _, ax = subplots(figsize=(9, 3.6), layout="constrained")
    fig = ax.figure
    bars = ax.bar(range(len(rows)), sides, color="tab:blue")
    for bar, (_, shape) in zip(bars, rows, strict=True):
        ax.annotate(
            fmt_shape(shape),
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


_NUMBERED = "layer, in the order forward calls it (0: the input)"


def _shapes_line(report, ax, names: list[str], sides: list[int]) -> Figure:
    """On a given axes, one model of an overlay: its map height per layer as a line in
    the axes' next colour, labelled by the model (several models compare in one axes)."""
    label = report.model
    if report.overrides:
        label += f" with {', '.join(report.overrides)}"
    first = not ax.get_lines()
    ax.plot(range(len(sides)), sides, "o-", label=label)
    shown = [t.get_text() for t in ax.get_xticklabels()]
    if first:
        ax.set_xticks(range(len(names)), names, rotation=30, ha="right")
    elif shown != names and ax.get_xlabel() != _NUMBERED:
        # models whose layers differ: the x axis counts layers, names would mislead
        count = max(len(names), len(shown))
        ax.set_xticks(range(count), [str(i) for i in range(count)], rotation=0, ha="center")
        ax.set_xlabel(_NUMBERED)
    ax.set_ylabel("map height (pixels)")
    ax.set_ylim(0, max(max(sides) * 1.1, ax.get_ylim()[1]))
    ax.set_title("feature-map height after each layer")
    ax.legend(fontsize=8)
    return ax.figure


def plot_params(report, ax=None) -> Figure:
    """Each layer's share of a :class:`~archlab.ParamReport`'s parameters and MACs, as
    paired horizontal bars (the lecture's CNN: fc1 holds 94 % of the parameters, the
    convolutions 67 % of the arithmetic).

    Example::

        >>> fig = archlab.count_params("cnn").plot()
        >>> fig.axes[0].get_xlabel()
        '% of the model'
    """
    layers = [layer for layer in report.layers if layer.params or layer.macs]
    overlay = ax is not None  # other models may share it: their own colours and labels
    if ax is None:
        _, ax = subplots(figsize=(8, 1.2 + 0.32 * max(len(layers), 1)), layout="constrained")
    ys = range(len(layers))
    params = [100 * layer.params / max(report.total_params, 1) for layer in layers]
    macs = [100 * layer.macs / max(report.total_macs, 1) for layer in layers]
    who = f"{report.model}: " if overlay else ""
    ax.barh(
        [y - 0.2 for y in ys],
        params,
        height=0.4,
        label=f"{who}parameters",
        color=None if overlay else "tab:blue",
    )
    ax.barh(
        [y + 0.2 for y in ys],
        macs,
        height=0.4,
        label=f"{who}multiply-accumulates",
        color=None if overlay else "tab:orange",
        hatch="//" if overlay else None,
    )
    ax.set_yticks(list(ys), [f"{layer.name} ({layer.type})" for layer in layers])
    ax.invert_yaxis()
    ax.set_xlabel("% of the model")
    ax.set_xlim(0, 105)
    # beside the bars, not over them: an overlay of models fills the lower right too
    ax.legend(
        loc="upper left" if overlay else "lower right",
        bbox_to_anchor=(1.01, 1.0) if overlay else None,
        fontsize=8 if overlay else None,
    )
    ax.set_title(
        f"{report.model}: {report.total_params:,} parameters, "
        f"{report.total_macs:,} MACs per {'×'.join(map(str, report.input_shape))} image"
    )
    return ax.figure
