"""Trying fixes: a fix is shown only once, made on a copy of the model, it made it run.

Where a layer does not fit, the local fix (resize that layer) is right only when the
mistake is the layer's. When it is upstream (a ``torch.cat`` along the wrong dim, a
``transpose`` of the wrong pair, a ``view`` that cuts across images, a layer before that
outputs the wrong number of channels), resizing the layer makes a later one break, or
cannot even be built. So each candidate, local first unless the layer's own size is
still in its input (then a dim was moved, and upstream first), is made on a copy and the
model traced again; a trial that fails further on with a fix of its own is extended by
that fix (a ``view`` kept per image, then the Linear after it resized). The first that
runs to the end with the intended output is the fix; where none does, the diagnosis has
no fix, and says what was tried.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator

import torch

from archlab.errors import ArchlabError
from archlab.trace import _ops, _words
from archlab.trace._batch import BATCH
from archlab.trace._engine import FUNCTIONAL, Failure, Tracer
from archlab.trace.fixes import Fix, apply_fix, kind_changed
from archlab.trace.formulas import fmt_shape

MAX_TRIALS = 16  # traces per diagnosis: a classroom model's trace takes milliseconds
MAX_CHAIN = 3  # changes in one fix (a view, then the Linear after it)
UPSTREAM_ROWS = 8  # how far back from the misfit to look for the operation that caused it


def settle(
    failure: Failure,
    tracer: Tracer,
    run: Callable[[object], Tracer],
    model,
    shape,
    dtype,
    expect,
) -> tuple[Fix | None, str | None, list[str]]:
    """The tried fix (or None), the hint to show without one, and what would not help."""
    local = failure.fix
    upstream = list(_upstream(failure, tracer))
    if local is not None and _moved(failure):
        # the size is there, in the wrong dim: a transpose just before, then upstream
        k = failure.input.index(failure.expected) + 1  # + 1: the batch's dim 0
        last = len(failure.input)
        text = f"x.transpose({k}, {last}) before {failure.layer}"
        swap = Fix("code", failure.layer, text=text, edit=("before", failure.layer, (k, last)))
        candidates = [swap, *upstream, local]
    else:
        candidates = [c for c in (local, *upstream) if c is not None]
    if not candidates:
        return None, failure.hint, []
    tried: list[str] = []
    budget = [MAX_TRIALS]
    for fix in candidates:
        outcome, working = _attempt(fix, run, model, shape, dtype, expect, budget)
        if working is not None:
            return working, None, tried
        if fix is local and outcome:
            tried.append(_words.would_not_help(local, outcome))
        if budget[0] <= 0:
            break
    hint = failure.hint if local is None else None
    return None, hint, tried


def _moved(failure: Failure) -> bool:
    """The size the layer wants is in its input, only elsewhere: a dim was moved."""
    want = failure.expected
    return want is not None and want in failure.input[:-1] and failure.input[-1:] != (want,)


def _attempt(fix: Fix, run, model, shape, dtype, expect, budget) -> tuple[str, Fix | None]:
    """Make ``fix`` on a copy and trace; extend it by the next failure's own fix."""
    for _ in range(MAX_CHAIN):
        if budget[0] <= 0:
            return "", None
        budget[0] -= 1
        try:
            trial = apply_fix(model, fix, shape, dtype)
        except ArchlabError as exc:  # a constructor refuses the value
            return f"the layer cannot be built so ({str(exc).rpartition(': ')[2]})", None
        changed = kind_changed(model, trial.model)
        if changed:  # it builds, but as another kind of layer: not a fix
            return changed, None
        try:
            traced = run(trial)
        except Exception:  # a trial that the tracer cannot even start: not a fix
            return "", None
        if traced.mismatches:
            return "", None
        failure = traced.failure
        if failure is None:
            if traced.output is None:
                return "the model then returns no output", None
            if expect is not None and tuple(traced.output) != tuple(expect):
                return (
                    f"the model then outputs {fmt_shape(traced.output)} per image, "
                    f"not {fmt_shape(expect)}"
                ), None
            return "", fix
        if failure.fix is None or failure.fix in fix.steps():
            return _fails_at(failure), None
        fix = fix.then(failure.fix)
    return _fails_at(failure), None


def _fails_at(failure: Failure) -> str:
    if failure.layer == FUNCTIONAL:
        return f"the model then fails in forward, at {failure.type}"
    return f"the model then fails at {failure.layer} ({failure.type})"


# -- where the wrong shape was made ------------------------------------------------------------
def _upstream(failure: Failure, tracer: Tracer) -> Iterator[Fix]:
    """Changes to the operations and layers that fed the misfit, nearest first."""
    if failure.op is not None and failure.op in tracer.op_calls:  # the operation itself
        yield from _op_fixes(failure.layer, failure.op, tracer.op_calls[failure.op], failure, 0)
    rows, seen = tracer.rows, set()
    frontier = [i for i in failure.inputs if i >= 0]
    modules = dict(tracer.root.named_modules())
    while frontier and len(seen) < UPSTREAM_ROWS:
        index = frontier.pop(0)
        if index in seen:
            continue
        seen.add(index)
        row = rows[index]
        frontier += [i for i in row.inputs if i >= 0]
        if row.functional and row.op is not None and row.op in tracer.op_calls:
            flat = len(row.output or ()) == 1
            yield from _op_fixes(row.name, row.op, tracer.op_calls[row.op], failure, flat)
        elif not row.functional and failure.expected is not None:
            module = modules.get(row.name)
            for argument in ("out_channels", "out_features"):
                if hasattr(module, argument) and getattr(module, argument) != failure.expected:
                    yield Fix("set", row.name, argument, failure.expected)
                    break


def _op_fixes(where: str, op: int, call: tuple, failure: Failure, flat: bool) -> Iterator[Fix]:
    """Other arguments for the ``op``-th call: a cat's other dims, a transpose's other
    pairs, a permute's other orders (the batch's dim kept), a reshape that keeps the batch."""
    func, rank, batch, detail = call
    keep = {batch % rank} if batch is not None and rank else set()
    free = [d for d in range(rank) if d not in keep]
    if func in _ops.CATS:
        current = detail % rank if rank else detail
        for d in free:
            if d != current:
                text = f"torch.cat(..., dim={d}) instead of dim={detail}"
                yield Fix("code", where, text=text, edit=("op", op, ("dim", d)))
    elif func in (torch.Tensor.transpose, torch.transpose):
        current = tuple(sorted(d % rank for d in detail))
        for pair in itertools.combinations(free, 2):
            if pair != current:
                text = f"transpose{pair} instead of transpose{tuple(detail)}"
                yield Fix("code", where, text=text, edit=("op", op, ("dims", pair)))
    elif func in _ops.PERMUTES and rank <= 4:
        current = tuple(d % rank for d in detail)
        for order in itertools.permutations(range(rank)):
            if order != current and all(order[d] == d for d in keep):
                text = f"permute{order} instead of permute{tuple(detail)}"
                yield Fix("code", where, text=text, edit=("op", op, ("order", order)))
    elif func in _ops.RESHAPES and failure.expected is not None and not flat:
        kind = _ops.RESHAPES[func]
        change = ("start", 1) if kind == "flatten" else ("shape", (BATCH, -1))
        text = "torch.flatten(x, 1)" if kind == "flatten" else f"x.{kind}(x.size(0), -1)"
        yield Fix("code", where, text=text, edit=("op", op, change))
