"""The speedrun ladder (``benchmarks/speedrun.py``): each rung's accuracy and training
time, side by side, in the ladder's order."""

from __future__ import annotations

from archlab.viz._figure import Figure, subplots

TARGET = 93.0  # the speedrun's goal, test accuracy %
PAID, UNPAID = "tab:blue", "tab:red"


def plot_ladder(rows: list[dict], axes=None) -> Figure:
    """The ladder read top to bottom, one row per rung: on the left its test accuracy
    (mean ± std over seeds, each seed a small dot, the 93 % goal dashed), on the right its
    training seconds (mean ± std). A rung that did not pay is red; a trick tried on its
    own branch is marked ``↳`` (it is not carried up).

    Args:
        rows: the ladder's rungs, each ``{"rung", "accuracy": [mean, std] (%),
            "seconds": [mean, std], "pays": True | False | None}``, optionally
            ``"accuracies"`` (each seed's %) and ``"branch"`` (True on a branch).
        axes: two axes to draw on (accuracy, seconds), sharing their rows. Default: a
            new figure.

    Returns:
        The figure.
    """
    if axes is None:
        height = 1.6 + 0.42 * len(rows)
        _, axes = subplots(
            1, 2, figsize=(9, height), sharey=True, layout="constrained",
            gridspec_kw={"width_ratios": [3, 2]},
        )  # fmt: skip
    acc_ax, time_ax = axes
    ys = list(range(len(rows)))
    for y, row in zip(ys, rows, strict=True):
        (a, sa), (t, st) = row["accuracy"], row["seconds"]
        color = UNPAID if row["pays"] is False else PAID
        seeds = row.get("accuracies") or []
        acc_ax.plot(seeds, [y] * len(seeds), ".", color=color, alpha=0.35, ms=5)
        acc_ax.errorbar(a, y, xerr=sa, fmt="o", color=color, capsize=3)
        acc_ax.annotate(
            f"{a:.2f} %", (a, y), textcoords="offset points", xytext=(0, 6), ha="center",
            fontsize=8, color=color,
        )  # fmt: skip
        time_ax.barh(y, t, xerr=st, color=color, alpha=0.75, capsize=3, height=0.6)
        time_ax.annotate(
            f"{t:.0f} s", (t + st, y), textcoords="offset points", xytext=(5, 0),
            va="center", fontsize=8,
        )  # fmt: skip
    acc_ax.axvline(TARGET, color="grey", lw=0.8, ls="--")
    acc_ax.set_yticks(ys, [("↳ " if r.get("branch") else "") + r["rung"] for r in rows])
    acc_ax.invert_yaxis()  # the first rung on top
    acc_ax.set_xlabel("test accuracy % (mean ± std over seeds; dots: seeds)")
    time_ax.set_xlabel("training seconds (mean ± std)")
    time_ax.set_xlim(0, max(r["seconds"][0] + r["seconds"][1] for r in rows) * 1.18)
    for ax in axes:
        ax.grid(axis="x", alpha=0.3)
    fig = acc_ax.figure
    fig.suptitle("The speedrun ladder, one trick per rung (red: did not pay; ↳: a branch)")
    return fig
