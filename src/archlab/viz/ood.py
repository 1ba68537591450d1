"""Figures of out-of-distribution detection: score histograms, test set against each
set, and the out-of-distribution images a model is surest about."""

from __future__ import annotations

from matplotlib.figure import Figure

from archlab.viz._figure import subplots, wrap_title

LABELS = {
    "msp": "max softmax probability",
    "energy": "−energy (logsumexp)",
    "maxlogit": "max logit",
}


def _histogram_on(ax, report, run, method: str, name: str) -> None:
    from archlab.analysis.ood import _counts, shared_edges

    inside, outside = run.scores[method]["test"], run.scores[method][name]
    if method == "msp":
        import torch

        edges = torch.linspace(0, 1, 31, dtype=torch.float64)
    else:
        edges = shared_edges([inside, outside], 30)
    e = edges.tolist()
    for scores, color, label in ((inside, "C0", "test"), (outside, "C3", name)):
        counts = _counts(scores, edges)
        share = [c / len(scores) for c in counts]
        ax.stairs(share, e, fill=True, alpha=0.45, color=color, label=label)
    sep = run.separations[method][name]
    ax.set_title(f"{name}: AUROC {100 * sep.auroc:.1f} %", fontsize=9)
    ax.set_yscale("log")
    ax.set_xlabel(LABELS[method], fontsize=8)
    ax.tick_params(labelsize=7)
    ax.legend(fontsize=7, loc="upper left")


def plot_ood(report, ax=None, method: str = "msp") -> Figure:
    """Histograms of ``method``'s score (share of images, log scale): the test set
    against each out-of-distribution set, a row per run; on a given ``ax``, the first
    run against the first set.

    Example::

        >>> archlab.ood(["dnn", "cnn"]).plot()   # doctest: +SKIP
    """
    if ax is not None:
        _histogram_on(ax, report, report.results[0], method, report.sets[0])
        return ax.figure
    rows, cols = len(report.results), len(report.sets)
    fig, axes = subplots(
        rows, cols, figsize=(2.9 * cols, 2.5 * rows + 0.5), layout="constrained", squeeze=False
    )
    for r, run in enumerate(report.results):
        for c, name in enumerate(report.sets):
            _histogram_on(axes[r][c], report, run, method, name)
        axes[r][0].set_ylabel(wrap_title(run.model, 2.2, 9) + "\nshare of images", fontsize=8)
    fig.suptitle(
        f"{LABELS[method]}: test set ({len(report.test_indices):,} images) against images the "
        "models never saw",
        fontsize=10,
    )
    return fig


def plot_confident(report) -> Figure:
    """Each run's most confident out-of-distribution images (a row per run), titled with
    what they are and what the model says they are. Draws a whole figure (a row of
    images per run), so it takes no ``ax``.

    Example::

        >>> archlab.ood(["dnn", "cnn"]).plot_confident()   # doctest: +SKIP
    """
    rows = len(report.results)
    cols = max([len(r.confident) for r in report.results] + [1])
    fig, axes = subplots(
        rows, cols, figsize=(2.0 * cols, 2.3 * rows + 0.4), layout="constrained", squeeze=False
    )
    for r, run in enumerate(report.results):
        for c in range(cols):
            ax = axes[r][c]
            ax.set_xticks([])
            ax.set_yticks([])
            if c >= len(run.confident):
                ax.axis("off")
                continue
            item = run.confident[c]
            ax.imshow(item.image.numpy(), cmap="gray", vmin=0, vmax=255)
            ax.set_title(
                wrap_title(
                    f"{item.what}\n→ {item.predicted} {100 * item.confidence:.2f} %", 1.9, 7
                ),
                fontsize=7,
            )
        axes[r][0].set_ylabel(wrap_title(run.model, 2.0, 9), fontsize=9)
    fig.suptitle("the out-of-distribution images each model is surest about", fontsize=10)
    return fig
