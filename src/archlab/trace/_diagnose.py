"""Building the :class:`~archlab.trace._records.Failure` a misfit stops the pass with.

A layer's rule, an operation's rule, torch itself or the memory budget said no; these
turn what was said into the failure's words, its structured fix (still to be tried, by
:mod:`archlab.trace._trial`) and the rows it read.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from archlab.trace import _batch, _ops, _words
from archlab.trace._batch import Batch
from archlab.trace._records import Failure, _first_line, _Stop
from archlab.trace._words import FUNCTIONAL
from archlab.trace.fixes import Fix
from archlab.trace.formulas import ChannelError, RankError, Shape, ShapeError, fmt_shape


class Diagnosing:
    """The :class:`~archlab.trace._engine.Tracer`'s failures, and the words that say where
    a tensor came from (a mixin)."""

    def _source(self, producer: int, t: torch.Tensor, batch: Batch) -> str:
        shape = _batch.per_sample(tuple(t.shape), batch)
        if producer < 0:
            return _words.source(None, shape)
        row = self.rows[producer]
        who = row.name if not row.functional else f"{row.type} in {row.name}"
        if row.functional and row.name == FUNCTIONAL:
            who = f"{row.type} (row {producer + 1})"  # two branches never read the same
        return _words.source(who, shape)

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
