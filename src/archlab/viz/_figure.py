"""What every figure shares: the backend chosen once, saving, and placing axes by hand.

The backend is picked when this module is imported, before pyplot can be: Agg where there
is no display, else the ``$MPLBACKEND`` that matplotlib can use. Figures drawn only to be
written to a file are made with ``matplotlib.figure.Figure``; pyplot is imported inside
the functions that open a figure with it, so notebooks still get managed figures while
``curves.png`` at the end of ``archlab train`` does not pay pyplot's import (0.5 s on 2
cores, on top of matplotlib.figure's).

Figures that ``save_figure`` writes are saved as laid out. Ours are either constrained
or placed by hand in inches (:func:`add_axes_inches`, :func:`colorbar_beside`,
:func:`panel_grid`): a constrained layout makes matplotlib draw the figure once more only
to measure its labels, which is most of the saving time of a figure with many panels.
"""

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

from matplotlib.figure import Figure  # noqa: E402

# a 16:9 slide, inches (PowerPoint's and Keynote's widescreen): every figure fits in it at
# its own size, or scaled down no further than its smallest text stays readable
SLIDE_WIDTH, SLIDE_HEIGHT = 13.33, 7.5

from archlab._atomic import atomic_path  # noqa: E402


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
        close_figure(fig)
    return Path(path)


def _inline_kernel() -> bool:
    """Inside a Jupyter kernel drawing inline: a figure pyplot holds would show twice there
    (once when the cell ends, once as the value the cell returns)."""
    if "ipykernel" not in sys.modules:
        return False
    import matplotlib

    return "inline" in matplotlib.get_backend().lower()


def figure(**kwargs) -> Figure:
    """A new Figure: pyplot's (scripts, ``plt.show()``, sphinx-gallery's scraper) except in
    an inline Jupyter kernel, where a Figure of its own shows once, as the cell's value."""
    if _inline_kernel():
        from matplotlib.backends.backend_agg import FigureCanvasAgg

        fig = Figure(**kwargs)
        FigureCanvasAgg(fig)
        return fig
    import matplotlib.pyplot as plt

    return plt.figure(**kwargs)


def subplots(nrows: int = 1, ncols: int = 1, *, figsize=None, layout=None, **kwargs):
    """``(fig, axes)`` as ``plt.subplots`` gives them, on a :func:`figure`."""
    fig = figure(figsize=figsize, layout=layout)
    return fig, fig.subplots(nrows, ncols, **kwargs)


def close_figure(fig: Figure) -> None:
    """Let go of ``fig`` (pyplot keeps the figures it opened until they are closed)."""
    if fig.canvas.manager is not None:
        import matplotlib.pyplot as plt

        plt.close(fig)


def _new_ax(ax, figsize=(4, 4)):
    if ax is None:
        _, ax = subplots(figsize=figsize, layout="constrained")
    return ax.figure, ax


def _symmetric(values) -> float:
    vmax = float(abs(values).max()) if values.numel() else 1.0
    return vmax or 1.0


def add_axes_inches(fig: Figure, x: float, y: float, width: float, height: float):
    """An axes at ``(x, y)`` inches from the figure's lower left, ``width × height``."""
    w, h = fig.get_size_inches()
    return fig.add_axes((x / w, y / h, width / w, height / h))


def colorbar_beside(ax, width: float = 0.12, pad: float = 0.08, fontsize: float | None = None):
    """A colour bar for the last image on ``ax``, ``pad`` inches right of it and as tall,
    in the room a hand-placed layout left there (the panel keeps its size). Returns it."""
    fig = ax.figure
    w = fig.get_size_inches()[0]
    box = ax.get_position()
    cax = fig.add_axes((box.x1 + pad / w, box.y0, width / w, box.height))
    bar = fig.colorbar(ax.images[-1], cax=cax)
    if fontsize is not None:
        bar.ax.tick_params(labelsize=fontsize)
    return bar


def panel_grid(fig, titles, panel, left, right, below, suptitle) -> list[list]:
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
            placed.append(add_axes_inches(fig, x, y, panel, panel))
            x += panel + right[c]
        axes.append(placed)
        y -= room
    return axes


def wrap_title(text: str, inches: float, fontsize: float) -> str:
    """``text`` in lines that fit ``inches`` at ``fontsize`` points: a long run name
    (``cnn+layer2.0.padding=1+fc1.in_features=3136``) breaks after a ``+``, ``,`` or
    space, and where those are not enough after a ``.``, ``_``, ``:`` or ``/``
    (``pocket_mobilenet.PocketMobileNet``), never mid-word unless one word is longer
    than a line, and never off the figure's edge.

    Example:

        >>> wrap_title("cnn+layer2.0.padding=1+fc1.in_features=3136 predicts", 2.0, 10)
        'cnn+layer2.0.padding=1+\\nfc1.in_features=3136\\npredicts'
        >>> wrap_title("pocket_mobilenet.PocketMobileNet: 91.20%", 1.6, 10)
        'pocket_mobilenet.\\nPocketMobileNet:\\n91.20%'
    """
    import re

    # DejaVu Sans averages about 0.6 em a character; a little room to spare
    most = max(8, int(inches * 72 / (0.62 * fontsize)))
    lines: list[str] = []
    for paragraph in text.split("\n"):
        line = ""
        for word in re.findall(r"[^+, ]+[+, ]*|[+, ]+", paragraph):
            # a word longer than a line breaks after its dots, underscores, colons,
            # slashes (a number's decimal point is not such a place)
            pieces = [word] if len(word) <= most else _pieces(word)
            for piece in pieces:
                if line and len(line) + len(piece.rstrip()) > most:
                    lines.append(line.rstrip())
                    line = ""
                while len(piece) > most:  # one piece longer than a line: cut it
                    lines.append(piece[:most])
                    piece = piece[most:]
                line += piece
        lines.append(line.rstrip())
    return "\n".join(lines)


def _pieces(word: str) -> list[str]:
    """``word`` cut after each ``.``, ``_``, ``:`` or ``/`` that is not between digits."""
    import re

    return [p for p in re.split(r"(?<=[._:/])(?!\d)", word) if p]
