"""Figures. Each plot function takes ``ax=None`` (or ``axes``), returns the Figure and
never calls ``plt.show()``; :func:`save_figure` writes a PNG atomically and closes it."""

from __future__ import annotations

import os
import sys
from pathlib import Path


def _pick_backend() -> None:
    """Agg where there is no display; the ``$MPLBACKEND`` the user (or Jupyter) set where
    matplotlib can use it, else Agg with a one-line warning instead of a traceback."""
    requested = os.environ.pop("MPLBACKEND", None)  # matplotlib's import fails on a bad one
    try:
        import matplotlib
    finally:
        if requested is not None:
            os.environ["MPLBACKEND"] = requested  # for child processes, as it was
    if not requested:
        if not os.environ.get("DISPLAY"):
            matplotlib.use("Agg")  # headless: no window to open
        return
    if requested.lower() == "agg":  # always loadable: no need to import pyplot to check
        matplotlib.use("Agg")
        return
    try:
        matplotlib.use(requested)  # ValueError: a name matplotlib does not know
        import matplotlib.pyplot

        matplotlib.pyplot.switch_backend(requested)  # ImportError: cannot load it here
    except (ValueError, ImportError, RuntimeError) as exc:
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0].split(";")[0]
        print(
            f"archlab: warning: MPLBACKEND={requested} cannot be used ({reason}); drawing with Agg",
            file=sys.stderr,
        )
        matplotlib.use("Agg", force=True)


_pick_backend()

import matplotlib  # noqa: E402
import torch  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from archlab._atomic import atomic_path  # noqa: E402

# matplotlib.pyplot is imported inside the functions that open a figure with it: a figure
# drawn only to be written to a file (curves.png at the end of `archlab train`) is made
# with matplotlib.figure.Figure directly, and pyplot's import (0.5 s on 2 cores, on top of
# matplotlib.figure's) is not paid for it.


def __getattr__(name: str):
    """``from archlab.viz import plt``: pyplot with archlab's backend, imported on use."""
    if name == "plt":
        import matplotlib.pyplot as plt

        return plt
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def save_figure(fig: Figure, path: str | os.PathLike, dpi: int = 120) -> Path:
    """Save ``fig`` as laid out, in the format its suffix names (.png, .svg, .pdf; else
    PNG), through a temporary file renamed into place, and close it."""
    suffix = Path(path).suffix.lower().lstrip(".")
    try:
        with atomic_path(path) as partial:
            fmt = suffix if suffix in ("png", "svg", "pdf") else "png"
            # saved as laid out: every archlab figure fits itself to its canvas (a
            # constrained layout, or panels placed by hand); bbox_inches="tight" would
            # draw the figure a second time only to measure it
            fig.savefig(partial, format=fmt, dpi=dpi)
    finally:
        if fig.canvas.manager is not None:  # opened by pyplot: it keeps it until closed
            import matplotlib.pyplot as plt

            plt.close(fig)
    return Path(path)


def plot_curves(history: dict, axes=None) -> Figure:
    """Training loss and test accuracy against iteration, from a run's ``history``.

    Args:
        history: ``TrainResult.history`` or a loaded ``history.json``.
        axes: two matplotlib axes (loss, accuracy). Default: a new 1×2 figure.

    Example::

        >>> history = {"model": "toy", "train": [{"iteration": 50, "loss": 0.9}],
        ...            "eval": [{"iteration": 50, "test_accuracy": 0.8, "test_loss": 0.6}]}
        >>> archlab.plot_curves(history).axes[1].get_title()
        'toy: test accuracy'
    """
    if axes is None:
        import matplotlib.pyplot as plt

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
    lecture = _lecture_accuracy(model)
    if lecture is not None:
        ax_acc.axhline(lecture, ls="--", color="gray", label=f"the lecture's {lecture}%")
    ax_acc.set(xlabel="iteration", ylabel="accuracy (%)", title=f"{model}: test accuracy")
    ax_acc.legend(loc="lower right")
    ax_acc.grid(alpha=0.3)
    return fig


