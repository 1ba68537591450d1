"""Drawing a computed :class:`ChainLayout` with matplotlib; no decisions about places here."""

from __future__ import annotations

from archlab.drawing._layout import ChainLayout

# blues for feature maps, oranges for flat tensors (the face, the top, the side)
_COLOURS = {
    "map": ("#9ecae1", "#c6dbef", "#6baed6"),
    "column": ("#fdae6b", "#fdd0a2", "#fd8d3c"),
}
_TEXT_COLOURS = {"error": "#c0392b", "note": "0.35", "step": "0.25"}
_KERNEL = "#c0392b"


def render_chain(layout: ChainLayout, ax=None):
    """Draw ``layout`` on ``ax`` (default: a new figure exactly the layout's size, where one
    point of the layout is one typographic point) and return the Figure."""
    from matplotlib.patches import Polygon, Rectangle

    from archlab.viz._figure import figure  # the headless backend choice lives there

    x0, y0, x1, y1 = layout.bounds
    if ax is None:
        fig = figure(figsize=((x1 - x0) / 72, (y1 - y0) / 72))
        ax = fig.add_axes((0, 0, 1, 1))
    fig = ax.figure
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_aspect("equal")
    ax.axis("off")

    for box in layout.boxes:
        x, y, w, h, d = box.x, box.y, box.width, box.height, box.depth
        if box.kind == "failed":
            ax.add_patch(Rectangle((x, y), w, h, fill=False, ec=_KERNEL, ls="--", lw=1.2, zorder=2))
            continue
        face, top, side = _COLOURS[box.kind]
        edge = {"ec": "0.25", "lw": 0.6, "zorder": 2}
        ax.add_patch(
            Polygon(
                [(x, y + h), (x + d, y + h + d), (x + w + d, y + h + d), (x + w, y + h)],
                fc=top,
                **edge,
            )
        )
        ax.add_patch(
            Polygon(
                [(x + w, y), (x + w + d, y + d), (x + w + d, y + h + d), (x + w, y + h)],
                fc=side,
                **edge,
            )
        )
        ax.add_patch(Rectangle((x, y), w, h, fc=face, **edge))

    for win in layout.windows:
        ax.add_patch(
            Rectangle((win.x, win.y), win.width, win.height, fc=_KERNEL, alpha=0.35, zorder=3)
        )
        ax.add_patch(
            Rectangle(
                (win.x, win.y), win.width, win.height, fill=False, ec=_KERNEL, lw=0.8, zorder=3
            )
        )
        if win.target is not None:
            tx, ty, side = win.target
            ax.add_patch(Rectangle((tx, ty), side, side, fc=_KERNEL, zorder=3))
            for cx, cy in ((win.x + win.width, win.y + win.height), (win.x + win.width, win.y)):
                ax.plot([cx, tx], [cy, ty + side / 2], color=_KERNEL, lw=0.6, zorder=3)

    for xa, xb, y in layout.arrows:
        ax.annotate(
            "",
            xy=(xb, y),
            xytext=(xa, y),
            arrowprops={
                "arrowstyle": "-|>",
                "color": "0.45",
                "lw": 0.8,
                "shrinkA": 0,
                "shrinkB": 0,
            },
            zorder=1,
        )

    if layout.scale_bar is not None:
        x, y, length, _ = layout.scale_bar
        tick = 2.5
        ax.plot([x, x + length], [y, y], color="0.2", lw=1)
        ax.plot([x, x], [y - tick, y + tick], color="0.2", lw=1)
        ax.plot([x + length, x + length], [y - tick, y + tick], color="0.2", lw=1)

    for t in layout.texts:
        ax.text(
            t.x,
            t.y,
            t.text,
            fontsize=t.size,
            ha=t.ha,
            va=t.va,
            color=_TEXT_COLOURS.get(t.role, "black"),
            fontweight="bold" if t.bold else "normal",
            zorder=4,
        )
    return fig
