"""Models that branch, drawn as a graph: Graphviz lays it out, archlab only says what is in it.

Graphviz's ``dot`` is the layout engine: decades old, packaged everywhere (Debian's
``graphviz``, Homebrew, conda), used by torchview and torchviz for the same job; the
``graphviz`` Python package is a thin, pure-Python driver for it. Writing a layered graph
layout (crossing minimisation, edge routing) here would be a project of its own.
"""

from __future__ import annotations

import html
import textwrap
from dataclasses import dataclass, field

from archlab.drawing._stages import Stage
from archlab.errors import ArchlabError

INSTALL = (
    "drawing a model that branches needs Graphviz: install its `dot` (Debian/Ubuntu: "
    "apt-get install graphviz; macOS: brew install graphviz; conda: conda install graphviz) "
    "and the Python package (pip install graphviz)"
)


@dataclass
class Node:
    id: str
    lines: list[str]  # the tensor's label first
    kind: str  # input, layer, merge, failed


@dataclass
class Edge:
    src: str
    dst: str
    label: str  # the tensor that travels along it


@dataclass
class GraphLayout:
    """What the graph shows; Graphviz decides where."""

    title: str
    nodes: list[Node] = field(default_factory=list)
    edges: list[Edge] = field(default_factory=list)
    error: str | None = None
    rows: list[list[str]] = field(default_factory=list)  # node ids, one row per block

    def labels(self) -> list[str]:
        return [line for n in self.nodes for line in n.lines] + [e.label for e in self.edges]


# nodes to a row at most: five boxes of about 1.6 in are a 13.33 in slide's width
ROW = 5


def block_rows(stages: list[Stage], most: int = ROW) -> list[list[int]]:
    """The stages in rows that read left to right, one block of the model per row, so that
    the graph wraps like text instead of running off a slide's right edge.

    A block is the stages whose first layer shares a name prefix (``stage1.conv1``,
    ``stage1.shortcut`` → ``stage1``): the shallowest prefix that keeps every block within
    ``most`` stages (a longer run of one prefix is cut). Neighbouring small blocks share a
    row while it has room (the input joins the stem, ``head``'s three layers one row).
    """

    def prefix(stage: Stage, level: int) -> str:
        name = next((n for n in stage.names if "(" not in n), "") if stage.names else ""
        return ".".join(name.split(".")[:level]) if name else ""

    for level in (1, 2, 3):
        blocks: list[list[int]] = []
        for k, stage in enumerate(stages):
            key = prefix(stage, level) if k else None
            if blocks and (key is None or key == prefix(stages[blocks[-1][-1]], level) or k == 1):
                blocks[-1].append(k)
            else:
                blocks.append([k])
        if max(len(b) for b in blocks) <= most:
            break
    rows: list[list[int]] = []
    for block in blocks:
        for start in range(0, len(block), most):
            piece = block[start : start + most]
            if rows and len(rows[-1]) + len(piece) <= most and len(piece) < 3:
                rows[-1] += piece
            else:
                rows.append(piece)
    return rows


def graph_layout(stages: list[Stage], title: str, error: str | None = None) -> GraphLayout:
    """One node per stage, one edge per tensor read; a merge lists every tensor it reads;
    the nodes in :func:`block_rows`."""
    layout = GraphLayout(title, error=error)
    layout.rows = [[f"s{k}" for k in row] for row in block_rows(stages)]
    for k, s in enumerate(stages):
        lines = [s.label, *s.caption]
        if s.kernel is not None:
            lines.insert(3 if len(lines) > 3 else len(lines), ", ".join(s.kernel.lines))
        if s.step and s.step not in lines:  # what made it: a flatten, a global mean
            lines.insert(1, s.step)
        if len(s.inputs) > 1:  # a merge: what it reads, before its parameter count
            reads = [stages[j].label for j in s.inputs]
            lines.insert(len(lines) - 1, f"from {', '.join(reads[:-1])} and {reads[-1]}")
        kind = "input" if k == 0 else "failed" if s.failed else "layer"
        if len(s.inputs) > 1:
            kind = "merge"
        layout.nodes.append(Node(f"s{k}", lines, kind))
        layout.edges += [Edge(f"s{j}", f"s{k}", stages[j].label) for j in s.inputs]
    return layout


_STYLE = {
    "input": {"fillcolor": "#e0e0e0"},
    "layer": {"fillcolor": "#c6dbef"},
    "merge": {"fillcolor": "#fdd0a2", "shape": "box", "style": "rounded,filled,bold"},
    "failed": {"fillcolor": "white", "color": "#c0392b", "style": "rounded,dashed"},
}


def to_digraph(layout: GraphLayout):
    """The ``graphviz.Digraph``: each row of ``layout.rows`` left to right, the rows top
    to bottom, so that a deep model wraps to a slide's shape instead of one long line."""
    try:
        import graphviz
    except ImportError as exc:
        raise ArchlabError(INSTALL, 2) from exc
    g = graphviz.Digraph(
        graph_attr={
            "rankdir": "TB",
            "fontname": "DejaVu Sans",
            "fontsize": "11",
            "labelloc": "t",
            "labeljust": "l",
            "nodesep": "0.25",
            "ranksep": "0.3",
            "newrank": "true",
        },
        node_attr={
            "shape": "box",
            "style": "rounded,filled",
            "fontname": "DejaVu Sans",
            "fontsize": "9",
            "margin": "0.12,0.05",
        },
        edge_attr={"fontname": "DejaVu Sans", "fontsize": "8", "color": "#555555"},
    )
    caption = html.escape(layout.title)
    if layout.error:
        lines = textwrap.wrap(layout.error, 110)
        caption += "".join(f'<br/><font color="#c0392b">{html.escape(x)}</font>' for x in lines)
    g.attr(label=f"<{caption}>")
    for node in layout.nodes:
        head, *rest = (html.escape(line) for line in node.lines)
        text = "<br/>".join([f"<b>{head}</b>", *rest])
        g.node(node.id, f"<{text}>", **_STYLE[node.kind])
    for row in layout.rows:
        with g.subgraph() as same:
            same.attr(rank="same")
            for node in row:
                same.node(node)
    # each row starts under the one above (a heavy invisible edge), not where its first
    # input ended: without it the rows step down and right like a staircase
    for above, below in zip(layout.rows, layout.rows[1:], strict=False):
        g.edge(above[0], below[0], style="invis", weight="100")
    for edge in layout.edges:
        g.edge(edge.src, edge.dst, label=f" {edge.label} ")
    return g


def render_graph(layout: GraphLayout, fmt: str) -> bytes:
    """``svg`` or ``png`` bytes from Graphviz's ``dot``."""
    g = to_digraph(layout)  # says how to install the package where it is missing
    import graphviz

    try:
        return g.pipe(format=fmt)
    except graphviz.ExecutableNotFound as exc:
        raise ArchlabError(INSTALL, 2) from exc
