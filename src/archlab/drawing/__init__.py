"""Architecture pictures, to scale, from the shape trace.

A chain of layers is drawn the way the LeNet paper drew its network (matplotlib): feature
maps as boxes shrinking and deepening, kernels as windows on the maps they read, the
flatten, then the fully connected layers as columns. A model that branches is drawn as a
graph by Graphviz. Either way the numbers come from :func:`archlab.trace_shapes`.

``_stages`` decides what is drawn, ``_layout`` where (both plain data, tested without
drawing), ``_render`` and ``_graph`` draw it.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

from archlab.drawing._graph import GraphLayout, graph_layout, render_graph
from archlab.drawing._layout import ChainLayout, chain_layout
from archlab.drawing._stages import Stage, is_chain, stages, tensor_label
from archlab.errors import ArchlabError, cannot_write

SUFFIXES = (".svg", ".png")

# What the lecture said its first maps were (REFERENCE: "the first Conv2d outputs
# [32, 784, 784] and the first MaxPool2d [32, 392, 392]"): 784 is the flattened image.
_CLAIM_FACE = 200.0  # points: the claimed 784 side in the claim picture


class Drawing:
    """A model's picture: what :func:`archlab.draw` returns.

    Shows itself in Jupyter (SVG); :meth:`save` writes ``.svg`` or ``.png``; :meth:`plot`
    draws it with matplotlib. ``kind`` is ``"chain"``, ``"graph"`` or ``"claim"``;
    ``layout`` holds every box and label with its place (a chain) or every node and edge
    (a graph); ``report`` is the trace it was drawn from.

    Example::

        >>> picture = archlab.draw("cnn")
        >>> picture.kind, [b.label for b in picture.layout.boxes][:3]
        ('chain', ['1@28×28', '32@28×28', '32@14×14'])
    """

    def __init__(self, kind: str, report, stages: list[Stage], layout) -> None:
        self.kind = kind
        self.report = report
        self.stages = stages
        self.layout: ChainLayout | GraphLayout = layout

    def __repr__(self) -> str:
        fits = "" if self.report.error is None else f", fails at {self.report.error.layer}"
        count = f"{len(self.stages)} tensors"
        return f"<archlab.Drawing {self.kind} of {self.report.model}: {count}{fits}>"

    @property
    def fingerprint(self) -> str:
        """A hash of what the picture shows (labels, box sizes, the drawing code), written
        into saved files so that a test can tell a stale picture from a current one."""
        if isinstance(self.layout, GraphLayout):
            data: object = asdict(self.layout)
        else:
            data = {
                "texts": [(t.text, t.role) for t in self.layout.texts],
                "boxes": [
                    (b.kind, b.label, round(b.width, 2), round(b.height, 2), round(b.depth, 2))
                    for b in self.layout.boxes
                ],
                "windows": [
                    (w.box, round(w.width, 2), round(w.height, 2)) for w in self.layout.windows
                ],
            }
        sources = ("_graph.py",) if self.kind == "graph" else ("_layout.py", "_render.py")
        code = b"".join((Path(__file__).parent / name).read_bytes() for name in sources)
        digest = hashlib.sha256(json.dumps(data, ensure_ascii=False).encode() + code)
        return digest.hexdigest()[:16]

    def plot(self, ax=None):
        """Draw with matplotlib on ``ax`` (default: a new figure at the picture's size) and
        return the Figure; a graph is drawn by Graphviz and shown as an image."""
        if isinstance(self.layout, ChainLayout):
            from archlab.drawing._render import render_chain

            return render_chain(self.layout, ax)
        import io

        from archlab.viz import plt

        png = render_graph(self.layout, "png")
        image = plt.imread(io.BytesIO(png))
        if ax is None:
            h, w = image.shape[:2]
            from archlab.viz._figure import figure

            fig = figure(figsize=(w / 96, h / 96))
            ax = fig.add_axes((0, 0, 1, 1))
        ax.imshow(image)
        ax.axis("off")
        return ax.figure

    def to_bytes(self, fmt: str = "svg") -> bytes:
        """The picture as ``svg`` or ``png`` bytes."""
        if fmt not in ("svg", "png"):
            raise ArchlabError(f"a picture is written as svg or png, not {fmt!r}")
        if isinstance(self.layout, GraphLayout):
            return render_graph(self.layout, fmt)
        import io

        from archlab.viz import plt
        from archlab.viz._figure import close_figure

        fig = self.plot()
        buffer = io.BytesIO()
        # text as paths looks the same everywhere; matplotlib keeps each line as an SVG
        # comment, and a fixed salt and no date make the same picture the same bytes
        rc = {"svg.fonttype": "path", "svg.hashsalt": "archlab"}
        metadata = {"Description": f"archlab draw {self.fingerprint}"}
        if fmt == "svg":
            metadata["Date"] = None
        try:
            with plt.rc_context(rc):
                fig.savefig(buffer, format=fmt, dpi=150, metadata=metadata)
        finally:
            close_figure(fig)
        return buffer.getvalue()

    def save(self, path: str | Path) -> Path:
        """Write the picture as its suffix says (``.svg`` or ``.png``), atomically."""
        from archlab._atomic import atomic_path

        path = Path(path)
        check_suffix(path)
        data = self.to_bytes(path.suffix.lower().lstrip("."))
        try:
            with atomic_path(path) as partial:
                partial.write_bytes(data)
        except OSError as exc:
            raise cannot_write(path, exc) from exc
        return path

    def _repr_svg_(self) -> str:
        return self.to_bytes("svg").decode()


def check_suffix(path: str | Path) -> None:
    """Refuse a file name whose suffix is neither .svg nor .png."""
    if Path(path).suffix.lower() not in SUFFIXES:
        raise ArchlabError(f"{path}: write a .svg or .png file (the suffix names the format)")


def _build(model, overrides: Sequence[str]):
    from archlab.models.spec import resolve_model

    return resolve_model(model, overrides)[0]


def draw(
    model,
    input_shape: Sequence[int] | None = None,
    overrides: Sequence[str] = (),
    claim: bool = False,
    graph: bool | None = None,
    *,
    depth: int | None = None,
) -> Drawing:
    """Draw a model's architecture, to scale, from its shape trace.

    A chain of layers becomes the LeNet-style picture: each feature map a box whose height
    and width are its H and W at one linear scale (a bar on the picture says how many
    pixels) and whose depth grows with log₂ of its channels, labelled ``32@28×28``; each
    kernel a window on the map it reads, with its size, stride and padding; the flatten;
    the Linear layers as columns; the parameters of each stage underneath. A model that
    branches becomes a graph (Graphviz) with the same labels. A chain that does not fit
    is drawn up to the layer that fails, with the diagnosis as the caption.

    Args:
        model: a registered name, ``"file.py:Class"``, ``"pkg.mod:fn(num_classes=10)"``,
            or an ``nn.Module`` (left as it was).
        input_shape: the per-sample ``(C, H, W)``. Default: the model's.
        overrides: what-ifs like ``["layer2.0.padding=1"]``. Default: none.
        claim: draw the lecture's claimed maps ([32, 784, 784], [32, 392, 392]) next to
            the traced ones at one scale (the lecture's ``cnn`` only). Default: False.
        graph: True draws a graph, False a chain; default (None): a graph only where the
            model branches. A graph is laid out one block of the model to a row, the rows
            top to bottom, so that it keeps a slide's shape.
        depth: draw each module this deep as one box (as :func:`archlab.trace_shapes`'s
            ``depth``); ``depth=1`` folds resnet's residual blocks, and a model whose
            branches all fold away is drawn as a chain. Default: None, every layer.

    Returns:
        A :class:`Drawing`: ``.save("cnn.svg")``, ``.plot(ax=None)`` → Figure, and an
        SVG in Jupyter.

    Example::

        >>> picture = archlab.draw("cnn")
        >>> [b.label for b in picture.layout.boxes]
        ['1@28×28', '32@28×28', '32@14×14', '64@12×12', '64@6×6', '2304', '600', '120', '10']
    """
    from archlab.models.spec import model_name
    from archlab.trace.shapes import trace_shapes

    built = _build(model, overrides)
    from archlab.models import IMAGE_SHAPE

    shape = input_shape if input_shape is not None else getattr(built, "input_shape", IMAGE_SHAPE)
    report = trace_shapes(built, shape, depth=depth)
    report.model, report.overrides = model_name(model), list(overrides)
    modules = dict(built.named_modules())
    parts = stages(report, modules)
    total = sum(p.numel() for p in built.parameters())
    changed = f" with {', '.join(overrides)}" if overrides else ""
    title = (
        f"{report.model}{changed}: input {tensor_label(report.input_shape)}, {total:,} parameters"
    )
    error = None
    if report.error is not None:
        error = f"✗ does not fit: {report.error}"
    elif report.mismatches:
        error = "archlab BUG (please report): " + "; ".join(report.mismatches)
    if claim:
        return _claim(report, parts)
    if graph is None:
        graph = not is_chain(report)
    if graph:
        return Drawing("graph", report, parts, graph_layout(parts, title, error))
    notes = [
        "To scale: the front of each box is the feature map's H × W (the bar above is "
        "that many pixels); its depth grows with log₂ of the channels."
    ]
    if any(s.shape is not None and not s.is_map for s in parts):
        notes.append("Each flat tensor is a column whose height grows with √(features).")
    return Drawing("chain", report, parts, chain_layout(parts, title, notes, error))


def _claim(report, parts: list[Stage]) -> Drawing:
    """The lecture's claimed maps beside the traced ones, at one scale."""
    from archlab.models import is_model, list_models, model_card

    claims = model_card(report.model).lecture_claims if is_model(report.model) else ()
    if not claims:
        known = ", ".join(n for n in list_models() if model_card(n).lecture_claims)
        raise ArchlabError(f"--claim: the lecture claimed shapes for {known} only")
    rows = {r.name: r for r in report.layers}
    claimed, traced = [], []
    for name, shape in claims:
        row = rows.get(name)
        if row is None or row.output is None:
            raise ArchlabError(f"--claim: the trace stops before {name}: {report.error}", 1)
        common = [f"{name} {row.type}"]
        claimed.append(
            Stage(
                tensor_label(shape),
                shape,
                names=[name],
                types=[row.type],
                lines=["the lecture's claim", *common, f"{math.prod(shape):,} values"],
            )
        )
        traced.append(
            Stage(
                tensor_label(row.output),
                tuple(row.output),
                names=[name],
                types=[row.type],
                lines=["the trace", *common, f"{math.prod(row.output):,} values"],
            )
        )
    for group, start in ((claimed, 0), (traced, len(claimed))):
        for i, stage in enumerate(group[1:], 1):
            stage.inputs = [start + i - 1]
    together = claimed + traced
    biggest = max(max(s.shape[1:]) for s in together)
    first, real = claims[0][1], rows[claims[0][0]].output
    title = (
        f"{report.model}: the lecture's {list(first)} against the trace's "
        f"{tensor_label(real)}, at one scale"
    )
    ratio = math.prod(first) / math.prod(real)
    notes = [
        f"The lecture took 784, the length of the flattened 28×28 image, for the side of the "
        f"map: its maps hold {ratio:,.0f} times the values the trace finds. Boxes' fronts are "
        "H × W at one scale (the bar above); depth grows with log₂ of the channels."
    ]
    layout = chain_layout(
        together, title, notes, px=_CLAIM_FACE / biggest, depth_scale=0.3, kernels=False
    )
    return Drawing("claim", report, together, layout)
