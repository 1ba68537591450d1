"""What the picture shows, before where: the trace grouped into stages, one per tensor drawn.

A stage is one tensor of the trace and the layers that made it. Layers that keep the shape
and only transform values (BatchNorm, ReLU, Dropout) are folded into the stage before them,
as every textbook picture does: ``32@28×28`` after Conv2d + BatchNorm2d + ReLU is one box.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from archlab.trace.formulas import Shape, fmt_shape
from archlab.trace.shapes import FUNCTIONAL

INPUT = -1  # in a row's ``inputs``: the model's input


def tensor_label(shape: Shape | None) -> str:
    """``(32, 28, 28)`` → ``32@28×28`` (the LeNet figure's notation); ``(2304,)`` → ``2304``."""
    if shape is None:
        return "?"
    if len(shape) >= 3:
        return f"{shape[0]}@{fmt_shape(shape[1:])}"
    return fmt_shape(shape)


@dataclass
class Kernel:
    """The window a convolution or pooling layer slides over the tensor it reads.

    ``groups``: a convolution's channel groups (``in_channels`` for a depthwise one, whose
    each filter reads one channel); ``depthwise``: ``groups == in_channels``.
    """

    size: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int]
    dilation: tuple[int, int] = (1, 1)
    groups: int = 1
    depthwise: bool = False

    @property
    def extent(self) -> tuple[int, int]:
        """The input pixels one window spans: ``d·(k − 1) + 1`` per side."""
        return tuple(d * (k - 1) + 1 for k, d in zip(self.size, self.dilation, strict=True))

    @property
    def lines(self) -> list[str]:
        """``["3×3", "stride 1", "pad 1"]``, then ``dilation 2`` and ``groups 32
        (depthwise)`` where they are not 1; a pair prints once when both sides agree."""

        def one(pair: tuple[int, int]) -> str:
            return str(pair[0]) if pair[0] == pair[1] else fmt_shape(pair)

        lines = [fmt_shape(self.size), f"stride {one(self.stride)}", f"pad {one(self.padding)}"]
        if self.dilation != (1, 1):
            lines.append(f"dilation {one(self.dilation)}")
        if self.groups != 1:
            lines.append(f"groups {self.groups}{' (depthwise)' if self.depthwise else ''}")
        return lines


@dataclass
class Stage:
    """One tensor of the trace and the layers that produced it.

    ``rows`` are indices into ``report.layers`` (empty for the input), ``inputs`` are
    indices of the stages it reads, ``kernel`` the window its first layer slides over
    them (None for layers without one).
    """

    label: str
    shape: Shape | None
    rows: list[int] = field(default_factory=list)
    inputs: list[int] = field(default_factory=list)
    names: list[str] = field(default_factory=list)  # the first layer, then the folded ones
    types: list[str] = field(default_factory=list)
    params: int = 0
    kernel: Kernel | None = None
    step: str | None = None  # what happens between the input and this tensor ("flatten",
    # "global mean", "last step")
    formula: str | None = None  # the flatten's ``64·6·6 = 2304``
    failed: bool = False
    lines: list[str] | None = None  # a caption of its own (the claim picture's)

    @property
    def is_map(self) -> bool:
        return self.shape is not None and len(self.shape) >= 2

    @property
    def caption(self) -> list[str]:
        """Lines under the tensor: the layer, what was folded in, the parameters."""
        if self.lines is not None:
            return self.lines
        if not self.rows and not self.failed:
            return ["input"]
        # a call in forward (flatten, view) has no layer name worth a line
        lines = [self.types[0]] if self.names[0] == FUNCTIONAL else [self.names[0], self.types[0]]
        if self.formula:
            lines.append(self.formula)
        lines += [f"+ {t}" for t in self.types[1:]]
        if not self.failed:
            lines.append(f"{self.params:,} params")
        return lines


def row_inputs(report) -> list[list[int]]:
    """Each row's ``inputs``; a tracer without that field traced a chain."""
    rows = report.layers
    return [
        [i - 1] if getattr(r, "inputs", None) is None else list(r.inputs)
        for i, r in enumerate(rows)
    ]


def is_chain(report) -> bool:
    """True when every row reads the row before it (the model has no branches)."""
    return all(inputs == [i - 1] for i, inputs in enumerate(row_inputs(report)))


def _kernel(module) -> Kernel | None:
    size = getattr(module, "kernel_size", None)
    if size is None:
        return None

    def pair(value, default: int) -> tuple[int, int]:
        if value is None:
            value = default
        if isinstance(value, str):  # Conv2d(padding="same")
            return (0, 0)
        value = tuple(value) if isinstance(value, (tuple, list)) else (value,)
        return (value[0], value[-1])

    k = pair(size, 1)
    groups = getattr(module, "groups", 1)
    # MaxPool2d's stride defaults to its kernel size
    return Kernel(
        k,
        pair(getattr(module, "stride", None) or size, 1),
        pair(module.padding, 0),
        pair(getattr(module, "dilation", 1), 1),
        groups,
        groups > 1 and groups == getattr(module, "in_channels", None),
    )