def _lecture_accuracy(model: str) -> float | None:
    from archlab.models import is_model, model_card

    return model_card(model).lecture_accuracy if is_model(model) else None


def _new_ax(ax, figsize=(4, 4)):
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=figsize, layout="constrained")
    return ax.figure, ax


def _symmetric(values) -> float:
    vmax = float(abs(values).max()) if values.numel() else 1.0
    return vmax or 1.0


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
        attribution: an :class:`~archlab.explain.Attribution`.
        image: the uint8 ``(28, 28)`` image, needed for ``blend``.
        ax: where to draw. Default: a new figure.
        blend: draw the map over the image (half transparent). Default: False.
        colorbar: add a colour bar. Default: True.

    Example::

        >>> e = archlab.explain_test_image("cnn", 42, methods="ig")  # doctest: +SKIP
        >>> archlab.plot_attribution(e.attributions[0], e.image, blend=True)  # doctest: +SKIP
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

        >>> archlab.plot_explanation(archlab.explain_test_image("cnn", 42, sanity=True))
        ... # doctest: +SKIP
    """
    import matplotlib.pyplot as plt
    from matplotlib.font_manager import FontProperties

    attributions = explanation.attributions
    n = len(attributions)
    sanity = explanation.sanity
    classes = explanation.classes
    top = explanation.top(3)
    label = f"true: {classes[explanation.label]}" if explanation.label is not None else "image"
    where = f"test image {explanation.index}" if explanation.index is not None else "image"
    size = "×".join(map(str, explanation.image.shape))  # 28×28 for Fashion-MNIST
    # every panel's title first: the layout is sized from them
    big = FontProperties(size=plt.rcParams["axes.titlesize"]).get_size_in_points()
    titles = [
        [(f"{where}\n{label}", big)],
        [(f"{explanation.model} predicts\n{top[0][0]} ({top[0][1]:.2f})", big)],
    ]
    for a in attributions:
        native = f" ({'×'.join(map(str, a.native.shape))} native)" if a.native is not None else ""
        titles[0].append((f"{a.title}{native}\n{_wrap(a.settings)}", 9))
        over = f" ({size})" if a.native is not None else ""
        titles[1].append((f"{a.method} over the image{over}", 9))
    if sanity is not None:
        titles.append([("ρ(trained, randomised)\nlayers reset from the top", 9)])
        titles[2] += [
            (f"{a.method}, all layers random\nρ = {sanity.rho[a.method][-1]:+.2f}", 9)
            for a in attributions
        ]
    fig = plt.figure()
    axes = _panel_grid(
        fig,
        titles,
        panel=2.3,
        left=[0.95] + [0.15] * n,  # class names left of the bars; colour bars right of maps
        right=[0.25] + [0.75] * n,
        below=[0.1, 0.5, 0.75][: len(titles)],  # tick labels and axis labels under a row
        suptitle=0.35,
    )
    for row, texts in zip(axes, titles, strict=True):
        for ax, (text, fontsize) in zip(row, texts, strict=True):
            # a fixed y: no panel has tick labels above it, and matplotlib would
            # otherwise measure every axis of every panel to place each title
            ax.set_title(text, fontsize=fontsize, y=1.0)
    plot_image(explanation.image, ax=axes[0][0])
    bars = axes[1][0]
    bars.barh([c for c, _ in top][::-1], [p for _, p in top][::-1], color="tab:blue")
    bars.set_xlim(0, 1)
    bars.set_xlabel("probability")
    for i, a in enumerate(attributions, start=1):
        plot_attribution(a, ax=axes[0][i], colorbar=False)
        _colorbar_beside(axes[0][i])
        # the blend has the same colour scale as the map above it: one bar per method
        plot_attribution(a, explanation.image, ax=axes[1][i], blend=True, colorbar=False)
    if sanity is not None:
        ax = axes[2][0]
        for method, rhos in sanity.rho.items():
            ax.plot(range(1, len(rhos) + 1), rhos, "o-", label=method)
        ax.set_xticks(range(1, len(sanity.steps) + 1), sanity.steps, rotation=60, fontsize=7)
        ax.set_ylim(-1.05, 1.05)
        ax.axhline(0, color="gray", lw=0.5)
        ax.legend(fontsize=7, loc="lower left", ncols=2)
        for i, a in enumerate(attributions, start=1):
            randomised = type(a)(a.method, a.title, a.settings, sanity.maps[a.method], a.signed)
            plot_attribution(randomised, ax=axes[2][i], colorbar=False)
            _colorbar_beside(axes[2][i])
    fig.suptitle(explanation.verdict, fontsize=13)
    return fig


def _colorbar_beside(ax, width: float = 0.12, pad: float = 0.08) -> None:
    """A colour bar for the last image on ``ax``, ``pad`` inches right of it and as tall,
    in the room a hand-placed layout left there (the panel keeps its size)."""
    fig = ax.figure
    w = fig.get_size_inches()[0]
    box = ax.get_position()
    cax = fig.add_axes((box.x1 + pad / w, box.y0, width / w, box.height))
    fig.colorbar(ax.images[-1], cax=cax).ax.tick_params(labelsize=8)


def _panel_grid(fig, titles, panel, left, right, below, suptitle) -> list[list]:
    """Square panels in rows, placed by hand (sizes in inches) and the figure sized to
    fit: column ``c`` has ``left[c]`` and ``right[c]`` of room beside its panel, row
    ``r`` room for the tallest of its ``titles[r]`` (text, font size) above and
    ``below[r]`` under it. Returns the axes, row by row."""
    line = 1.3 / 72  # inches per point of font size, with the line spacing
    heads = [0.12 + max((t.count("\n") + 1) * size * line for t, size in row) for row in titles]
    width = sum(left) + sum(right) + panel * len(left)
    height = suptitle + sum(heads) + sum(below) + panel * len(titles)
    fig.set_size_inches(width, height)
    axes, y = [], height - suptitle
    for head, room, row in zip(heads, below, titles, strict=True):
        y -= head + panel
        x, placed = 0.0, []
        for c in range(len(row)):
            x += left[c]
            placed.append(fig.add_axes((x / width, y / height, panel / width, panel / height)))
            x += panel + right[c]
        axes.append(placed)
        y -= room
    return axes


def _wrap(text: str, width: int = 34) -> str:
    import textwrap

    return "\n".join(textwrap.wrap(text, width))


def plot_filters(weights, layer: str, ax=None) -> Figure:
    """Convolution kernels as a grid on one diverging scale centred at 0, with a colour bar.

    ``weights`` is ``(out, in, k, k)``. With one input channel, each kernel is a tile (a
    4×8 grid for layer1.0's 32); with several, the mosaic has one row per output map and
    one column per input map (layer2.0: 64 rows × 32 columns of 3×3 kernels).

    Example::

        >>> layer, weights = archlab.filter_weights(archlab.create_model("cnn"), "layer1.0")
        >>> len(archlab.plot_filters(weights, layer).axes)  # the kernels and a colour bar
        2
    """
    import matplotlib.pyplot as plt

    out_c, in_c, kh, kw = weights.shape
    vmax = _symmetric(weights)
    gap = 1
    if in_c == 1:
        cols = 8 if out_c % 8 == 0 else min(out_c, 8)
        rows = -(-out_c // cols)
        tiles = [(i // cols, i % cols, weights[i, 0]) for i in range(out_c)]
        note = f"{out_c} kernels {kh}×{kw}"
    else:
        rows, cols = out_c, in_c
        tiles = [(o, i, weights[o, i]) for o in range(out_c) for i in range(in_c)]
        note = f"all {out_c}×{in_c} kernels {kh}×{kw}: row = output map, column = input map"
    canvas = torch.full((rows * (kh + gap) - gap, cols * (kw + gap) - gap), float("nan"))
    for r, c, k in tiles:
        canvas[r * (kh + gap) : r * (kh + gap) + kh, c * (kw + gap) : c * (kw + gap) + kw] = k
    if ax is None:
        height = max(3.0, min(16.0, 0.22 * rows * (kh + gap) / 2))
        fig, ax = plt.subplots(
            figsize=(max(5.0, 0.22 * cols * (kw + gap) / 2 + 1.5), height), layout="constrained"
        )
    fig = ax.figure
    cmap = matplotlib.colormaps["RdBu_r"].with_extremes(bad="white")
    shown = ax.imshow(canvas.numpy(), cmap=cmap, vmin=-vmax, vmax=vmax, interpolation="nearest")
    fig.colorbar(shown, ax=ax, fraction=0.046, pad=0.02, label="weight")
    ax.set_title(f"{layer}: {note}")
    ax.set_axis_off()
    return fig


def _mosaic(maps: torch.Tensor, cols: int, gap: int = 1) -> torch.Tensor:
    """``(C, H, W)`` maps tiled ``cols`` to a row, NaN between them (drawn as background).

    Example:

        >>> archlab.viz._mosaic(torch.ones(3, 2, 2), cols=2).shape
        torch.Size([5, 5])
    """
    c, h, w = maps.shape
    cols = min(cols, c)
    rows = -(-c // cols)
    out = torch.full((rows * (h + gap) - gap, cols * (w + gap) - gap), float("nan"))
    for i in range(c):
        r, k = divmod(i, cols)
        out[r * (h + gap) : r * (h + gap) + h, k * (w + gap) : k * (w + gap) + w] = maps[i]
    return out


def plot_activations(activations, title: str = "") -> Figure:
    """Feature maps (``(C, H, W)``, a grid per block) or hidden units (``(N,)``, a strip).

    Example::

        >>> acts = archlab.activations(archlab.create_model("cnn"), torch.zeros(28, 28))
        >>> archlab.plot_activations(acts, "a black image")._suptitle.get_text()
        'a black image'
    """
    import matplotlib.pyplot as plt

    names = list(activations)
    heights = []
    for name in names:
        a = activations[name]
        heights.append(1.2 if a.dim() == 1 else 1.0 + 0.55 * -(-a.shape[0] // 16))
    fig = plt.figure(figsize=(12, sum(heights) + 0.8), layout="constrained")
    subfigs = fig.subfigures(len(names), 1, height_ratios=heights, squeeze=False)[:, 0]
    for sub, name in zip(subfigs, names, strict=True):
        a = activations[name].detach().cpu()
        if a.dim() == 1:
            ax = sub.subplots()
            shown = ax.imshow(
                a[None].numpy(), aspect="auto", cmap="viridis", interpolation="nearest"
            )
            ax.set_yticks([])
            ax.set_xlabel("unit")
            sub.colorbar(shown, ax=ax, fraction=0.02, pad=0.01)
            sub.suptitle(f"{name}: {a.shape[0]} units", fontsize=11)
            continue
        channels = a.shape[0]
        ax = sub.subplots()
        ax.set_axis_off()
        vmax = float(a.max()) or 1.0
        cmap = plt.get_cmap("viridis").with_extremes(bad="white")
        # one mosaic, 16 maps to a row with a 1-pixel gap: one image instead of one axis
        # per map (192 axes made `archlab activations` spend seconds on layout)
        mosaic = _mosaic(a, cols=16).numpy()
        ax.imshow(mosaic, cmap=cmap, vmin=0, vmax=vmax, interpolation="nearest")
        size = "×".join(map(str, a.shape[1:]))
        sub.suptitle(f"{name}: {channels} maps of {size}", fontsize=11)
    if title:
        fig.suptitle(title, fontsize=13)
    return fig


def plot_confusion(report, ax=None, colorbar: bool = True) -> Figure:
    """Confusion matrix: colour = share of the true class (row-normalised), text = counts.

    Example::

        >>> report = archlab.classification_report("toy", torch.eye(10), torch.arange(10))
        >>> archlab.plot_confusion(report).axes[0].get_title()
        'toy: accuracy 100.00%'
    """
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=(8, 7), layout="constrained")
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
    ax.set_title(f"{report.model}: accuracy {100 * report.accuracy:.2f}%")
    if colorbar:
        fig.colorbar(shown, ax=ax, fraction=0.046, pad=0.02, label="share of the true class")
    return fig


def plot_mistakes(images, labels, probs, indices, classes, title: str = "") -> Figure:
    """A gallery of test images with their true class and the wrong, confident prediction.

    Example::

        >>> report = archlab.evaluate_report("cnn", model, data, ckpt["normalize"])
        ... # doctest: +SKIP
        >>> wrong = report.mistakes(data.test_labels, 16)  # doctest: +SKIP
        >>> archlab.plot_mistakes(
        ...     data.test_images, data.test_labels, report.probs, wrong, report.classes
        ... )  # doctest: +SKIP
    """
    import matplotlib.pyplot as plt

    n = len(indices)
    cols = min(n, 8) or 1
    rows = max(1, -(-n // cols))
    fig, axes = plt.subplots(
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
    (a whole figure: one panel per model, in rows of up to three).

    Example::

        >>> archlab.plot_comparison(archlab.compare_models())  # doctest: +SKIP
    """
    import matplotlib.pyplot as plt

    models = comparison.models
    cols = min(3, len(models))
    rows = -(-len(models) // cols)
    fig = plt.figure(figsize=(7.5 * cols, 6.5 * rows + 5), layout="constrained")
    top, bottom = fig.subfigures(2, 1, height_ratios=[1.35 * rows, 1])
    axes = top.subplots(rows, cols, squeeze=False).flatten()
    for ax, m in zip(axes, models, strict=False):
        plot_confusion(m.report, ax=ax, colorbar=False)
        ax.set_title(f"{m.name}: {100 * m.report.accuracy:.2f}%, {m.params:,} parameters")
    for ax in axes[len(models) :]:
        ax.set_axis_off()
    ax = bottom.subplots()
    classes = models[0].report.classes
    width = 0.8 / len(models)
    for k, m in enumerate(models):
        xs = [i + (k - (len(models) - 1) / 2) * width for i in range(len(classes))]
        ax.bar(xs, (100 * m.report.recall).tolist(), width, label=m.name)
    ax.set_xticks(range(len(classes)), classes, rotation=30, ha="right")
    lowest = min(float(m.report.recall.min()) for m in models)
    ax.set_ylim(max(0, 10 * int(10 * lowest) - 10), 100)  # the differences, not the bars
    ax.set_ylabel("test accuracy per class (%)")
    ax.legend(fontsize=8, ncols=min(4, len(models)))
    ax.grid(axis="y", alpha=0.3)
    ax.set_title("per class: where each architecture pays")
    fig.suptitle(
        " vs ".join(m.name for m in models) + " on the Fashion-MNIST test set", fontsize=14
    )
    return fig


def plot_tradeoff(comparison, axes=None) -> Figure:
    """Test accuracy against parameters and against multiply-accumulates (log x), one
    labelled point per model: which idea buys what.

    Args:
        comparison: a :class:`~archlab.metrics.Comparison`.
        axes: two matplotlib axes. Default: a new figure.

    Example::

        >>> archlab.plot_tradeoff(archlab.compare_models(["lecture", "zoo"]))  # doctest: +SKIP
    """
    if axes is None:
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(1, 2, figsize=(12, 4.8), layout="constrained", sharey=True)
    else:
        fig = axes[0].figure
    models = comparison.models
    for ax, key, label in zip(
        axes, ("params", "macs"), ("parameters", "multiply-accumulates per image"), strict=True
    ):
        for m in models:
            x, y = getattr(m, key), 100 * m.report.accuracy
            lecture = _lecture_accuracy(m.name) is not None
            ax.scatter(x, y, s=60, marker="s" if lecture else "o", zorder=3)
            ax.annotate(m.name, (x, y), textcoords="offset points", xytext=(6, 4), fontsize=9)
        ax.set_xscale("log")
        ax.margins(x=0.15, y=0.08)  # room for the labels right of the last point
        ax.set_xlabel(f"{label} (log scale)")
        ax.grid(alpha=0.3, which="both")
    axes[0].set_ylabel("test accuracy (%)")
    fig.suptitle("accuracy against cost (squares: the lecture's models)")
    return fig


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
