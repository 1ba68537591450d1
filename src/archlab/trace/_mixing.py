"""Whether a model mixes the images of a batch, checked directly on real values.

An image's prediction must not depend on the other images of its batch: a GRU without
``batch_first=True`` fed (N, T, F) runs along the batch, ``x - x.mean(0)`` centres each
image on the others, attention over dim 0 attends across images. Shapes alone rarely show
it, so after a clean trace the model runs on random images: two batches A and B, and for
each bit of an image's index a batch C taking the images whose bit is set from B, the
others from A. A model that treats each image on its own gives every image of C the
output it has in A or B; any two images differ in some bit, so an image whose output
depends on another's moves in at least one C. This runs the plain model (no trace, no
one-image shortcut, nothing hidden), on :data:`CHECK_IMAGES` images. It is skipped where
the trace itself proves the images kept apart: every layer one of torch's per-image layers
fed the images in dim 0, every operation one that keeps one row per image in dim 0
(:func:`layer_keeps_apart`, :func:`keeps_apart`); a torchvision classifier then costs no
more than its trace.

Where an image moved, traced passes of A, B and C at the trace's own batch, every row's
values kept, name the first row whose output moved: the layer or operation that mixes.
The check runs in the trace's eval mode, where BatchNorm uses its running statistics
(in train mode it mixes by design); a BatchNorm that uses the batch's statistics even
then (``track_running_stats=False``) is left alone.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from archlab.trace import _ops, _words
from archlab.trace._batch import Batch
from archlab.trace._lazy import _per_image
from archlab.trace._records import Failure, _tensors
from archlab.trace._words import FUNCTIONAL
from archlab.trace.fixes import Fix

# images per check: every pair of 3 differs in one of 2 bits, so 4 passes of 3 images
CHECK_IMAGES = 3
SEEDS = (1, 2)  # the random images of batches A and B
RTOL, ATOL = 1e-4, 1e-5  # float noise, far below what another image moves


def mixing_failure(tracer, model: nn.Module, x: torch.Tensor) -> Failure | None:
    """The failure naming the first row that mixes images, or None when none does.

    Args:
        tracer: the :class:`~archlab.trace._engine.Tracer` that traced ``x`` cleanly (its
            ``output_batch`` says where the output's images are; its ``edits``, a trial's
            code changes, are made on every pass here too).
        model: the model it traced, in the mode it traced it.
        x: the trace's input, (N, ...): its size, dtype and device are used, not its values.

    Returns:
        A :class:`~archlab.trace._records.Failure` (its fix, for an RNN, still to be
        tried), or None.
    """
    batch = tracer.output_batch
    if not tracer.mixable:  # every layer ran on one image, every operation kept them apart
        return None
    if batch is None or batch.dim is None or x.dim() == 0 or x.shape[0] < 2:
        return None
    with torch.no_grad():
        if not _mixes(tracer, model, x, batch.dim):
            return None
        return _locate(tracer, model, x)


# operations that treat each image on its own when every traced tensor they read, and
# their output, hold the batch in dim 0 with one row per image (then a reduction, permute,
# cat or reshape works within each image); matmul and indexing have conditions of their own
_APART = (
    _ops.ELEMENTWISE
    | set(_ops.RESHAPES)
    | _ops.REDUCTIONS
    | _ops.PERMUTES
    | set(_ops.CATS)
    | {torch.stack, torch.Tensor.contiguous, torch.Tensor.clone, torch.Tensor.detach}
    | {torch.Tensor.float, torch.Tensor.__getitem__}
)
_MATMULS = {torch.matmul, torch.Tensor.matmul, torch.Tensor.__matmul__, torch.bmm}


def keeps_apart(func, args: tuple, traced: list, batch: Batch, out_shape: tuple) -> bool:
    """True when an operation provably keeps each image apart, so that a trace made only
    of such operations and of layers run on one image needs no check on values.

    Args:
        func: the torch function called.
        args: its positional arguments.
        traced: ``(tensor, producer row, Batch)`` for each traced tensor it read.
        batch: the output's batch, as the tracer tracked it.
        out_shape: the output's shape.

    Returns:
        False for anything not shown safe (the check on values then decides).
    """
    n = traced[0][0].shape[0] if traced[0][0].dim() else 0

    def first(b: Batch) -> bool:  # the images in dim 0, one row each
        return b.dim == 0 and b.fold == 1

    if not first(batch) or out_shape[:1] != (n,):
        return False
    if any(not first(b) or t.shape[:1] != (n,) for t, _, b in traced):
        return False
    if func in _MATMULS:  # w @ x with both traced sums over x's images: batched only
        operand = args[0] if args else None
        alone = len(traced) == 1 and traced[0][0] is operand
        return alone or all(t.dim() >= 3 for t, _, _ in traced)
    if func is torch.Tensor.__getitem__:  # x[perm] reorders the images
        items = args[1] if isinstance(args[1], tuple) else (args[1],)
        return all(isinstance(i, (int, slice, type(None), type(Ellipsis))) for i in items)
    return func in _APART


def layer_keeps_apart(module: nn.Module, args: tuple, kwargs: dict, t0, batch: Batch) -> bool:
    """True when a layer provably treats each image on its own: one of torch's per-image
    layers (in the mode it runs in: BatchNorm in eval), a dropout, or a Flatten from dim 1,
    fed the images in dim 0 as its only input."""
    if len(args) != 1 or kwargs or t0 is not args[0] or batch.dim != 0 or batch.fold != 1:
        return False
    if _per_image(module) or isinstance(module, (nn.modules.dropout._DropoutNd, nn.Identity)):
        return True
    return isinstance(module, nn.Flatten) and module.start_dim % max(t0.dim(), 1) >= 1


def _masks(n: int) -> list[torch.Tensor]:
    """For each bit of an image's index, which images take it set (from batch B)."""
    index = torch.arange(n)
    return [(index >> bit) & 1 == 1 for bit in range(max(1, math.ceil(math.log2(n))))]


