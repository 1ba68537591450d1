"""Where everything goes in a chain picture, in points, before anything is drawn.

Feature maps are boxes: the front face is the map's H × W at one linear scale (the largest
map's side is ``MAX_FACE`` points), and the box recedes obliquely by a depth that grows
with log₂ C. Flat tensors are columns whose height grows with √features. Text is measured
with matplotlib's font metrics so that columns and gaps are wide enough for their labels.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field

from archlab.drawing._stages import Stage

MAX_FACE = 100.0  # points: the largest map's side
MAX_COLUMN = 100.0  # points: the widest flat tensor's column
COLUMN_WIDTH = 9.0
COLUMN_DEPTH = 4.0
DEPTH_BASE = 3.0  # points of depth for one channel
DEPTH_PER_DOUBLING = 5.0  # and this much more each time the channels double
OBLIQUE = 0.7  # the depth is drawn at 45°: dx = dy = depth · OBLIQUE
FAILED_SIDE = 28.0
MIN_GAP = 26.0

TENSOR_SIZE = 9.0
CAPTION_SIZE = 7.5
STEP_SIZE = 7.0
TITLE_SIZE = 10.5
NOTE_SIZE = 7.5
LINE = 1.3  # line height, in font sizes
BOLD = ("tensor", "title")  # the roles set in bold


@functools.cache
def measure(text: str, size: float, bold: bool = False) -> float:
    """The width of ``text`` in points, by matplotlib's metrics for its default font."""
    from matplotlib.font_manager import FontProperties
    from matplotlib.textpath import TextToPath

    font = FontProperties(size=size, weight="bold" if bold else "normal")
    width, _, _ = TextToPath().get_text_width_height_descent(text, font, ismath=False)
    return width


@dataclass
class Text:
    """One line of text, anchored at (x, y) as ``ha``/``va`` say."""

    x: float
    y: float
    text: str
    size: float
    ha: str = "center"
    va: str = "baseline"
    role: str = "caption"  # tensor, caption, step, title, note, error

    @property
    def bold(self) -> bool:
        return self.role in BOLD

    @property
    def width(self) -> float:
        return measure(self.text, self.size, self.bold)

    def bbox(self) -> tuple[float, float, float, float]:
        """(x0, y0, x1, y1), with the line's full height (ascent and descent)."""
        w, h = self.width, self.size * 1.15
        x0 = {"left": self.x, "center": self.x - w / 2, "right": self.x - w}[self.ha]
        y0 = {"bottom": self.y, "top": self.y - h, "baseline": self.y - 0.25 * self.size}[self.va]
        return (x0, y0, x0 + w, y0 + h)


@dataclass
class Box:
    """A tensor drawn: its front face (x, y is the lower left corner) and its depth."""

    stage: int
    x: float
    y: float
    width: float
    height: float
    depth: float  # drawn up and to the right: dx = dy = depth
    kind: str  # map, column, failed
    label: str

    @property
    def right(self) -> float:
        return self.x + self.width + self.depth

    @property
    def top(self) -> float:
        return self.y + self.height + self.depth


@dataclass
class Window:
    """A kernel drawn on the box it reads, with the pixel it computes on the next box."""

    box: int  # index into ``boxes``
    x: float
    y: float
    width: float
    height: float
    target: tuple[float, float, float] | None  # (x, y, side) of the output pixel


@dataclass
class ChainLayout:
    """A chain picture, computed: every shape and line of text with its place, in points."""

    boxes: list[Box] = field(default_factory=list)
    windows: list[Window] = field(default_factory=list)
    arrows: list[tuple[float, float, float]] = field(default_factory=list)  # x0, x1, y
    texts: list[Text] = field(default_factory=list)
    scale_bar: tuple[float, float, float, str] | None = None  # x, y, length, label
    px: float = 1.0  # points per pixel of a feature map
    bounds: tuple[float, float, float, float] = (0.0, 0.0, 1.0, 1.0)

    def labels(self, role: str | None = None) -> list[str]:
        return [t.text for t in self.texts if role is None or t.role == role]


def _map_dims(shape: tuple[int, ...]) -> tuple[int, int, int]:
    """(C, H, W) of a map; a (C, L) sequence is C maps of L × 1."""
    if len(shape) == 2:
        return shape[0], shape[1], 1
    return shape[0], shape[-2], shape[-1]


def depth_of(channels: int, scale: float = 1.0) -> float:
    return (DEPTH_BASE + DEPTH_PER_DOUBLING * math.log2(max(channels, 1))) * OBLIQUE * scale


def wrap(text: str, size: float, width: float) -> list[str]:
    """Greedy word wrap to ``width`` points."""
    lines: list[str] = []
    for word in text.split():
        if lines and measure(f"{lines[-1]} {word}", size) <= width:
            lines[-1] += f" {word}"
        else:
            lines.append(word)
    return lines


