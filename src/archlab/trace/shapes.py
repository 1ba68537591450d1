"""Trace a model's shapes operation by operation, analytically, checked by a forward pass.

The forward pass runs on a zero batch of two images (cheap: no data, milliseconds), so
that an operation that mixes the images shows. Every layer and every tensor operation in
``forward`` that changes a shape or merges tensors gets a row, and each row knows which
rows it consumes (``inputs``): the trace follows the data, not the module list. Before
each runs, its analytic output is computed from its input; one that cannot take that
input stops the pass with a diagnosis and a fix. After it runs, the analytic shape is
compared with the real one: a disagreement is an archlab bug and is reported as such.
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace

import torch
from torch import nn

from archlab import _table
from archlab._modes import in_mode
from archlab._report import Report
from archlab.errors import ArchlabError
from archlab.models.spec import resolve_model
from archlab.trace import _words
from archlab.trace._batch import BATCH
from archlab.trace._engine import FUNCTIONAL, Failure, ModuleCall, Row, Tracer
from archlab.trace._limits import memory_budget
from archlab.trace._notes import teaching_notes
from archlab.trace.fixes import Fix
from archlab.trace.formulas import Shape, fmt_shape
from archlab.trace.receptive import ReceptiveField, add_receptive_fields
from archlab.trace.record import add_counts

__all__ = ["FUNCTIONAL", "Diagnosis", "Fix", "LayerShape", "ShapeReport", "trace_shapes"]


@dataclass
class LayerShape:
    """One row of the trace: a layer, a tensor operation, or (with ``depth``) a block.

    Shapes are per sample (the batch dimension left out). ``inputs`` lists the rows (0-based
    indices into ``report.layers``) whose outputs this row consumes; ``-1`` is the model's
    input. A chain has ``inputs == [i - 1]`` on every row; a residual ``add`` has two.
    ``parts`` holds every tensor of a tuple output (an LSTM's output, h and c).
    """

    name: str
    type: str
    input: Shape
    output: Shape | None
    formula: str | None = None
    checked: bool = False  # analytic output == forward pass output
    inputs: list[int] = field(default_factory=list)
    parts: list[Shape] = field(default_factory=list)
    functional: bool = False  # an operation in a forward, not a layer
    receptive: ReceptiveField | None = None  # the input pixels one unit sees (see receptive)
    params: int = 0  # the layer's own parameters, on its first call only (see record)
    macs: int = 0  # the multiply-adds this call performs per image (see macs)


@dataclass
class Diagnosis(Failure):
    """Where and why the chain does not fit, and how to fix it.

    ``fix`` (a :class:`~archlab.trace.fixes.Fix`) has been tried: made on a copy of the
    model, the model then ran to the end with the output it should have. Where no change
    that archlab could make worked, ``fix`` is None and ``hint`` may say in words what to
    look at; ``tried`` says which likely fixes would not help, and why.
    """

    tried: tuple[str, ...] = ()

    def __str__(self) -> str:
        return _words.diagnosis_text(self)

    def render(self, flags: bool = False) -> str:
        """The one line, with the fix as command-line flags (``--set``) where ``flags``."""
        return _words.diagnosis_text(self, flags)


def _cell(row: LayerShape) -> str:
    if row.parts:
        return ", ".join(fmt_shape(p) for p in row.parts)
    return fmt_shape(row.output) if row.output is not None else "✗"


@dataclass
class ShapeReport(Report):
    """The result of :func:`trace_shapes`: rows, teaching notes, and any failure.

    ``str(report)`` is the terminal table; in Jupyter the report renders as HTML.

    Example::

        >>> report = archlab.trace_shapes("cnn", input_shape=(1, 32, 32))
        >>> report.ok, report.error.layer
        (False, 'fc1')
    """

    model: str
    input_shape: Shape
    overrides: list[str] = field(default_factory=list)
    layers: list[LayerShape] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    error: Diagnosis | None = None
    mismatches: list[str] = field(default_factory=list)
    depth: int | None = None
    output: Shape | None = None  # the model's output per sample (its first tensor)
    returns: str = "a tensor"  # what forward returned: "a tuple of 2", "a dict with keys ..."
    output_dtype: str | None = None  # its output's dtype: "float32", "int64"

    @property
    def ok(self) -> bool:
        """True when the chain fits and every analytic shape matched the forward pass."""
        return self.error is None and not self.mismatches

    @property
    def output_shape(self) -> Shape | None:
        if self.error is not None:
            return None
        if self.output is not None:
            return self.output
        return self.layers[-1].output if self.layers else None

    def to_dict(self) -> dict:
        """A JSON-ready dict (what ``archlab shapes --json`` prints)."""
        data = asdict(self)
        data["ok"] = self.ok
        return data

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False)

    def plot(self, ax=None):
        """How the feature map's side shrinks layer by layer (one bar per layer)."""
        from archlab.viz.architecture import plot_shapes

        return plot_shapes(self, ax)

    def _rows(self) -> list[list[object]]:
        rows = [
            [
                i,
                r.name,
                r.type,
                fmt_shape(r.input),
                _cell(r),
                str(r.receptive or ""),
                r.formula or "",
            ]
            for i, r in enumerate(self.layers, 1)
        ]
        if self.error is not None:
            e = self.error
            rows.append(
                ["", e.layer, e.type, fmt_shape(e.input), "✗", "", "does not fit (see below)"]
            )
        return rows

    _HEADERS = ("#", "layer", "type", "input", "output", "field", "formula")

    def _title(self) -> str:
        changed = f" with {', '.join(self.overrides)}" if self.overrides else ""
        folded = f", blocks below depth {self.depth} folded" if self.depth is not None else ""
        return f"{self.model}{changed}: input {fmt_shape(self.input_shape)}{folded}"

    def _messages(self) -> list[str]:
        lines = [f"archlab BUG (please report): {m}" for m in self.mismatches]
        if self.error is not None:
            lines.append(f"error: {self.error}")
        return lines

    def _parts(self) -> list[_table.Table | str]:
        return [
            _table.Table(self._HEADERS, self._rows(), self._title()),
            "\n".join(f"note: {n}" for n in self.notes),
            "\n".join(self._messages()),
        ]


def _layer_shape(row: Row) -> LayerShape:
    return LayerShape(
        row.name,
        row.type,
        row.input,
        row.output,
        row.formula,
        row.checked,
        list(row.inputs),
        list(row.parts),
        row.functional,
    )


def _fold(
    rows: list[Row], full: list[LayerShape], calls: dict[int, ModuleCall], depth: int
) -> list[LayerShape]:
    """Rows inside a module deeper than ``depth`` become one row per call of the block at
    ``depth`` (its input, its output), as torchinfo's ``depth`` shows it (``full``: the
    rows as LayerShapes, with their counts)."""
    out: list[LayerShape] = []
    new_index: dict[int, int] = {-1: -1}
    block_rows: dict[int, list[Row]] = {}
    emitted: dict[int, int] = {}
    for old, row in enumerate(rows):
        key = row.scope[depth - 1] if depth >= 1 and len(row.scope) >= depth else None
        if depth == 0 and row.scope:
            key = row.scope[0]
        if key is None or key not in calls:
            new_index[old] = len(out)
            shape = replace(full[old], inputs=list(full[old].inputs))
            shape.inputs = [new_index.get(i, i) for i in row.inputs]
            out.append(shape)
            continue
        block_rows.setdefault(key, []).append(full[old])
        if key not in emitted:
            call = calls[key]
            emitted[key] = len(out)
            out.append(
                LayerShape(
                    call.name,
                    call.type,
                    call.input,
                    call.output,
                    None,
                    False,
                    [new_index.get(i, i) for i in call.inputs],
                    list(call.parts),
                )
            )
        new_index[old] = emitted[key]
    for key, index in emitted.items():
        inner = block_rows[key]
        out[index].formula = f"{len(inner)} rows folded"
        out[index].checked = all(r.checked for r in inner if r.formula)
        out[index].params = sum(r.params for r in inner)
        out[index].macs = sum(r.macs for r in inner)
    return out


def _input_dtype(model: nn.Module, dtype: torch.dtype | str | None) -> torch.dtype:
    if isinstance(dtype, str):
        named = {"float": torch.float32, "long": torch.long, "int": torch.long}
        if dtype not in named and not isinstance(getattr(torch, dtype, None), torch.dtype):
            raise ArchlabError(f"--dtype {dtype!r}: use float or long (integer token ids)", 2)
        return named.get(dtype) or getattr(torch, dtype)
    if dtype is not None:
        return dtype
    first = next((m for m in model.modules() if next(m.children(), None) is None), None)
    if isinstance(first, (nn.Embedding, nn.EmbeddingBag)):
        return torch.long  # token ids: an Embedding first takes integers
    param = next(model.parameters(), None)
    return param.dtype if param is not None and param.is_floating_point() else torch.float32


def trace_shapes(
    model: str | nn.Module,
    input_shape: Sequence[int] | None = None,
    overrides: Sequence[str] = (),
    *,
    dtype: torch.dtype | str | None = None,
    depth: int | None = None,
    expect: Sequence[int] | None = None,
    input_fixed: bool = False,
) -> ShapeReport:
    """Trace the output shape of every layer and tensor operation, checked by a forward pass.

    Args:
        model: a registered name (``"cnn"``), a spec (``"file.py:Class"``,
            ``"torchvision.models:resnet18:num_classes=10"``) or an ``nn.Module`` (left as
            it was: same mode, no hooks, what-ifs applied to a copy).
        input_shape: one sample's shape, e.g. ``(C, H, W)``. Default: the model's
            ``input_shape``, else (1, 28, 28).
        overrides: what-ifs like ``["layer2.0.padding=1"]``, applied to a copy. Default: none.
        dtype: the input's dtype: ``torch.long`` (or ``"long"``) for token ids. Default:
            long when the first layer is an Embedding, else the parameters' float dtype.
        depth: fold the rows inside modules deeper than this into one row per block (its
            input and output), as torchinfo's ``depth``. Default: None, every row.
        expect: the output one image should have, e.g. ``(10,)``: a fix is shown only if,
            made on a copy, the model then runs with this output. Default: None, any
            output of a model that runs to the end.
        input_fixed: the input cannot change (training on 1×28×28 images): fixes change the
            model, never the input. Default: False.

    Returns:
        A :class:`ShapeReport`; ``report.ok`` is False when the chain does not fit
        (``report.error`` says where and how to fix it).

    Example::

        >>> report = archlab.trace_shapes("cnn")
        >>> report.layers[8].type, report.layers[8].output, report.layers[8].inputs
        ('flatten(1)', (2304,), [7])
    """
    built, name = resolve_model(model, overrides)
    from archlab.models import IMAGE_SHAPE

    default = getattr(built, "input_shape", IMAGE_SHAPE)
    shape = tuple(input_shape) if input_shape is not None else tuple(default)
    if not shape or any(not isinstance(d, int) or d < 1 for d in shape):
        raise ArchlabError(f"input shape {shape} must be positive sizes like 1,28,28")
    if depth is not None and depth < 0:
        raise ArchlabError(f"depth {depth} must be 0 or more")
    in_dtype = _input_dtype(built, dtype)
    report = ShapeReport(name, shape, list(overrides), depth=depth)
    need = BATCH * math.prod(shape) * torch.empty((), dtype=in_dtype).element_size()
    if need > memory_budget():
        report.error = Diagnosis(
            "input",
            "input",
            shape,
            _words.input_too_big(shape, need, 2 * memory_budget()),
            hint=_words.SMALLER_INPUT,
        )
        return report
    tracer = _run(built, shape, in_dtype, depth is not None, (), input_fixed)
    full = [_layer_shape(r) for r in tracer.rows]
    add_counts(full, built)
    report.layers = full if depth is None else _fold(tracer.rows, full, tracer.calls, depth)
    report.mismatches = tracer.mismatches
    report.output = tracer.output
    if tracer.output_dtype is not None:
        report.output_dtype = str(tracer.output_dtype).removeprefix("torch.")
    if tracer.failure is None and not tracer.mismatches:
        returned = _returned(tracer)
        if returned is not None:
            tracer.failure = returned
    if tracer.failure is not None:
        report.error = _settle(tracer, built, shape, in_dtype, expect, input_fixed)
    else:
        report.notes = teaching_notes(full, built)
        if tracer.returned is not None:
            report.returns = tracer.returned
    add_receptive_fields(report, tracer.rows, built)
    return report


def _run(
    built: nn.Module,
    shape: Shape,
    in_dtype: torch.dtype,
    blocks: bool,
    edits: tuple[tuple, ...],
    input_fixed: bool,
) -> Tracer:
    """One traced forward pass of a zero batch; the model's modes restored exactly."""
    # A zero tensor on the model's device, not the meta device: a classroom model's forward
    # pass takes milliseconds, while the first meta forward imports torch._dynamo (~1.4 s).
    device = next(built.parameters(), torch.empty(0)).device
    tracer = Tracer(built, blocks=blocks, edits=edits, input_fixed=input_fixed)
    x = torch.zeros((BATCH, *shape), dtype=in_dtype, device=device)
    with in_mode(built), torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # e.g. Dropout2d on 2-D input: the notes explain it
        tracer.run(built, x)
    return tracer


def _returned(tracer: Tracer) -> Failure | None:
    """A forward that returns no tensor at all (None, a dict of strings) is a diagnosis."""
    if tracer.returned is None or tracer.output is not None:
        return None  # a tensor, or a tuple or dict whose first tensor is the output
    what = tracer.returned
    return Failure(FUNCTIONAL, "output", (), _words.returned(what), hint=_words.returned_hint(what))


def _settle(tracer: Tracer, built, shape, in_dtype, expect, input_fixed) -> Diagnosis:
    """The tracer's failure as a :class:`Diagnosis` whose fix, if any, has been tried."""
    from archlab.trace._trial import settle

    failure = tracer.failure
    fix, hint, tried = settle(
        failure,
        tracer,
        lambda trial: _run(
            trial.model,
            trial.shape,
            _input_dtype(trial.model, trial.dtype),
            False,
            trial.edits,
            input_fixed,
        ),
        built,
        shape,
        in_dtype,
        tuple(expect) if expect is not None else None,
    )
    fields = {k: v for k, v in asdict(failure).items() if k not in ("fix", "hint")}
    return Diagnosis(**fields, fix=fix, hint=hint, tried=tuple(tried))
