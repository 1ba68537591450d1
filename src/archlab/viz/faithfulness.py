"""Figures of faithfulness and robustness: mean deletion curves, accuracy under attack,
and the images that flip first."""

from __future__ import annotations

from matplotlib.figure import Figure

from archlab._text import plural
from archlab.viz._figure import subplots


def _curves_on(ax, report, which: str, overlay: bool = False) -> None:
    """Each row's mean curve; in an ``overlay`` (a given axes other runs may share) every
    line takes the axes' next colour and its label names the run."""
    x = report.fractions.numpy()
    who = f"{report.model}: " if overlay else ""
    for i, row in enumerate(report.rows):
        curve = row.morf_curve if which == "morf" else row.lerf_curve
        control = row.kind == "control"
        ax.plot(
            x,
            curve.numpy(),
            ls="--" if control else "-",
            color=None if overlay else "gray" if control else f"C{i}",
            alpha=0.6 + 0.4 * (not control),
            marker={"random": "x", "sobel": "^", "constant": "."}.get(row.name),
            markevery=4,
            label=f"{who}{row.name} ({(row.morf if which == 'morf' else row.lerf)[0]:.2f})",
        )
    ax.set_xlabel("share removed", fontsize=8)
    ax.set_ylabel("probability of the explained class")
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlim(0, 1)
    best = "lower" if which == "morf" else "higher"
    name = "MoRF: most relevant removed first" if which == "morf" else "LeRF: least relevant first"
    ax.set_title(f"{name}\n(AUC in the legend, {best} is better)", fontsize=10)
    ax.legend(fontsize=7, loc="best")  # where the curves leave room
    ax.grid(alpha=0.3)


def plot_faithfulness(report, ax=None) -> Figure:
    """The mean MoRF and LeRF deletion curves of every method (solid) and control map
    (dashed, gray); on a given ``ax``, the MoRF curves alone.

    Example::

        >>> archlab.faithfulness("cnn", images=50).plot()   # doctest: +SKIP
    """
    if ax is not None:
        _curves_on(ax, report, "morf", overlay=True)
        return ax.figure
    fig, axes = subplots(1, 2, figsize=(11, 4.6), layout="constrained")
    _curves_on(axes[0], report, "morf")
    _curves_on(axes[1], report, "lerf")
    fig.suptitle(
        f"{report.model}: deletion curves, mean of {plural(report.images, 'test image')}, "
        f"fill: {report.fill}",
        fontsize=12,
    )
    return fig


def plot_image_curves(curves, ax=None, method: str | None = None) -> Figure:
    """One image's deletion curves for one method against the random control, for
    ``explain(..., faithfulness=...)``: MoRF solid, LeRF dashed (a single image's sixteen
    curves in one small panel could not be read; :func:`archlab.faithfulness` draws
    every method's mean curves over many images).

    Args:
        curves: a :class:`~archlab.analysis.faithfulness.Faithfulness` over that image.
        ax: the axes. Default: a new figure.
        method: the map whose curves are drawn. Default: the first method's.

    Returns:
        The figure.
    """
    if ax is None:
        _, ax = subplots(figsize=(5, 4), layout="constrained")
    methods = [r for r in curves.rows if r.kind != "control"]
    chosen = next((r for r in methods if r.name == method), methods[0] if methods else None)
    random = next((r for r in curves.rows if r.name == "random"), None)
    x = curves.fractions.numpy()
    for row, color in ((chosen, "C0"), (random, "0.45")):
        if row is None:
            continue
        ax.plot(x, row.morf_curve.numpy(), color=color, label=f"{row.name} MoRF")
        ax.plot(x, row.lerf_curve.numpy(), color=color, ls="--", label=f"{row.name} LeRF")
    ax.set_xlabel("share removed", fontsize=8)
    ax.set_ylabel("probability", fontsize=8)
    ax.set_ylim(-0.02, 1.02)
    ax.tick_params(labelsize=7)
    name = chosen.name if chosen is not None else "a map"
    ax.set_title(f"deletion, fill {curves.fill}\n{name} against random", fontsize=9)
    # beside the curves, not over them: the panel is small in the explanation figure
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0), frameon=False)
    ax.text(
        1.02,
        0.0,
        "MoRF ↓ better\nLeRF ↑ better\nmean curves:\narchlab.faithfulness()",
        transform=ax.transAxes,
        fontsize=7,
        va="bottom",
        color="0.3",
    )
    return ax.figure


def plot_robustness(report, ax=None) -> Figure:
    """Test accuracy against ε under FGSM and PGD, one line per model; on a given ``ax``,
    the PGD curves alone.

    Example::

        >>> archlab.attack(["dnn", "cnn", "resnet"]).plot()   # doctest: +SKIP
    """

    def draw(ax, attack):
        for r in report.results:  # the axes' next colour: runs drawn before keep theirs
            acc = r.fgsm if attack == "FGSM" else r.pgd
            ax.plot(report.eps, [100 * a for a in acc], "o-", label=r.model)
        ax.set_xlabel("ε (L∞, in pixel units: 1 = black to white)")
        ax.set_ylabel("test accuracy (%)")
        ax.set_ylim(0, 100)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        steps = f", {plural(report.pgd_steps, 'step')}" if attack == "PGD" else ""
        ax.set_title(f"{attack}{steps}, {plural(report.images, 'test image')}", fontsize=10)

    if ax is not None:
        draw(ax, "PGD")
        return ax.figure
    fig, axes = subplots(1, 2, figsize=(11, 4.4), layout="constrained", sharey=True)
    draw(axes[0], "FGSM")
    draw(axes[1], "PGD")
    fig.suptitle("how fragile is each model: accuracy under attack", fontsize=12)
    return fig


def plot_flips(report) -> Figure:
    """The images that flip first under FGSM, per model: the image (its true class, which
    the model also predicted: only images right when clean are picked), its saliency map,
    the attacked image and what the model predicts for it, the difference between the two
    (what the attack added, on a ± ε scale) and the attacked image's saliency map (a whole
    figure: one row per flipped image)."""
    from archlab.viz._figure import _symmetric

    rows = [(r.model, f) for r in report.results for f in r.flips]
    cols = 5
    fig, axes = subplots(
        max(1, len(rows)), cols, figsize=(10, 2.2 * max(1, len(rows))), layout="constrained"
    )
    axes = axes.reshape(-1, cols)
    for ax_row, (model, f) in zip(axes, rows, strict=False):
        diff = f.adversarial - f.image
        panels = [
            (f.image, "gray", None, f"{model}, test image {f.index}\ntrue = predicted: {f.before}"),
            (f.map_before, "inferno", None, "saliency before"),
            (f.adversarial, "gray", None, f"attacked, ε = {f.eps:g}\npredicted: {f.after}"),
            (diff, "RdBu_r", _symmetric(diff), "attacked − clean\n(red: added, blue: taken)"),
            (f.map_after, "inferno", None, "saliency after"),
        ]
        for ax, (values, cmap, vmax, title) in zip(ax_row, panels, strict=True):
            if vmax is not None:  # the difference on a ± scale around 0
                scale = {"vmin": -vmax, "vmax": vmax}
            else:  # pixels on one black-to-white scale, so the attack's change shows as it is
                scale = {"vmin": 0.0, "vmax": 1.0} if cmap == "gray" else {}
            ax.imshow(values.numpy(), cmap=cmap, **scale)
            ax.set_title(title, fontsize=8)
            ax.set_axis_off()
    for ax in axes.flat[cols * len(rows) :]:
        ax.set_axis_off()
    fig.suptitle("the test images that flip at the smallest FGSM ε", fontsize=11)
    return fig
