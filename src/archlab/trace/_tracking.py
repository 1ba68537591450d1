"""Batch tracking: where each traced tensor's batch dim is after an operation or a layer.

The rules on shapes are :mod:`archlab.trace._batch`'s; these methods read an operation's
arguments to pick the rule, and check the model's output: a batch reduced away or folded
into the features stops the pass with a failure that names the row that did it.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from archlab.trace import _batch, _ops, _words
from archlab.trace._batch import BATCH, Batch
from archlab.trace._records import Failure, Row, _Stop
from archlab.trace._words import FUNCTIONAL
from archlab.trace.fixes import Fix
from archlab.trace.formulas import Shape


class BatchTracking:
    """The :class:`~archlab.trace._engine.Tracer`'s batch dims (a mixin)."""

    def _batch_after(self, func, args, kwargs, traced, out: torch.Tensor, row: int) -> Batch:
        t0, _, b0 = next(((t, p, b) for t, p, b in traced if b.known), traced[0])
        in_shape, out_shape = tuple(t0.shape), tuple(out.shape)
        if not b0.known:
            return b0
        call = _ops.Call("", args, kwargs, [in_shape], [])
        if func in (torch.Tensor.t, torch.t) and len(in_shape) == 2:
            return _batch.transposed(b0, 0, 1, 2)  # x @ x.t(): the images become columns
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

    def _module_batches(self, module, full_in: Shape, batch0: Batch, outs) -> list[Batch]:
        batches = []
        for i, o in enumerate(outs):
            if isinstance(module, nn.RNNBase) and i > 0 and batch0.known:
                batches.append(Batch(o.dim() - 2))  # h and c: (layers, N, H)
                continue
            found = _batch.follow(full_in, batch0, tuple(o.shape)) if batch0.known else None
            batches.append(found or (Batch(None) if batch0.known else batch0))  # lost stays lost
        return batches

    def _check_output(self, out: torch.Tensor) -> None:
        found = self._lookup(out)
        if found is None:
            return
        _, batch = found
        self.output = _batch.per_sample(tuple(out.shape), batch)
        self.output_batch = batch
        if batch.lost_at is not None:
            row = self.rows[batch.lost_at]
            whole = tuple(out.shape)  # no batch in it any more: the output as it is
            self.fail(
                row.name,
                row.type,
                row.input,
                _words.batch_lost(whole),
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
