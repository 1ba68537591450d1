"""The tracing engine: one forward pass, each tensor followed from the row that made it.

Layers are seen through module hooks; every other tensor operation in a ``forward``
through a :class:`~torch.overrides.TorchFunctionMode`. Each traced tensor maps, by a
weak reference (an ``id`` reused after a tensor dies no longer matches), to the row that
produced it, with its :class:`~archlab.trace._batch.Batch`. An operation gets a row when it
changes a shape, merges traced tensors, reshapes, or is an activation; the others
(``contiguous``, ``x * 0.5``) pass their input's row on. Before a layer or an operation
with a rule runs, its analytic output is computed; a misfit stops the pass with a
:class:`Failure`.

Layers that treat each image on its own (:data:`PER_IMAGE`) run on the first image only
and their output is expanded to the batch (the images are all zeros, so identical):
a torchvision model's trace then costs about one image's arithmetic, not two.
"""

from __future__ import annotations

import contextlib
import math
import traceback
import weakref
from collections.abc import Iterator
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from archlab.trace import _batch, _ops, _words
from archlab.trace._batch import BATCH, Batch
from archlab.trace._limits import memory_budget
from archlab.trace._words import FUNCTIONAL
from archlab.trace.fixes import Fix
from archlab.trace.formulas import (
    ChannelError,
    RankError,
    Shape,
    ShapeError,
    Step,
    fmt_shape,
    infer_step,
)

# modules called as one unit although they have children (their forward does not call them)
OPAQUE = (nn.MultiheadAttention,)
# layers that treat each image on its own (BatchNorm in eval mode): traced on one image and
# copied to the batch, which halves the arithmetic of a torchvision model's trace
PER_IMAGE = (
    nn.modules.conv._ConvNd,
    nn.modules.batchnorm._BatchNorm,
    nn.modules.pooling._MaxPoolNd,
    nn.modules.pooling._AvgPoolNd,
    nn.modules.pooling._AdaptiveAvgPoolNd,
    nn.modules.pooling._AdaptiveMaxPoolNd,
    nn.Linear,
    nn.LayerNorm,
    nn.GroupNorm,
    nn.ReLU,
    nn.ReLU6,
    nn.GELU,
    nn.SiLU,
    nn.Hardswish,
    nn.Hardsigmoid,
    nn.Sigmoid,
    nn.Tanh,
    nn.Dropout,
)


def _per_image(module: nn.Module) -> bool:
    if not isinstance(module, PER_IMAGE):
        return False
    if module.training and isinstance(module, nn.modules.batchnorm._BatchNorm):
        return False  # batch statistics mix the images
    return _torch_forward(module)


def _torch_forward(module: nn.Module) -> bool:
    return getattr(type(module).forward, "__module__", "").startswith("torch.nn.")


_PASSIVE = {
    torch.Tensor.size,
    torch.Tensor.dim,
    torch.Tensor.numel,
    torch.Tensor.item,
    torch.Tensor.tolist,
    torch.Tensor.__len__,
    torch.Tensor.__format__,
    torch.Tensor.__repr__,
}


@dataclass
class Row:
    """One row as the engine records it; :mod:`archlab.trace.shapes` turns it into a LayerShape."""

    name: str
    type: str
    input: Shape
    output: Shape | None
    formula: str | None
    checked: bool
    inputs: list[int]
    parts: list[Shape] = field(default_factory=list)  # every tensor of a tuple output
    scope: tuple[int, ...] = ()  # the module calls it ran inside (their call ids)
    functional: bool = False
    op: int | None = None  # the operation's call number (an edit's address on a trial run)
    # an operation's function and arguments, each tensor replaced by its shape (receptive
    # fields read a pad's widths, an interpolation's scale and mode, a mean's dims)
    call: tuple | None = None


@dataclass
class ModuleCall:
    """A module's call, for folding rows into blocks (``--depth``)."""

    name: str
    type: str
    depth: int
    inputs: list[int]
    input: Shape
    output: Shape | None = None
    parts: list[Shape] = field(default_factory=list)


@dataclass
class Failure:
    """Where the pass stopped: the layer or operation, its input, why, and a fix to try.

    ``fix`` is a change that may make the model fit, not yet tried; ``hint`` is advice in
    words that no single change makes (``make both branches output the same shape``).
    ``inputs`` are the rows the failing layer or operation read (for looking upstream).
    """

    layer: str
    type: str
    input: Shape
    message: str
    fix: Fix | None = None
    functional: bool = False
    hint: str | None = None
    inputs: tuple[int, ...] = ()
    expected: int | None = None  # the size the layer wanted, where it says one
    op: int | None = None  # the failing operation's call number, where an operation failed


