"""Trace a model's shapes layer by layer, analytically, checked against a real forward pass.

The forward pass runs on one zero image (cheap: no data, milliseconds). Before each
leaf layer runs, its analytic output is computed from the input it receives; a layer
that cannot take that input stops the pass with a diagnosis. After it runs, the
analytic shape is compared with the real one: a disagreement is an archlab bug and
is reported as such, never hidden. Reshapes and activations called functionally in
``forward`` (``view``, ``flatten``, ``reshape``, ``F.relu``) are traced too.
"""

from __future__ import annotations

import contextlib
import copy
import itertools
import json
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

from archlab import _table
from archlab.errors import ArchlabError
from archlab.formulas import (
    Shape,
    ShapeError,
    Step,
    flatten_shape,
    fmt_shape,
    infer_step,
    reshape_shape,
)
from archlab.spec import load_model, model_name
from archlab.whatif import set_hyperparameter

FUNCTIONAL = "(forward)"  # the name column for calls made in forward, not by a layer

_ACTIVATIONS = {
    F.relu: "F.relu",
    torch.relu: "torch.relu",
    torch.Tensor.relu: "relu",
    F.gelu: "F.gelu",
    F.silu: "F.silu",
    F.elu: "F.elu",
    F.leaky_relu: "F.leaky_relu",
    torch.sigmoid: "torch.sigmoid",
    torch.tanh: "torch.tanh",
    torch.Tensor.sigmoid: "sigmoid",
    torch.Tensor.tanh: "tanh",
}
_RESHAPES = {
    torch.Tensor.view: "view",
    torch.Tensor.reshape: "reshape",
    torch.reshape: "reshape",
    torch.Tensor.flatten: "flatten",
    torch.flatten: "flatten",
}


@dataclass
class LayerShape:
    """One row of the trace. Shapes are per sample (batch dimension left out)."""

    name: str
    type: str
    input: Shape
    output: Shape | None
    formula: str | None = None
    checked: bool = False  # analytic output == forward pass output


@dataclass
class Diagnosis:
    """Where and why the chain does not fit, and how to fix it."""

    layer: str
    type: str
    input: Shape
    message: str
    fix: str | None = None

    def __str__(self) -> str:
        fix = f"; fix: {self.fix}" if self.fix else ""
        where = "in forward," if self.layer == FUNCTIONAL else f"{self.layer} ({self.type})"
        return f"{where} {self.message}{fix}"


@dataclass
class ShapeReport(_table.Tabular):
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

    @property
    def ok(self) -> bool:
        """True when the chain fits and every analytic shape matched the forward pass."""
        return self.error is None and not self.mismatches

    @property
    def output_shape(self) -> Shape | None:
        return self.layers[-1].output if self.layers and self.error is None else None

    def to_dict(self) -> dict:
        """A JSON-ready dict (what ``archlab shapes --json`` prints)."""
        data = asdict(self)
        data["ok"] = self.ok
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False)

    def _rows(self) -> list[list[object]]:
        rows = [
            [
                i,
                r.name,
                r.type,
                fmt_shape(r.input),
                fmt_shape(r.output) if r.output is not None else "✗",
                r.formula or "",
            ]
            for i, r in enumerate(self.layers, 1)
        ]
        if self.error is not None:
            e = self.error
            rows.append(["", e.layer, e.type, fmt_shape(e.input), "✗", "does not fit (see below)"])
        return rows

    _HEADERS = ("#", "layer", "type", "input", "output", "formula")

    def _title(self) -> str:
        changed = f" with {', '.join(self.overrides)}" if self.overrides else ""
        return f"{self.model}{changed}: input {fmt_shape(self.input_shape)}"

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


class _Stop(Exception):
    """Raised inside a hook to end the forward pass at the first layer that cannot fit."""


class _Recorder(TorchFunctionMode):
    """Records reshapes and activations that ``forward`` calls directly (not inside a layer)."""

    def __init__(self, tracer: _Tracer) -> None:
        super().__init__()
        self.tracer = tracer

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        tracer = self.tracer
        if tracer.depth == 0 and (func in _RESHAPES or func in _ACTIVATIONS):
            return tracer.functional(func, args, kwargs)
        return func(*args, **kwargs)