_REDUCTION_WORDS = {
    "mean": "mean",
    "sum": "sum",
    "amax": "max",
    "max": "max",
    "amin": "min",
    "min": "min",
    "logsumexp": "logsumexp",
    "std": "std",
    "var": "var",
    "prod": "product",
}


def step_name(row) -> str:
    """What a row that makes a flat tensor out of a bigger one does, in words.

    Args:
        row: a row of the trace (its ``type`` and per-sample ``input``).

    Returns:
        ``flatten`` (flatten, view, reshape), ``global mean`` (a mean over every spatial
        dim: NiN's head), ``last step`` / ``first step`` (an RNN's ``[:, -1]``),
        ``index [..]`` for another index, else the row's type.
    """
    kind = row.type
    base = kind.split("(")[0].removeprefix("torch.").removeprefix("F.")
    if base in ("flatten", "view", "reshape", "Flatten"):
        return "flatten"
    if base in _REDUCTION_WORDS:
        word = _REDUCTION_WORDS[base]
        spatial = row.input is not None and len(row.input) >= 3
        return f"global {word}" if spatial else f"{word} over a dim"
    if base.startswith(("adaptive_avg_pool", "AdaptiveAvgPool")):
        return "global mean"
    if base.startswith(("adaptive_max_pool", "AdaptiveMaxPool")):
        return "global max"
    if kind.startswith("["):
        items = [i.strip() for i in kind.strip("[]").split(",")]
        if len(row.input) == 2 and len(items) == 2 and items[0] == ":":
            if items[1] == "-1":
                return "last step"
            if items[1] == "0":
                return "first step"
        return f"index {kind}"
    return kind


def _folds(row, inputs: list[int], consumers: dict[int, int]) -> bool:
    """A layer that keeps the shape, has no window and no weights matrix joins its producer."""
    return (
        len(inputs) == 1
        and inputs[0] != INPUT
        and consumers.get(inputs[0], 0) == 1
        and row.output is not None
        and tuple(row.output) == tuple(row.input)
        and not row.type.startswith(("Conv", "Linear", "Lazy"))
    )


def _own_params(row, module, counted: set[int]) -> int:
    """The parameters a row brings that no row before it counted: a layer's (or a folded
    block's) all; an operation in a forward (``F.relu``, ``add``, named after the module
    whose forward calls it) only that module's own tensors (``F.linear(x, self.weight)``),
    never its children's, which have rows of their own. Each tensor once (shared weights)."""
    if module is None:
        return 0
    tensors = module.parameters(recurse=not getattr(row, "functional", False))
    new = [p for p in tensors if id(p) not in counted]
    counted.update(id(p) for p in new)
    return sum(p.numel() for p in new)


def stages(report, modules: dict) -> list[Stage]:
    """The stages of a traced model: the input, then one per tensor drawn.

    Args:
        report: a :class:`~archlab.ShapeReport`.
        modules: ``dict(model.named_modules())``, for kernels and parameter counts.
    """
    inputs = row_inputs(report)
    consumers: dict[int, int] = {}
    for ins in inputs:
        for j in ins:
            consumers[j] = consumers.get(j, 0) + 1
    out = [Stage(tensor_label(report.input_shape), tuple(report.input_shape))]
    stage_of = {INPUT: 0}
    counted: set[int] = set()
    for i, row in enumerate(report.layers):
        module = modules.get(row.name)
        params = _own_params(row, module, counted)
        if _folds(row, inputs[i], consumers):
            stage = out[stage_of[inputs[i][0]]]
            stage.rows.append(i)
            stage.types.append(row.type)
            stage.names.append(row.name)
            stage.params += params
            stage_of[i] = stage_of[inputs[i][0]]
            continue
        reads = [stage_of[j] for j in inputs[i] if j in stage_of]
        stage = Stage(
            tensor_label(row.output),
            tuple(row.output) if row.output is not None else None,
            [i],
            reads,
            [row.name],
            [row.type],
            params,
            _kernel(module),
        )
        if stage.shape is not None and len(stage.shape) == 1 and len(row.input) > 1:
            stage.step = step_name(row)  # what the op does: a global mean is no flatten
            stage.formula = row.formula
        stage_of[i] = len(out)
        out.append(stage)
    if report.error is not None:
        e = report.error
        out.append(
            Stage(
                "✗",
                None,
                inputs=[len(out) - 1],
                names=[e.layer],
                types=[e.type],
                kernel=_kernel(modules.get(e.layer)),
                failed=True,
            )
        )
    return out
