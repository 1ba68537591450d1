"""Figures of attributions: one map, and the whole explanation of one image."""

from __future__ import annotations

from matplotlib.figure import Figure

from archlab.trace.formulas import fmt_shape
from archlab.viz._figure import (
    SLIDE_WIDTH,
    _new_ax,
    _symmetric,
    colorbar_beside,
    figure,
    panel_grid,
    wrap_title,
)


def plot_image(image, title: str = "", ax=None) -> Figure:
    """A grayscale 28×28 image (uint8 or float), no ticks."""
    fig, ax = _new_ax(ax)
    ax.imshow(
        image.cpu().numpy(),
        cmap="gray",
        vmin=0,
        vmax=255 if image.dtype.is_floating_point is False else None,
    )
    if title:
        ax.set_title(title)
    ax.set_axis_off()
    return fig


def plot_attribution(
    attribution, image=None, ax=None, blend: bool = False, colorbar: bool = True
) -> Figure:
    """One attribution map: signed maps on a diverging scale centred at 0, others from 0.

    Args:
        attribution: an :class:`~archlab.analysis.explain.Attribution`.
        image: the uint8 ``(28, 28)`` image, needed for ``blend``.
        ax: where to draw. Default: a new figure.
        blend: draw the map over the image (half transparent). Default: False.
        colorbar: add a colour bar. Default: True.

    Example::

        >>> from archlab.viz import plot_attribution
        >>> e = archlab.explain("cnn", 42, methods="ig")  # doctest: +SKIP
        >>> plot_attribution(e.attributions[0], e.image, blend=True)  # doctest: +SKIP
    """
    fig, ax = _new_ax(ax)
    values = attribution.map.cpu()
    if attribution.native is not None and not blend:
        values = attribution.native.cpu()  # Grad-CAM at its own, coarse resolution
    if attribution.signed:
        vmax = _symmetric(values)
        kw = {"cmap": "RdBu_r", "vmin": -vmax, "vmax": vmax}
    else:
        kw = {"cmap": "inferno", "vmin": 0, "vmax": float(values.max()) or 1.0}
    if blend:
        ax.imshow(image.cpu().numpy(), cmap="gray")
        shown = ax.imshow(values.numpy(), alpha=0.55, interpolation="bilinear", **kw)
    else:
        shown = ax.imshow(values.numpy(), interpolation="nearest", **kw)
    if colorbar:
        fig.colorbar(shown, ax=ax, fraction=0.046, pad=0.02)
    ax.set_axis_off()
    return fig