def _images(model: nn.Module, x: torch.Tensor, n: int, seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    shape = (n, *x.shape[1:])
    if x.is_floating_point():
        return torch.rand(shape, generator=generator, dtype=x.dtype).to(x.device)
    tables = [m.num_embeddings for m in model.modules() if hasattr(m, "num_embeddings")]
    high = min(tables, default=2)  # token ids every Embedding of the model takes
    return torch.randint(0, high, shape, generator=generator).to(x.device, x.dtype)


def _mix(a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor, dim: int) -> torch.Tensor:
    """``a`` with the images ``mask`` picks (along ``dim``) taken from ``b``."""
    shape = [1] * a.dim()
    shape[dim] = -1
    return torch.where(mask.to(a.device).view(shape), b, a)


def _moved(c: torch.Tensor, ref: torch.Tensor) -> list[int]:
    """The images (dim 0) whose values in ``c`` are not those of ``ref``."""
    c, ref = c.double().reshape(len(c), -1), ref.double().reshape(len(ref), -1)
    far = (c - ref).abs() > ATOL + RTOL * ref.abs()
    far &= ~(c.isnan() & ref.isnan())
    return [i for i in range(len(c)) if bool(far[i].any())]


def _run(tracer, model: nn.Module, images: torch.Tensor, keep: bool):
    """One pass over ``images`` with the model's own randomness the same every time:
    the output tensor, or the keeping tracer with ``keep``; None if it cannot run so."""
    devices = [images.device] if images.device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(0)
        try:
            if not keep and not tracer.edits:
                outs = _tensors(model(images), [])
                return outs[0].detach() if outs else None
            traced = type(tracer)(model, edits=tracer.edits, keep=True)
            traced.trail = [] if keep else None
            traced.run(model, images)
        except Exception:  # random images a model cannot take (values it checks): no verdict
            return None
    if traced.failure is not None or traced.mismatches:
        return None
    return traced if keep else traced.final


def _mixes(tracer, model: nn.Module, x: torch.Tensor, dim: int) -> bool:
    """Whether some image's output depends on another image (the bits check above)."""
    sizes = (CHECK_IMAGES, x.shape[0]) if not tracer.edits else (x.shape[0],)
    for n in dict.fromkeys(sizes):
        a, b = (_images(model, x, n, seed) for seed in SEEDS)
        out_a, out_b = _run(tracer, model, a, False), _run(tracer, model, b, False)
        if out_a is None or out_b is None or out_a.shape != out_b.shape:
            continue
        if out_a.dim() <= dim or out_a.shape[dim] != n:
            continue  # the batch is elsewhere at this size: try the trace's own
        for mask in _masks(n):
            out_c = _run(tracer, model, _mix(a, b, mask, 0), False)
            if out_c is None or out_c.shape != out_a.shape:
                continue
            ref = _mix(out_a, out_b, mask, dim)
            if _moved(out_c.movedim(dim, 0), ref.movedim(dim, 0)):
                return True
        return False
    return False


def _by_image(value: torch.Tensor, batch: Batch, n: int) -> torch.Tensor | None:
    """A row's value as (n, ...), one image each (its fold's rows kept together)."""
    if batch.dim is None or batch.dim >= value.dim():
        return None
    value = value.movedim(batch.dim, 0)
    if value.shape[0] != n * batch.fold:
        return None
    return value.reshape(n, -1)


def _locate(tracer, model: nn.Module, x: torch.Tensor) -> Failure | None:
    """The first row, or operation without a row of its own (``x.flip(0)``), whose output
    moved for an image when only other images changed."""
    n = x.shape[0]
    a, b = (_images(model, x, n, seed) for seed in SEEDS)
    ta, tb = _run(tracer, model, a, True), _run(tracer, model, b, True)
    if ta is not None and tb is not None and len(ta.trail) == len(tb.trail):
        for mask in _masks(n):
            tc = _run(tracer, model, _mix(a, b, mask, 0), True)
            if tc is None or len(tc.trail) != len(ta.trail):
                continue
            for k, event in enumerate(tc.trail):
                if _moved_at(ta.trail[k], tb.trail[k], event, mask, n):
                    return _failure(tracer, model, ta, event)
    output = tracer.output or ()
    return Failure(FUNCTIONAL, "output", output, _words.MIXES, hint=_words.MIXES_HINT)


def _value(event: tuple) -> tuple[torch.Tensor, Batch]:
    return (event[2], event[3]) if event[0] == "row" else (event[1], event[2])


def _moved_at(ea: tuple, eb: tuple, ec: tuple, mask: torch.Tensor, n: int) -> int:
    """How many images' values moved at this point of the pass (0 if it cannot be told)."""
    (va, batch), (vb, _), (vc, _) = _value(ea), _value(eb), _value(ec)
    if not (va.shape == vb.shape == vc.shape):
        return 0
    ya, yb, yc = (_by_image(v, batch, n) for v in (va, vb, vc))
    if ya is None or yb is None or yc is None:
        return 0
    return len(_moved(yc, _mix(ya, yb, mask, 0)))


def _failure(tracer, model: nn.Module, ta, event: tuple) -> Failure | None:
    """The failure for the first point of the pass (a row, or an operation without one)
    where the images mixed; ``ta`` is a keeping trace whose values say where batches were."""
    if event[0] == "op":  # an operation that kept the shape: no row, its own words
        _, _, _, label, where, producer, shape = event
        inputs = (producer,) if producer >= 0 else (-1,)
        message, hint = _words.MIXES, _words.MIXES_HINT
        return Failure(where, label, shape, message, functional=True, hint=hint, inputs=inputs)
    rows = tracer.rows if len(tracer.rows) == len(ta.rows) else ta.rows
    row = rows[event[1]]
    lost = [i for i in row.inputs if i >= 0 and ta.values.get(i, (0, Batch(0)))[1].lost_at]
    if lost:  # x - x.mean(0): the reduction over the batch is where the images met
        row = rows[lost[0]]
    module = None if row.functional else dict(model.named_modules()).get(row.name)
    fix, hint = None, _words.MIXES_HINT
    if isinstance(module, nn.modules.batchnorm._BatchNorm):
        return None  # batch statistics: mixing by design, not a mistake
    first = row.inputs[0] if row.inputs else -1
    read = ta.values[first][1] if first in ta.values else Batch(0)
    if isinstance(module, nn.RNNBase) and not module.batch_first:
        message = _words.rnn_across_batch(type(module).__name__)
        fix, hint = Fix("set", row.name, "batch_first", True), None
    elif module is not None and _per_image(module) and read.dim == 0:
        # a layer that treats each image of dim 0 on its own: what it read was mixed
        message = _words.MIXED_BEFORE
    else:
        message = _words.MIXES
    return Failure(
        row.name,
        row.type,
        row.input,
        message,
        fix,
        functional=row.functional,
        hint=hint,
        inputs=tuple(row.inputs),
        op=row.op,
    )