class _Tracer:
    def __init__(self, names: dict[nn.Module, str]) -> None:
        self.names = names
        self.rows: list[LayerShape] = []
        self.pending: list[tuple[nn.Module, Step | None, Shape]] = []
        self.error: Diagnosis | None = None
        self.mismatches: list[str] = []
        self.depth = 0
        self.current: str | None = None

    # -- layers ---------------------------------------------------------------------------
    def pre(self, module: nn.Module, args: tuple) -> None:
        self.depth += 1
        name = self.names[module]
        self.current = name
        x = args[0] if args and isinstance(args[0], torch.Tensor) else None
        in_shape = tuple(x.shape) if x is not None else ()
        try:
            step = infer_step(module, in_shape) if x is not None else None
        except ShapeError as exc:
            self.fail(name, type(module).__name__, in_shape, str(exc), exc.fix)
        self.pending.append((module, step, in_shape))

    def post(self, module: nn.Module, args: tuple, output: object) -> None:
        self.depth -= 1
        self.current = None
        _, step, in_shape = self.pending.pop()
        out = tuple(output.shape) if isinstance(output, torch.Tensor) else None
        name, kind = self.names[module], type(module).__name__
        self.record(name, kind, in_shape, step, out)
        if out is not None and 0 in out[1:]:
            self.rows.pop()
            self.fail(
                name,
                kind,
                in_shape,
                f"outputs an empty {fmt_shape(out[1:])} map: the map shrinks to nothing",
                "feed a larger input or use less padding here",
            )

    # -- functional calls in forward ------------------------------------------------------
    def functional(self, func, args: tuple, kwargs: dict) -> object:
        x = args[0]
        in_shape = tuple(x.shape)
        label = _RESHAPES.get(func) or _ACTIVATIONS[func]
        step: Step | None
        try:
            if func in _ACTIVATIONS:
                step = Step(in_shape)
            elif label == "flatten":
                start = args[1] if len(args) > 1 else kwargs.get("start_dim", 0)
                end = args[2] if len(args) > 2 else kwargs.get("end_dim", -1)
                step = flatten_shape(in_shape, start, end)
                label = f"flatten({start}{'' if end == -1 else f', {end}'})"
            else:
                target = args[1:] if len(args) > 1 else (kwargs.get("shape") or kwargs.get("size"))
                if len(target) == 1 and isinstance(target[0], (tuple, list, torch.Size)):
                    target = tuple(target[0])
                op = label
                label = f"{op}({', '.join(str(int(t)) for t in target)})"
                step = reshape_shape(in_shape, target, op)
        except ShapeError as exc:
            self.fail(FUNCTIONAL, label, in_shape, str(exc), exc.fix)
        output = func(*args, **kwargs)
        self.record(FUNCTIONAL, label, in_shape, step, tuple(output.shape))
        return output

    # -- bookkeeping ----------------------------------------------------------------------
    def record(self, name: str, kind: str, in_shape: Shape, step: Step | None, out: Shape | None):
        checked = False
        if step is not None and out is not None:
            if step.output != out:
                self.mismatches.append(
                    f"{name} ({kind}): analytic {fmt_shape(step.output[1:])} ≠ forward pass "
                    f"{fmt_shape(out[1:])}"
                )
            else:
                checked = True
        self.rows.append(
            LayerShape(
                name,
                kind,
                in_shape[1:],
                out[1:] if out is not None else None,
                step.formula if step else None,
                checked,
            )
        )

    def fail(self, name: str, kind: str, in_shape: Shape, message: str, fix: str | None) -> None:
        if "input features" in message and self.rows:
            message += self._source_of_features()
        self.error = Diagnosis(name, kind, in_shape[1:], message, fix)
        raise _Stop

    def _source_of_features(self) -> str:
        """' = 64×7×7 from layer2.3': where a flat vector's features came from."""
        for i in range(len(self.rows) - 1, -1, -1):
            row = self.rows[i]
            if row.output is not None and len(row.output) > 1:
                return f" = {fmt_shape(row.output)} from {row.name}"
        return ""


@contextlib.contextmanager
def _hooked(model: nn.Module, tracer: _Tracer) -> Iterator[None]:
    """Hooks on every leaf layer, removed on exit even when the forward pass fails."""
    handles = []
    try:
        for module in model.modules():
            if next(module.children(), None) is None:
                handles.append(module.register_forward_pre_hook(tracer.pre))
                handles.append(module.register_forward_hook(tracer.post))
        yield
    finally:
        for handle in handles:
            handle.remove()


def _run(model: nn.Module, input_shape: Shape, device: torch.device) -> _Tracer:
    names = {m: n for n, m in model.named_modules()}
    tracer = _Tracer(names)
    x = torch.zeros((1, *input_shape), device=device)
    with _hooked(model, tracer), torch.no_grad(), warnings.catch_warnings(), _Recorder(tracer):
        warnings.simplefilter("ignore")  # e.g. Dropout2d on 2-D input: the notes explain it
        try:
            model(x)
        except _Stop:
            pass
        except Exception as exc:  # torch failed where no rule predicted it
            where = tracer.current or FUNCTIONAL
            first_line = (
                str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            )
            tracer.error = Diagnosis(where, "forward pass", (), f"failed: {first_line}")
            if tracer.current is not None and tracer.pending:
                module, step, in_shape = tracer.pending[-1]
                tracer.error.type = type(module).__name__
                tracer.error.input = in_shape[1:]
                if step is not None:
                    tracer.mismatches.append(
                        f"{where}: the analytic rule accepted the input but torch raised"
                    )
    return tracer


