"""The tracing engine: one forward pass, each tensor followed from the row that made it.

Layers are seen through module hooks; every other tensor operation in a ``forward``
through a :class:`~torch.overrides.TorchFunctionMode`. Each traced tensor maps, by a
weak reference (an ``id`` reused after a tensor dies no longer matches), to the row that
produced it, with its :class:`~archlab.trace._batch.Batch`. An operation gets a row when it
changes a shape, merges traced tensors, reshapes, or is an activation; the others
(``contiguous``, ``x * 0.5``) pass their input's row on. Before a layer or an operation
with a rule runs, its analytic output is computed; a misfit stops the pass with a
:class:`Failure`.

The engine's jobs each have a module: the records (:mod:`~archlab.trace._records`), one
image for the batch (:mod:`~archlab.trace._lazy`: layers that treat each image on its own
run on the first image only), where the batch is (:mod:`~archlab.trace._tracking`), the
failures (:mod:`~archlab.trace._diagnose`), and whether the model mixes the images of a
batch, checked on real values after a clean pass (:mod:`~archlab.trace._mixing`).
"""

from __future__ import annotations

import contextlib
import math
import traceback
import weakref
from collections.abc import Iterator

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from archlab.trace import _batch, _ops, _words
from archlab.trace._batch import BATCH, Batch
from archlab.trace._diagnose import Diagnosing
from archlab.trace._lazy import PER_IMAGE, LazyBatch, _per_image, _torch_forward
from archlab.trace._limits import memory_budget
from archlab.trace._mixing import keeps_apart, layer_keeps_apart, mixing_failure
from archlab.trace._records import (
    Failure,
    ModuleCall,
    Row,
    _first_line,
    _Internal,
    _shapes_for_tensors,
    _Stop,
    _tensors,
)
from archlab.trace._tracking import BatchTracking
from archlab.trace._words import FUNCTIONAL
from archlab.trace.fixes import Fix
from archlab.trace.formulas import Shape, ShapeError, Step, fmt_shape, infer_step

# the names other modules import from the engine
__all__ = ["FUNCTIONAL", "OPAQUE", "PER_IMAGE", "Failure", "ModuleCall", "Row", "Tracer"]

# modules called as one unit although they have children (their forward does not call them)
OPAQUE = (nn.MultiheadAttention,)

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


class Tracer(LazyBatch, Diagnosing, BatchTracking, TorchFunctionMode):
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
        self.edits = edits
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
        self.trail: list[tuple] | None = None  # with keep, a list: every value in order
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
        self.output_dtype: torch.dtype | None = None  # the output's (its first tensor's)
        self.output_batch: Batch | None = None  # where the output's images are
        self.final: torch.Tensor | None = None  # the output itself, with ``keep``
        self.mixable = False  # an op or layer ran that may read across images
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

    def _scope(self) -> tuple[int, ...]:
        if not self.blocks:
            return ()
        return tuple(cid for m, cid, _ in self._stack if m is not self.root)

    def _where(self) -> str:
        for module, _, _ in reversed(self._stack):
            if module is not self.root:
                return self.names.get(module, type(module).__name__)
        return FUNCTIONAL

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
        self.mixable = self.mixable or not keeps_apart(func, args, traced, batch, out_shape)
        if func in _ops.RESHAPES and batch0.dim == 0 and not batch.known:
            self._batch_failure(func, args, kwargs, traced, out_shape)
        if not is_row:
            if self.trail is not None:  # x.flip(0) makes no row but may mix the images
                label = _ops.label(func, args, kwargs, batch.dim)
                shape = _batch.per_sample(in_shape, batch0)
                self.trail.append(("op", outs[0].detach(), batch, label, self._where(), p0, shape))
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
        if self.keep:  # a copy: an in-place op later (ReLU(inplace=True)) must not change it
            self.values[index] = (outs[0].detach().clone(), batch)
            if self.trail is not None:
                self.trail.append(("row", index, *self.values[index]))
        for o in outs:
            self._register(o, index, batch)

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
        # a row's name: the model itself (one layer) is named by its type, as in its row
        named = self.names.get(module) or type(module).__name__
        if unit and self._before and args and named in self._before:
            args = (self._edit_input(args[0], self._before[named]), *args[1:])
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
        self.mixable = self.mixable or not layer_keeps_apart(module, args, kwargs, t0, batch0)
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
        if self.keep and outs:  # a copy, as above
            self.values[index] = (outs[0].detach().clone(), batches[0])
            if self.trail is not None:
                self.trail.append(("row", index, *self.values[index]))
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
                self.final = outs[0].detach() if self.keep else None
                self.output_dtype = outs[0].dtype
                self._check_output(outs[0])
            if outs and self.failure is None and not self.mismatches and not self.keep:
                self.failure = mixing_failure(self, model, x)  # on real values, apart
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