def plot_explanation(explanation) -> Figure:
    """The whole story for one image: the image, the top-3 probabilities, and per method
    a heat map (top row) and the map blended over the image (bottom row); with the sanity
    check, a third row shows the fully randomised model's maps and ρ per step.

    The panels are placed by hand (a whole figure): sized from their titles' lines, the
    figure is drawn once when saved, where a constrained layout measured every tick label
    of 22 axes twice (two thirds of the save, the larger part of `archlab explain`).

    Example::

        >>> archlab.explain("cnn", 42, sanity=True).plot()
        ... # doctest: +SKIP
    """
    import matplotlib
    from matplotlib.font_manager import FontProperties

    attributions = explanation.attributions
    n = len(attributions)
    sanity = explanation.sanity
    classes = explanation.classes
    top = explanation.top(3)
    label = f"true: {classes[explanation.label]}" if explanation.label is not None else "image"
    where = f"test image {explanation.index}" if explanation.index is not None else "image"
    size = fmt_shape(explanation.image.shape)  # 28×28 for Fashion-MNIST
    # every panel's title first: the layout is sized from them
    big = FontProperties(size=matplotlib.rcParams["axes.titlesize"]).get_size_in_points()
    # panels as large as a 16:9 slide's 13.33 in allow: the image's column, then per
    # method a map with room for its colour bar (five methods: 1.4 in panels)
    panel = max(1.2, min(2.3, (SLIDE_WIDTH - 1.2 - 0.75 * n) / (n + 1)))
    room = panel + 0.8  # a title may use its panel's width and the gaps beside it
    # the first column's title stays inside its column (centred on the column, not on
    # the bars, whose class names take 0.95 in on the left): the next panel's title is
    # centred on that panel and uses the gap between the two
    predicts = wrap_title(f"{explanation.model} predicts", panel + 0.7, big)
    titles = [
        [(f"{where}\n{label}", big)],
        [(f"{predicts}\n{top[0][0]} ({top[0][1]:.2f})", big)],
    ]
    for a in attributions:
        # the settings say the map's own size where it has one (Grad-CAM's 12×12)
        titles[0].append((wrap_title(f"{a.title}\n{a.settings}", room, 9), 9))
        over = f" ({size})" if a.native is not None else ""
        titles[1].append((wrap_title(f"{a.method} over the image{over}", room, 9), 9))
    if sanity is not None:
        titles.append([("ρ(trained, randomised)\nlayers reset from the top", 9)])
        titles[2] += [
            (f"{a.method}, all layers random\nρ = {sanity.rho[a.method][-1]:+.2f}", 9)
            for a in attributions
        ]
    # whose score the maps explain: the prediction's by default, another class's with
    # target="true" or a class name, and a reader cannot tell from the maps themselves
    explained = classes[explanation.target]
    if explanation.target == explanation.predicted:
        whose = f"the prediction ({explained})"
    else:
        whose = f"{explained}, not the prediction"
    curves = explanation.faithfulness
    left = [0.95] + [0.15] * n  # class names left of the bars; colour bars right of maps
    right = [0.25] + [0.6] * n
    below = [0.1, 0.5] + ([_steps_room(sanity)] if sanity is not None else [])
    if curves is not None:  # a row of its own under the others, its legend beside it
        chosen = attributions[0].method if attributions else None
        titles.append([(f"deletion, fill {curves.fill}\n{chosen} against random", 9)])
        below.append(0.45)
    width = sum(left) + sum(right) + panel * len(left)
    heading = wrap_title(
        f"{explanation.verdict} · the maps explain the score of {whose}", width - 0.4, 13
    )
    fig = figure()
    axes = panel_grid(
        fig,
        titles,
        panel=panel,
        left=left,
        right=right,
        below=below,  # tick and axis labels
        suptitle=0.2 + (heading.count("\n") + 1) * 13 * 1.3 / 72,
    )
    for row, texts in zip(axes, titles, strict=True):
        for ax, (text, fontsize) in zip(row, texts, strict=True):
            # a fixed y: no panel has tick labels above it, and matplotlib would
            # otherwise measure every axis of every panel to place each title
            ax.set_title(text, fontsize=fontsize, y=1.0)
    plot_image(explanation.image, ax=axes[0][0])
    bars = axes[1][0]
    bars.title.set_x(0.5 - (left[0] - right[0]) / 2 / panel)  # the column's centre
    bars.barh([c for c, _ in top][::-1], [p for _, p in top][::-1], color="tab:blue")
    bars.set_xlim(0, 1)
    bars.set_xlabel("probability")
    for i, a in enumerate(attributions, start=1):
        plot_attribution(a, ax=axes[0][i], colorbar=False)
        colorbar_beside(axes[0][i], fontsize=7)
        # the blend has the same colour scale as the map above it: one bar per method
        plot_attribution(a, explanation.image, ax=axes[1][i], blend=True, colorbar=False)
    if curves is not None:
        from archlab.viz.faithfulness import plot_image_curves

        plot_image_curves(curves, ax=axes[-1][0], method=chosen)
        axes[-1][0].set_title(titles[-1][0][0], fontsize=9, y=1.0)
    if sanity is not None:
        ax = axes[2][0]
        for method, rhos in sanity.rho.items():
            ax.plot(range(1, len(rhos) + 1), rhos, "o-", label=method)
        ax.set_xticks(range(1, len(sanity.steps) + 1), sanity.steps, rotation=60, fontsize=7)
        ax.set_ylim(-1.05, 1.05)
        ax.axhline(0, color="gray", lw=0.5)
        ax.legend(fontsize=7, loc="lower left", ncols=2 if panel >= 2 else 1)
        for i, a in enumerate(attributions, start=1):
            randomised = type(a)(a.method, a.title, a.settings, sanity.maps[a.method], a.signed)
            plot_attribution(randomised, ax=axes[2][i], colorbar=False)
            colorbar_beside(axes[2][i], fontsize=7)
    fig.suptitle(heading, fontsize=13, y=1 - 0.1 / fig.get_figheight(), va="top")
    return fig


def _steps_room(sanity) -> float:
    """Inches under the ρ plot for its step names, at 7 points and turned 60°."""
    longest = max((len(step) for step in sanity.steps), default=0) if sanity is not None else 0
    return 0.25 + 0.05 * longest