def _notes(rows: list[LayerShape], model: nn.Module) -> list[str]:
    """Teaching notes: what in this architecture is redundant or wrong."""
    notes = []
    modules = dict(model.named_modules())
    # Linear layers with nothing non-linear between them compose to one linear map
    chain: list[LayerShape] = []
    passthrough = ("Dropout", "Identity")
    for row in [*rows, None]:
        if row is not None and row.type == "Linear":
            chain.append(row)
        elif row is not None and row.type.startswith(passthrough) and chain:
            continue
        else:
            if len(chain) > 1:
                first, last = chain[0].input[-1], chain[-1].output[-1]
                params = sum(p.numel() for r in chain for p in modules[r.name].parameters())
                notes.append(
                    f"{' → '.join(r.name for r in chain)}: no activation between these Linear "
                    f"layers, so they compose to one linear map {first} → {last}: a single "
                    f"nn.Linear({first}, {last}) ({first * last + last:,} parameters) computes "
                    f"anything these {len(chain)} ({params:,} parameters) can"
                )
            chain = []
    for row in rows:
        if row.type in ("Dropout2d", "Dropout3d") and len(row.input) < 3:
            notes.append(
                f"{row.name}: {row.type} is meant for feature maps; on a flat "
                f"{fmt_shape(row.input)} tensor PyTorch falls back to plain dropout with a "
                "deprecation warning (a future release will raise): use nn.Dropout here"
            )
    for prev, row in itertools.pairwise(rows):
        conv = modules.get(prev.name)
        if (
            isinstance(conv, nn.modules.conv._ConvNd)
            and conv.bias is not None
            and row.type.startswith("BatchNorm")
        ):
            notes.append(
                f"{prev.name}: its bias is cancelled by {row.name} ({row.type}), which subtracts "
                f"the mean right after; bias=False would save {conv.bias.numel()} parameters"
            )
    for row, nxt in itertools.pairwise(rows):
        reshape = row.name == FUNCTIONAL and row.type.startswith(("flatten", "view", "reshape"))
        if reshape and nxt.type == "Linear" and row.formula:
            notes.append(f"{row.formula} matches {nxt.name}.in_features")
    return notes


def trace_shapes(
    model: str | nn.Module,
    input_shape: Sequence[int] | None = None,
    overrides: Sequence[str] = (),
) -> ShapeReport:
    """Trace the output shape of every layer, with formulas, checked by a forward pass.

    Args:
        model: a registered name (``"cnn"``), ``"file.py:Class"``, or an ``nn.Module``
            (left as it was: same mode, no hooks, what-ifs applied to a copy).
        input_shape: the per-sample ``(C, H, W)``. Default: the model's ``input_shape``,
            else (1, 28, 28).
        overrides: what-ifs like ``["layer2.0.padding=1"]``, applied to a copy.

    Returns:
        A :class:`ShapeReport`; ``report.ok`` is False when the chain does not fit
        (``report.error`` says where and how to fix it).

    Example::

        >>> report = archlab.trace_shapes("cnn")  # doctest: +SKIP
        >>> report.layers[-4].output  # after flatten                # doctest: +SKIP
        (2304,)
    """
    name = model_name(model)
    if isinstance(model, nn.Module):
        built = copy.deepcopy(model) if overrides else model  # never change the caller's
        for assignment in overrides:
            set_hyperparameter(built, assignment)
    else:
        built = load_model(model, overrides)
    shape = tuple(input_shape) if input_shape is not None else tuple(built.input_shape)
    if not shape or any(d < 1 for d in shape):
        raise ArchlabError(f"input shape {shape} must be positive sizes like 1,28,28")
    # A zero tensor on the CPU, not the meta device: a classroom model's forward pass takes
    # milliseconds, while the first meta forward imports torch._dynamo (about 1.4 s here).
    was_training = built.training
    device = next(built.parameters(), torch.empty(0)).device
    try:
        tracer = _run(built.eval(), shape, device)
    finally:
        built.train(was_training)
    report = ShapeReport(
        name,
        shape,
        list(overrides),
        tracer.rows,
        error=tracer.error,
        mismatches=tracer.mismatches,
    )
    if report.error is None:
        report.notes = _notes(report.layers, built)
    return report