class _Stop(BaseException):
    """Ends the forward pass at the first misfit (BaseException: a model's own
    ``except Exception`` must not swallow it)."""


class _Internal(BaseException):
    """The tracer itself failed: reported as an archlab bug, never as the user's mistake."""


def _tensors(value: object, out: list[torch.Tensor], depth: int = 0) -> list[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        out.append(value)
    elif isinstance(value, (tuple, list)) and depth < 3:
        for v in value:
            _tensors(v, out, depth + 1)
    elif isinstance(value, dict) and depth < 3:
        for v in value.values():
            _tensors(v, out, depth + 1)
    return out


def _shapes_for_tensors(value: object) -> object:
    """``value`` with every tensor in it replaced by its shape (a row keeps no tensor)."""
    if isinstance(value, torch.Tensor):
        return tuple(value.shape)
    if isinstance(value, list):
        return [_shapes_for_tensors(v) for v in value]
    if isinstance(value, tuple):
        return tuple(_shapes_for_tensors(v) for v in value)
    if isinstance(value, dict):
        return {k: _shapes_for_tensors(v) for k, v in value.items()}
    return value


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class Tracer(TorchFunctionMode):
    """Runs one forward pass and records :class:`Row`\\ s; see the module docstring."""

    def __init__(
        self,
        model: nn.Module,
        blocks: bool = False,
        edits: tuple[tuple, ...] = (),
        input_fixed: bool = False,
        keep: bool = False,
    ) -> None:
        super().__init__()
        self.blocks = blocks  # record module calls and scopes, for folding (``depth``)
        # a trial run of a code fix: ("op", call, change) or ("before", layer, what)
        self._edits = {e[1]: e[2] for e in edits if e[0] == "op"}
        self._before = {e[1]: e[2] for e in edits if e[0] == "before"}
        self.input_fixed = input_fixed  # train: the images are what they are, no --input fix
        self.op_calls: dict[int, tuple] = {}  # call → (func, rank, batch dim, its argument)
        self._op_count = 0
        self._current_op: int | None = None
        self.returned: str | None = None  # what forward returned, when not a tensor
        # keep each row's output tensor (and where its batch is), for a pass on real
        # images (the explorer): then every image is computed, none expanded from the first
        self.keep = keep
        self.values: dict[int, tuple[torch.Tensor, Batch]] = {}
        self.names = {m: n for n, m in model.named_modules()}
        # a unit gets one row: a leaf, or a module whose forward does not call its children
        self._unit = {
            m: next(m.children(), None) is None or isinstance(m, OPAQUE) for m in self.names
        }
        self._one = {m: _per_image(m) for m in self.names}
        # the model itself is a unit only when it is one of torch's layers: a leaf model
        # of one's own (all in forward, no children) has its operations traced
        self._unit[model] = self._unit[model] and _torch_forward(model)
        self.root = model
        self.rows: list[Row] = []
        self.calls: dict[int, ModuleCall] = {}
        self.failure: Failure | None = None
        self.mismatches: list[str] = []
        self.output: Shape | None = None
        self._seen: dict[int, tuple[weakref.ref, int, Batch]] = {}
        self._stack: list[tuple[nn.Module, int, bool]] = []  # (module, call id, counted as unit)
        self._unit_depth = 0
        self._pending: list[tuple[Step | None, list[int], Shape, Batch]] = []
        self._budget = memory_budget()  # bytes one traced tensor may take
        self._lazy: dict[int, weakref.ref] = {}
        self._copies: dict[int, tuple[weakref.ref, torch.Tensor]] = {}  # lazy → its full copy
        self._popped = False  # this mode is off the stack while a unit runs
        self._busy = False  # inside a hook: its own tensor calls are not the model's

    # -- bookkeeping -----------------------------------------------------------------------
    def _lookup(self, t: torch.Tensor) -> tuple[int, Batch] | None:
        entry = self._seen.get(id(t))
        if entry is None or entry[0]() is not t:
            return None
        return entry[1], entry[2]

    def _register(self, t: torch.Tensor, producer: int, batch: Batch) -> None:
        # a weak reference: tensors the model drops are freed (their memory reused, as in a
        # plain forward pass); one whose id is reused no longer matches its entry
        self._seen[id(t)] = (weakref.ref(t), producer, batch)

    def _source(self, producer: int, t: torch.Tensor, batch: Batch) -> str:
        shape = _batch.per_sample(tuple(t.shape), batch)
        if producer < 0:
            return _words.source(None, shape)
        row = self.rows[producer]
        who = row.name if not row.functional else f"{row.type} in {row.name}"
        if row.functional and row.name == FUNCTIONAL:
            who = f"{row.type} (row {producer + 1})"  # two branches never read the same
        return _words.source(who, shape)

    def _scope(self) -> tuple[int, ...]:
        if not self.blocks:
            return ()
        return tuple(cid for m, cid, _ in self._stack if m is not self.root)

    def _where(self) -> str:
        for module, _, _ in reversed(self._stack):
            if module is not self.root:
                return self.names.get(module, type(module).__name__)
        return FUNCTIONAL

    def fail(
        self,
        layer: str,
        kind: str,
        shape: Shape,
        message: str,
        fix: Fix | None = None,
        *,
        functional=False,
        hint: str | None = None,
        inputs: tuple[int, ...] = (),
        expected: int | None = None,
        op: int | None = None,
    ):
        self.failure = Failure(
            layer, kind, shape, message, fix, functional, hint, tuple(inputs), expected, op
        )
        raise _Stop

    # -- operations --------------------------------------------------------------------------
    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if self._busy or self._unit_depth or func in _PASSIVE or func.__name__ == "__get__":
            return func(*args, **kwargs)
        tensors = _tensors(args, []) + _tensors(kwargs, []) if kwargs else _tensors(args, [])
        traced = []
        for t in tensors:
            entry = self._seen.get(id(t))
            if entry is not None and entry[0]() is t:
                traced.append((t, entry[1], entry[2]))
        if not traced:
            return func(*args, **kwargs)
        if self._lazy and any(self._is_lazy(t) for t, _, _ in traced):
            if func in _ops.ELEMENTWISE and all(self._narrowable(t, traced) for t in tensors):
                return self._op(func, args, kwargs, tensors, traced, narrow=True)
            args, kwargs = self._materialize(args), self._materialize(kwargs)
            return self.__torch_function__(func, types, args, kwargs)
        return self._op(func, args, kwargs, tensors, traced)

    def _narrowable(self, t: torch.Tensor, traced) -> bool:
        """An elementwise operation can run on one image when every tensor it reads is an
        expanded per-image map, or has fewer dims (a bias, a scalar) so it cannot hold a batch."""
        return self._is_lazy(t) or t.dim() < traced[0][0].dim()

    def _narrow(self, value: object) -> object:
        if isinstance(value, torch.Tensor):
            return value[:1] if self._is_lazy(value) else value
        if isinstance(value, (tuple, list)):
            return type(value)(self._narrow(v) for v in value)
        if isinstance(value, dict):
            return {k: self._narrow(v) for k, v in value.items()}
        return value

    # -- one image for the batch: outputs of per-image layers are expanded, not copied, until
    # an operation that is not per-image needs the whole batch in memory --------------------
    def _is_lazy(self, t: torch.Tensor) -> bool:
        ref = self._lazy.get(id(t))
        return ref is not None and ref() is t

    def _materialize(self, value: object) -> object:
        if isinstance(value, torch.Tensor):
            if not self._is_lazy(value):
                return value
            cached = self._copies.get(id(value))  # DenseNet reads each map many times
            if cached is not None and cached[0]() is value:
                return cached[1]
            copy = value.contiguous()
            self._copies[id(value)] = (weakref.ref(value), copy)
            self._register(copy, *self._lookup(value))
            return copy
        if isinstance(value, (tuple, list)):
            return type(value)(self._materialize(v) for v in value)
        if isinstance(value, dict):
            return {k: self._materialize(v) for k, v in value.items()}
        return value

    def _op(self, func, args, kwargs, tensors, traced, narrow: bool = False):
        op = self._current_op = self._op_count
        self._op_count += 1
        if op in self._edits:  # a trial run: the code fix made to this call
            args, kwargs = _ops.edited(func, args, kwargs, self._edits[op])
        if func in _ops.EDITABLE:
            self.op_calls[op] = _ops.editable(func, args, kwargs, traced[0][0].dim(), traced[0][2])
        rule = _ops.RULES.get(func)
        step = call = None
        if rule is not None:
            call = self._call(func, args, kwargs, tensors)
            try:
                step = rule(call)
            except ShapeError as exc:
                self._op_failure(func, args, kwargs, traced, str(exc), hint=exc.fix)
            except Exception:  # a rule that cannot read these arguments: torch decides
                step = None
            if step is not None:
                self._check_memory(func, args, kwargs, traced, step.output)
        try:
            if narrow:  # one image's worth, expanded back to the batch
                output = self._widen(func(*self._narrow(args), **self._narrow(kwargs)))
            else:
                output = func(*args, **kwargs)
        except (RuntimeError, ValueError, TypeError, IndexError) as exc:
            call = call or self._call(func, args, kwargs, tensors)
            self._op_failure(
                func, args, kwargs, traced, _words.fails_on(call.sources, _first_line(exc))
            )
        try:
            self._after_op(func, args, kwargs, traced, step, output)
        except _Stop:
            raise
        except Exception as exc:
            raise _Internal(f"recording {func}: {traceback.format_exc(limit=-2)}") from exc
        return output

    def _call(self, func, args, kwargs, tensors) -> _ops.Call:
        name = _ops.op_name(func).removeprefix("F.").removeprefix("torch.")
        return _ops.Call(
            name,
            args,
            kwargs,
            [tuple(t.shape) for t in tensors],
            lambda: [self._describe(t) for t in tensors],
        )

    def _describe(self, t: torch.Tensor) -> str:
        entry = self._seen.get(id(t))
        if entry is not None and entry[0]() is t:
            return self._source(entry[1], t, entry[2])
        params = {id(p): n for n, p in self.root.named_parameters()}
        params.update({id(b): n for n, b in self.root.named_buffers()})
        name = params.get(id(t))
        return f"{name} ({fmt_shape(t.shape)})" if name else f"a tensor ({fmt_shape(t.shape)})"

    def _op_failure(
        self, func, args, kwargs, traced, message: str, fix: Fix | None = None, hint=None
    ):
        t0, _, batch0 = traced[0]
        shape = _batch.per_sample(tuple(t0.shape), batch0)
        producers = tuple(dict.fromkeys(p for _, p, _ in traced))
        self.fail(
            self._where(),
            _ops.label(func, args, kwargs, batch0.dim),
            shape,
            message,
            fix,
            functional=True,
            hint=hint,
            inputs=producers,
            op=self._current_op,
        )

    def _check_memory(self, func, args, kwargs, traced, out: Shape) -> None:
        size = math.prod(out) * traced[0][0].element_size()
        if size > self._budget:
            self._op_failure(
                func, args, kwargs, traced, self._too_big(out, size), hint=_words.SMALLER_INPUT
            )

    def _too_big(self, out: Shape, size: int) -> str:
        return _words.too_big(out[1:], size, self._budget)

    def _after_op(self, func, args, kwargs, traced, step, output):
        outs = _tensors(output, [])
        if not outs:
            return
        t0, p0, batch0 = traced[0]
        in_shape = tuple(t0.shape)
        out_shape = tuple(outs[0].shape)
        merge = len({id(t) for t, _, _ in traced}) > 1
        is_row = (
            func in _ops.ACTIVATIONS
            or func in _ops.RESHAPES
            or func in _ops.PERMUTES  # a transpose of two equal dims still moves them
            or merge
            or any(tuple(o.shape) != in_shape for o in outs)
        )
        index = len(self.rows)
        batch = self._batch_after(func, args, kwargs, traced, outs[0], index)
        if func in _ops.RESHAPES and batch0.dim == 0 and not batch.known:
            self._batch_failure(func, args, kwargs, traced, out_shape)
        if not is_row:
            for o in outs:
                if self._lookup(o) is None:
                    self._register(o, p0, batch)
            return
        kind = _ops.label(func, args, kwargs, batch.dim)
        name = self._where()
        checked = False
        if step is not None:
            checked = tuple(step.output) == out_shape
            if not checked:
                self.mismatches.append(
                    f"{name} ({kind}): analytic {fmt_shape(step.output)} ≠ forward pass "
                    f"{fmt_shape(out_shape)}"
                )
        producers = list(dict.fromkeys(p for _, p, _ in traced))
        parts = [_batch.per_sample(tuple(o.shape), batch) for o in outs] if len(outs) > 1 else []
        self.rows.append(
            Row(
                name,
                kind,
                _batch.per_sample(in_shape, batch0),
                _batch.per_sample(out_shape, batch),
                step.formula if step else None,
                checked,
                producers,
                parts,
                self._scope(),
                functional=True,
                op=self._current_op,
                call=(func, _shapes_for_tensors(args), _shapes_for_tensors(kwargs)),
            )
        )
        if self.keep:
            self.values[index] = (outs[0].detach(), batch)
        for o in outs:
            self._register(o, index, batch)

    def _batch_after(self, func, args, kwargs, traced, out: torch.Tensor, row: int) -> Batch:
        t0, _, b0 = next(((t, p, b) for t, p, b in traced if b.known), traced[0])
        in_shape, out_shape = tuple(t0.shape), tuple(out.shape)
        if not b0.known:
            return b0
        call = _ops.Call("", args, kwargs, [in_shape], [])
        if func in _ops.PERMUTES:
            if func in (torch.Tensor.transpose, torch.transpose):
                return _batch.transposed(
                    b0, call.arg(1, "dim0"), call.arg(2, "dim1"), len(in_shape)
                )
            order = args[1:] if len(args) > 1 else kwargs.get("dims")
            if len(order) == 1 and isinstance(order[0], (tuple, list, torch.Size)):
                order = order[0]
            return _batch.permuted(b0, list(order), len(in_shape))
        if func in _ops.REDUCTIONS:
            dim = call.arg(1, "dim")
            if isinstance(dim, (int, tuple, list)) or dim is None:
                dims = _ops._dims(dim, len(in_shape))
                return _batch.reduced(b0, dims, bool(call.arg(2, "keepdim", False)), row)
            return _batch.UNKNOWN
        if func is torch.Tensor.__getitem__:
            return _batch.indexed(b0, args[1], in_shape, out_shape, row)
        if func in (torch.stack, torch.unbind, torch.Tensor.unbind):
            dims = {b.dim for _, _, b in traced}
            if len(dims) != 1:
                return Batch(None, lost_at=row)
            where = call.arg(1, "dim", 0)
            return _batch.stacked(b0, where, len(in_shape), func is torch.stack, row)
        if func is torch.einsum:
            return _batch.einsum(b0, args, traced, row)
        if (
            len(traced) > 1
            and len(out_shape) >= len(in_shape)
            and func
            not in (
                torch.cat,
                torch.concat,
                torch.concatenate,
                torch.stack,
            )
        ):
            dim = b0.dim + len(out_shape) - len(in_shape)  # broadcasting
            return Batch(dim, b0.fold, fold_at=b0.fold_at)
        found = _batch.follow(in_shape, b0, out_shape)
        if found is None and func in _ops.RESHAPES:
            found = _batch.leading_merge(in_shape, b0, out_shape, row)
        if found is None and func in (torch.cat, torch.concat, torch.concatenate, torch.stack):
            return Batch(None, lost_at=row)
        return found or Batch(None)

    def _batch_failure(self, func, args, kwargs, traced, out_shape: Shape):
        t0, _, batch0 = traced[0]
        shape = _batch.per_sample(tuple(t0.shape), batch0)
        per_row = out_shape[1:] if len(out_shape) > 1 else ()
        what = _words.batch_mixed(shape, out_shape[0], per_row)
        self._op_failure(
            func, args, kwargs, traced, what, self._batch_fix(func, shape, self._current_op)
        )

    def _batch_fix(self, func, shape: Shape, op: int | None) -> Fix:
        """``x.view(x.size(0), -1)`` for the reshape at call ``op``: the batch kept."""
        kind = _ops.RESHAPES.get(func, "view")
        change = ("start", 1) if kind == "flatten" else ("shape", (BATCH, -1))
        text = _words.batch_fix_text(kind, math.prod(shape))
        return Fix("code", FUNCTIONAL, text=text, edit=("op", op, change))

    # -- layers ------------------------------------------------------------------------------
    def pre(self, module: nn.Module, args: tuple, kwargs: dict) -> tuple | None:
        self._busy = True
        try:
            return self._pre(module, args, kwargs)
        except _Stop:
            raise
        except Exception as exc:
            raise _Internal(
                f"before {type(module).__name__}: {traceback.format_exc(limit=-2)}"
            ) from exc
        finally:
            self._busy = False

    def _pre(self, module, args, kwargs):
        cid = len(self.calls)
        unit = not self._unit_depth and self._unit.get(
            module, next(module.children(), None) is None
        )
        self._stack.append((module, cid, unit or bool(self._unit_depth)))
        if self._unit_depth:
            self._unit_depth += 1
            return None
        one = unit and self._one.get(module, False) and len(args) == 1 and not kwargs
        changed = None
        if unit and not one and self._lazy:
            changed = self._materialize(args), self._materialize(kwargs)
            args, kwargs = changed
        if unit and self._before and args and self.names.get(module) in self._before:
            args = (self._edit_input(args[0], self._before[self.names[module]]), *args[1:])
            changed = args, kwargs
            one = False
        tensors = _tensors(args, []) + _tensors(kwargs, [])
        traced = [(t, *f) for t in tensors if (f := self._lookup(t)) is not None]
        t0, batch0 = (
            (traced[0][0], traced[0][2]) if traced else (tensors[0] if tensors else None, Batch(0))
        )
        shape = tuple(t0.shape) if t0 is not None else ()
        sample = _batch.per_sample(shape, batch0)
        producers = list(dict.fromkeys(p for _, p, _ in traced))
        name, kind = self.names.get(module) or type(module).__name__, type(module).__name__
        if self.blocks:
            depth = sum(1 for m, _, _ in self._stack if m is not self.root)
            self.calls[cid] = ModuleCall(name, kind, depth, producers, sample)
        if not unit:
            return None
        self._unit_depth = 1
        step = None
        if t0 is not None and isinstance(module, nn.Embedding) and t0.is_floating_point():
            self.fail(
                name,
                kind,
                sample,
                _words.wants_integers(str(t0.dtype).removeprefix("torch.")),
                Fix("dtype", value="long"),
            )
        if t0 is not None and t0 is (args[0] if args else None):
            extra = dict(kwargs)
            if isinstance(module, nn.modules.conv._ConvTransposeNd) and len(args) > 1:
                extra["output_size"] = args[1]
            try:
                step = infer_step(module, shape, extra)
            except ShapeError as exc:
                self._layer_failure(module, name, kind, sample, exc, producers)
            size = math.prod(step.output) * t0.element_size() if step is not None else 0
            if size > self._budget:
                self.fail(
                    name,
                    kind,
                    sample,
                    self._too_big(step.output, size),
                    hint=_words.SMALLER_INPUT,
                )
        one = one and t0 is args[0] and batch0 == Batch(0) and t0.shape[0] == BATCH
        one = one and not self.keep
        self._pending.append((step, producers, sample, batch0, one, shape))
        self._leave_mode()  # inside a unit nothing is traced: no need to see its calls
        if one:  # computed on one image, then expanded: half the work, the same shapes
            return (t0[:1],), kwargs
        return changed

    def _edit_input(self, x: torch.Tensor, what: str) -> torch.Tensor:
        """A trial run's change to a layer's input: flattened, or its dims 1 and 2 swapped."""
        x = self._materialize(x)
        found = self._lookup(x)
        if what == "flatten":
            new = torch.flatten(x, 1)
        else:
            new = x.transpose(*what) if isinstance(what, tuple) else x.transpose(1, 2)
        if found is not None:
            self._register(new, *found)
        return new

    def _layer_failure(self, module, name, kind, sample, exc: ShapeError, producers: list[int]):
        message, fix, hint = str(exc), _change_fix(name, exc), None
        at_input = producers == [-1]
        expected = getattr(exc, "expected", None)
        if at_input and isinstance(exc, RankError):
            message = _words.rank_at_input(exc.form, sample)
            dims = sample[-(exc.rank - 1) :] if len(sample) >= exc.rank - 1 else ()
            channels = getattr(module, "in_channels", getattr(module, "num_features", 1))
            fix = None
            if dims and not self.input_fixed:
                fix = Fix("input", value=(channels, *dims), text=f"(the form is {exc.form})")
            elif not dims:
                hint = f"give one {exc.form} image"
        elif (
            at_input
            and isinstance(exc, ChannelError)
            and len(sample) > 1
            and not (fix is not None and fix.kind == "code")
        ):
            message += _words.FROM_THE_INPUT
            if not self.input_fixed:  # the input, not the layer, is likely what is wrong
                fix = Fix("input", value=(exc.expected, *sample[1:]))
        elif "input features" in message and producers and producers[0] >= 0:
            message += self._features_source(producers[0])
        if fix is None and hint is None:
            hint = exc.fix
        if isinstance(module, nn.Linear):
            expected = module.in_features
        elif isinstance(module, nn.LayerNorm):
            expected = module.normalized_shape[-1]
        self.fail(
            name,
            kind,
            sample,
            message,
            fix,
            hint=hint,
            inputs=tuple(producers),
            expected=expected,
        )

    def _features_source(self, producer: int) -> str:
        """' = 64×7×7 from layer2.3': where a flat vector's features came from."""
        row = self.rows[producer]
        if row.functional and row.type.startswith(("flatten", "view", "reshape")) and row.inputs:
            source = row.inputs[0]
            who = "the input" if source < 0 else self.rows[source].name
            if source >= 0 and self.rows[source].functional:
                who = f"{self.rows[source].type} in {self.rows[source].name}"
            return _words.features_from(row.input, who)
        return ""

    def post(self, module: nn.Module, args: tuple, kwargs: dict, output: object) -> object:
        self._busy = True
        try:
            return self._post(module, output)
        except _Stop:
            raise
        except Exception as exc:
            raise _Internal(
                f"after {type(module).__name__}: {traceback.format_exc(limit=-2)}"
            ) from exc
        finally:
            self._busy = False

    def _post(self, module, output):
        _, cid, counted = self._stack.pop()
        outs = _tensors(output, [])
        if self._unit_depth > 1:
            self._unit_depth -= 1
            return
        call = self.calls.get(cid)
        if not counted:  # a block: its rows are already recorded; note its output for --depth
            if call is not None and outs:
                found = self._lookup(outs[0])
                batch = found[1] if found else Batch(0)
                call.output = _batch.per_sample(tuple(outs[0].shape), batch)
                call.parts = (
                    [_batch.per_sample(tuple(o.shape), batch) for o in outs]
                    if len(outs) > 1
                    else []
                )
            return
        self._unit_depth = 0
        self._enter_mode()
        step, producers, sample, batch0, one, full_in = self._pending.pop()
        if one:
            output = self._widen(output)
            outs = _tensors(output, [])
        name, kind = self.names.get(module, type(module).__name__), type(module).__name__
        index = len(self.rows)
        if one:  # a per-image layer keeps the batch where it was
            batches = [batch0] * len(outs)
        else:
            batches = self._module_batches(module, full_in, batch0, outs)
        out = _batch.per_sample(tuple(outs[0].shape), batches[0]) if outs else None
        parts = [_batch.per_sample(tuple(o.shape), b) for o, b in zip(outs, batches, strict=True)]
        checked = False
        if step is not None and outs:
            real = tuple(outs[0].shape)
            checked = tuple(step.output) == real
            if not checked:
                self.mismatches.append(
                    f"{name} ({kind}): analytic {fmt_shape(step.output[1:])} ≠ forward pass "
                    f"{fmt_shape(real[1:])}"
                )
        scope = self._scope()
        self.rows.append(
            Row(
                name,
                kind,
                sample,
                out,
                step.formula if step else None,
                checked,
                producers,
                parts if len(parts) > 1 else [],
                scope,
            )
        )
        if call is not None:
            call.output, call.parts = out, parts if len(parts) > 1 else []
        if self.keep and outs:
            self.values[index] = (outs[0].detach(), batches[0])
        for o, b in zip(outs, batches, strict=True):
            self._register(o, index, b)
        if out is not None and batches[0].known and 0 in out:
            self.rows.pop()
            self.fail(name, kind, sample, _words.empty_map(out), hint=_words.EMPTY_MAP_HINT)
        return output if one else None

    def _leave_mode(self) -> None:
        if not self._popped and torch._C._len_torch_function_stack():
            torch._C._pop_torch_function_stack()
            self._popped = True

    def _enter_mode(self) -> None:
        if self._popped:
            torch._C._push_on_torch_function_stack(self)
            self._popped = False

    def _widen(self, output: object) -> object:
        """A per-image layer's output for one image, expanded (not copied) to the batch."""
        if isinstance(output, tuple):
            return type(output)(self._widen(o) for o in output)
        if not isinstance(output, torch.Tensor) or not output.dim() or output.shape[0] != 1:
            return output
        wide = output.expand(BATCH, *output.shape[1:])
        self._lazy[id(wide)] = weakref.ref(wide)
        return wide

    def _module_batches(self, module, full_in: Shape, batch0: Batch, outs) -> list[Batch]:
        batches = []
        for i, o in enumerate(outs):
            if isinstance(module, nn.RNNBase) and i > 0 and batch0.known:
                batches.append(Batch(o.dim() - 2))  # h and c: (layers, N, H)
                continue
            found = _batch.follow(full_in, batch0, tuple(o.shape)) if batch0.known else None
            batches.append(found or (Batch(None) if batch0.known else batch0))  # lost stays lost
        return batches

    # -- the pass ----------------------------------------------------------------------------
    def run(self, model: nn.Module, x: torch.Tensor) -> None:
        self._register(x, -1, Batch(0))
        try:
            with _hooks(model, self), self:
                try:
                    output = model(x)
                finally:
                    self._enter_mode()  # a unit that failed left it off the stack
            if not isinstance(output, torch.Tensor):
                self.returned = _words.returned_kind(output)
            outs = _tensors(output, [])
            if outs:
                self._check_output(outs[0])
        except _Stop:
            pass
        except _Internal as exc:
            self.mismatches.append(f"the tracer failed: {exc}")
        except SystemExit as exc:  # sys.exit() in forward: a diagnosis, never a silent exit
            self.failure = Failure(FUNCTIONAL, "forward", (), _words.exited(exc.code))
        except Exception as exc:  # torch or the model's own code raised outside a rule
            self._torch_failure(exc)
        finally:
            self._seen.clear()
            self._copies.clear()

    def _check_output(self, out: torch.Tensor) -> None:
        found = self._lookup(out)
        if found is None:
            return
        _, batch = found
        self.output = _batch.per_sample(tuple(out.shape), batch)
        if batch.lost_at is not None:
            row = self.rows[batch.lost_at]
            whole = tuple(out.shape)  # no batch in it any more: the output as it is
            self.fail(
                row.name,
                row.type,
                row.input,
                _words.batch_lost(row.type, whole),
                hint=_words.BATCH_LOST_HINT,
                functional=row.functional,
                inputs=tuple(row.inputs),
            )
        if batch.known and batch.fold > 1:
            row = self.rows[batch.fold_at] if batch.fold_at is not None else None
            fix = None
            if row is not None and row.op is not None:
                fix = self._batch_fix(self._row_func(row), row.input, row.op)
            self.failure = Failure(
                row.name if row else FUNCTIONAL,
                row.type if row else "output",
                row.input if row else self.output,
                _words.batch_folded(row.input if row else None, batch.fold),
                fix,
                functional=True,
                inputs=tuple(row.inputs) if row else (),
            )
            raise _Stop

    @staticmethod
    def _row_func(row: Row | None):
        if row is not None and row.type.startswith("flatten"):
            return torch.flatten
        if row is not None and row.type.startswith("reshape"):
            return torch.reshape
        return torch.Tensor.view

    def _torch_failure(self, exc: Exception) -> None:
        oom = isinstance(
            exc, (MemoryError, torch.OutOfMemoryError)
        ) or "can't allocate memory" in str(exc)
        where = FUNCTIONAL
        kind, shape = "forward", ()
        if self._pending and self._unit_depth:
            module = next((m for m, _, counted in reversed(self._stack) if counted), None)
            shape = self._pending[-1][2]
            if module is not None:
                where, kind = self.names.get(module, type(module).__name__), type(module).__name__
        elif self._stack:
            where = self._where()
        if oom:
            message, hint = _words.OUT_OF_MEMORY, _words.SMALLER_INPUT
        else:
            message, hint = _words.raised(type(exc).__name__, _first_line(exc)), None
        self.failure = Failure(where, kind, shape, message, None, kind == "forward", hint)


def _change_fix(name: str, exc: ShapeError) -> Fix | None:
    """The structured fix a layer's rule gave (``exc.change``), for the layer ``name``."""
    change = exc.change
    if change is None:
        return None
    if change[0] == "set":
        text = change[3] if len(change) > 3 else None
        return Fix("set", name, change[1], change[2], text=text)
    if change[0] == "replace":
        return Fix("replace", name, change[1], change[2], text=exc.fix)
    return Fix("code", name, text=exc.fix, edit=("before", name, change[1]))


@contextlib.contextmanager
def _hooks(model: nn.Module, tracer: Tracer) -> Iterator[None]:
    """Hooks on every module, removed on exit even when the forward pass fails."""
    handles = []
    try:
        for module in model.modules():
            handles.append(module.register_forward_pre_hook(tracer.pre, with_kwargs=True))
            handles.append(module.register_forward_hook(tracer.post, with_kwargs=True))
        yield
    finally:
        for handle in handles:
            handle.remove()
