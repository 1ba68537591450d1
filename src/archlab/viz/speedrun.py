"""The speedrun ladder (``benchmarks/speedrun.py``): accuracy against training seconds."""

from __future__ import annotations

from archlab.viz._figure import Figure, _new_ax

TARGET = 93.0  # the speedrun's goal, test accuracy %


def plot_ladder(rows: list[dict], ax=None) -> Figure:
    """One point per rung with its error bars (mean ± std over seeds), a rung that did not
    pay in red, the 93 % goal as a dashed line.

    Args:
        rows: the ladder's rungs, each ``{"rung", "accuracy": [mean, std] (%),
            "seconds": [mean, std], "pays": True | False | None}``.
        ax: the axes to draw on. Default: a new figure.

    Returns:
        The figure.
    """
    fig, ax = _new_ax(ax, (8, 5))
    for row in rows:
        (a, sa), (t, st) = row["accuracy"], row["seconds"]
        color = "tab:red" if row["pays"] is False else "tab:blue"
        ax.errorbar(t, a, xerr=st, yerr=sa, fmt="o", color=color, capsize=3)
        ax.annotate(row["rung"], (t, a), textcoords="offset points", xytext=(5, 4), fontsize=8)
    ax.axhline(TARGET, color="grey", lw=0.8, ls="--")
    ax.set_xlabel("training seconds (mean ± std over seeds)")
    ax.set_ylabel("test accuracy % (mean ± std)")
    ax.set_title("The speedrun ladder: one trick per rung (red: did not pay)")
    return fig