def chain_layout(
    stages: list[Stage],
    title: str,
    notes: list[str] = (),
    error: str | None = None,
    px: float | None = None,
    depth_scale: float = 1.0,
    kernels: bool = True,
) -> ChainLayout:
    """Lay the stages out left to right.

    Args:
        stages: from :func:`archlab.drawing._stages.stages` (each reads the one before).
        title: the line above the picture.
        notes: lines under it (wrapped to the picture's width).
        error: the diagnosis, drawn as the caption in red.
        px: points per pixel. Default: the largest map's side is ``MAX_FACE`` points.
        depth_scale: a factor on every map's depth. Default: 1.
        kernels: draw each kernel's window. Default: True.
    """
    maps = [s for s in stages if s.is_map]
    if px is None:
        side = max((max(_map_dims(s.shape)[1:]) for s in maps), default=1)
        px = MAX_FACE / side
    flat = [s.shape[0] for s in stages if s.shape is not None and not s.is_map]
    n_max = max(flat, default=1)
    layout = ChainLayout(px=px)

    # sizes first
    sizes = []
    for s in stages:
        if s.failed:
            sizes.append((FAILED_SIDE, FAILED_SIDE, 0.0, "failed"))
        elif s.is_map:
            c, h, w = _map_dims(s.shape)
            sizes.append((max(w * px, 1.0), max(h * px, 1.0), depth_of(c, depth_scale), "map"))
        else:
            height = max(MAX_COLUMN * math.sqrt((s.shape[0] if s.shape else 1) / n_max), 1.0)
            sizes.append((COLUMN_WIDTH, height, COLUMN_DEPTH, "column"))

    def step_lines(k: int) -> list[str]:
        s = stages[k]
        if s.kernel is not None and kernels:
            return s.kernel.lines
        return [s.step] if s.step else []

    # left to right: each column as wide as its box or its widest label
    cursor = 0.0
    for k, (s, (w, h, d, kind)) in enumerate(zip(stages, sizes, strict=True)):
        widths = [measure(t, CAPTION_SIZE) for t in s.caption]
        extent = w + d
        col = max(extent, measure(s.label, TENSOR_SIZE, bold=True), *widths)
        if k:
            lines = step_lines(k)
            gap = max(MIN_GAP, max((measure(t, STEP_SIZE) for t in lines), default=0) + 14)
            cursor += gap
        x = cursor + (col - extent) / 2
        layout.boxes.append(Box(k, x, -h / 2, w, h, d, kind, s.label))
        cursor += col

    # text: the tensor above its box, the step in the gap, the captions on one line below
    lowest = min(b.y for b in layout.boxes)
    for k, box in enumerate(layout.boxes):
        cx = box.x + (box.width + box.depth) / 2
        label = Text(cx, box.top + 4, box.label, TENSOR_SIZE, va="bottom", role="tensor")
        layout.texts.append(label)
        prev = layout.boxes[k - 1] if k else None
        if prev is None:
            continue
        if k - 1 in stages[k].inputs:
            layout.arrows.append((prev.right + 3, box.x - 3, 0.0))
        mid = (prev.right + box.x) / 2
        for i, line in enumerate(step_lines(k)):
            y = -5 - i * STEP_SIZE * LINE
            layout.texts.append(Text(mid, y, line, STEP_SIZE, va="top", role="step"))
            lowest = min(lowest, y - STEP_SIZE * LINE)
        kernel = stages[k].kernel
        if kernel is not None and kernels and prev.kind == "map":
            layout.windows.append(_window(k - 1, prev, box, kernel.extent, px))
    top_caption = lowest - 10
    bottom = top_caption
    for box, s in zip(layout.boxes, stages, strict=True):
        cx = box.x + (box.width + box.depth) / 2
        for i, line in enumerate(s.caption):
            y = top_caption - i * CAPTION_SIZE * LINE
            role = "error" if s.failed else "caption"
            layout.texts.append(Text(cx, y, line, CAPTION_SIZE, va="top", role=role))
            bottom = min(bottom, y - CAPTION_SIZE * LINE)

    right = max(b.right for b in layout.boxes)
    left = min(b.x for b in layout.boxes)
    width = max(right - left, 320.0)
    # the scale: a bar 10 pixels long, then the notes and the diagnosis
    y = bottom - 14
    if maps:
        bar = max((n for n in (1, 2, 5, 10, 20, 50, 100, 200, 500) if n * px <= 60), default=1)
        layout.scale_bar = (left, y, bar * px, f"{bar} pixel{'s' if bar > 1 else ''}")
        layout.texts.append(
            Text(left + bar * px + 5, y, layout.scale_bar[3], NOTE_SIZE, ha="left", role="note")
        )
        y -= NOTE_SIZE * LINE * 1.4
    for note in notes:
        for line in wrap(note, NOTE_SIZE, width):
            layout.texts.append(Text(left, y, line, NOTE_SIZE, ha="left", role="note"))
            y -= NOTE_SIZE * LINE
    if error:
        y -= NOTE_SIZE * 0.5
        for line in wrap(error, CAPTION_SIZE + 0.5, width):
            layout.texts.append(Text(left, y, line, CAPTION_SIZE + 0.5, ha="left", role="error"))
            y -= (CAPTION_SIZE + 0.5) * LINE
    top = max(t.bbox()[3] for t in layout.texts)
    layout.texts.append(Text(left, top + 10, title, TITLE_SIZE, ha="left", role="title"))
    x0 = min(t.bbox()[0] for t in layout.texts)
    x1 = max(max(t.bbox()[2] for t in layout.texts), right)
    y0 = min(t.bbox()[1] for t in layout.texts)
    y1 = max(t.bbox()[3] for t in layout.texts)
    layout.bounds = (x0 - 6, y0 - 6, x1 + 6, y1 + 6)
    return layout


def _window(k: int, src: Box, dst: Box, size: tuple[int, int], px: float) -> Window:
    """The kernel near the top left of the map it reads; the pixel it makes on the next map."""
    wh, ww = size[0] * px, size[1] * px
    inset = min(0.2 * src.width, max(src.width - ww, 0))
    x, y = src.x + inset, src.y + src.height - min(0.2 * src.height, max(src.height - wh, 0)) - wh
    target = None
    if dst.kind == "map":
        side = max(px, 1.5)
        target = (
            dst.x + min(0.2 * dst.width, dst.width - side),
            dst.y + dst.height - min(0.2 * dst.height, dst.height - side) - side,
            side,
        )
    return Window(k, x, y, ww, wh, target)
