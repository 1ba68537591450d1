"""Where the batch dimension is, tensor by tensor, as it moves through a forward pass.

archlab traces a batch of :data:`BATCH` images. Each traced tensor carries a
:class:`Batch`: which dim holds the images, and how many rows each image has there
(``fold`` > 1 after ``x.reshape(-1, C)`` turned (N, T, C) into (N·T, C), a legitimate
fold that a later reshape undoes). An operation that moves the batch elsewhere
(``x.view(-1, 784)`` on 3×28×28 images makes 6 rows out of 2 images) is found by
comparing shapes, never by guessing from sizes alone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from archlab.trace.formulas import Shape

# images per trace: more than one, so that an operation that mixes images shows, and a
# size that models rarely have themselves (2 would look like a 2-layer GRU's hidden state,
# 3 like RGB, 4 to 8 like heads, windows and 7×7 maps), so the batch is never mistaken for
# a model's own dimension
BATCH = 11


@dataclass(frozen=True)
class Batch:
    """The batch's dim in a tensor (``None``: not known), and rows per image there."""

    dim: int | None
    fold: int = 1
    lost_at: int | None = None  # the row that reduced or indexed the batch away
    fold_at: int | None = None  # the row that folded part of each image into the batch

    @property
    def known(self) -> bool:
        return self.dim is not None


UNKNOWN = Batch(None)


def per_sample(shape: Shape, batch: Batch) -> Shape:
    """The shape of one image's share: the batch dim left out (its fold kept)."""
    if batch.dim is None or batch.dim >= len(shape):
        return tuple(shape)
    if batch.fold > 1:
        return (*shape[: batch.dim], batch.fold, *shape[batch.dim + 1 :])
    return (*shape[: batch.dim], *shape[batch.dim + 1 :])


def follow(in_shape: Shape, batch: Batch, out_shape: Shape) -> Batch | None:
    """The batch in ``out_shape`` when the op kept everything before it in place.

    Returns None when no output dim lines up with the input's batch dim.
    """
    if batch.dim is None or batch.dim >= len(in_shape):
        return None
    b = batch.dim
    size, prefix = in_shape[b], math.prod(in_shape[:b])
    for j in range(len(out_shape)):
        if math.prod(out_shape[:j]) != prefix:
            continue
        if out_shape[j] == size:
            return Batch(j, batch.fold, fold_at=batch.fold_at)
        if batch.fold > 1 and out_shape[j] % BATCH == 0 and size % out_shape[j] == 0:
            fold = out_shape[j] // BATCH  # (N·T, C) → (N, T, C): the fold undone
            return Batch(j, fold, fold_at=batch.fold_at if fold > 1 else None)
    return None


def leading_merge(in_shape: Shape, batch: Batch, out_shape: Shape, row: int) -> Batch | None:
    """``(N, T, C) → (N·T, C)``: the batch merged with the dims right after it, each output
    row holding part of one image only (Swin's windows, a Linear applied per time step).
    Legitimate when a later reshape undoes it; if it reaches the output, it is the bug
    ``view(-1, 784)`` on 3×28×28 images is (the output check names this row)."""
    if batch.dim != 0 or len(out_shape) < 2 or not in_shape:
        return None
    for k in range(2, len(in_shape)):
        if math.prod(in_shape[:k]) == out_shape[0] and math.prod(out_shape[1:]) == math.prod(
            in_shape[k:]
        ):
            return Batch(0, out_shape[0] // BATCH, fold_at=row)
    return None


def permuted(batch: Batch, order: list[int], rank: int) -> Batch:
    if batch.dim is None:
        return batch
    order = [d % rank for d in order]
    if batch.dim not in order:
        return UNKNOWN
    return Batch(order.index(batch.dim), batch.fold, fold_at=batch.fold_at)


def transposed(batch: Batch, a: int, b: int, rank: int) -> Batch:
    if batch.dim is None or not rank:
        return batch
    a, b = a % rank, b % rank
    dim = b if batch.dim == a else a if batch.dim == b else batch.dim
    return Batch(dim, batch.fold, fold_at=batch.fold_at)


def reduced(batch: Batch, dims: list[int], keepdim: bool, row: int) -> Batch:
    """After ``mean``/``sum``/``amax`` over ``dims``: lost if the batch was one of them."""
    if batch.dim is None:
        return batch
    if batch.dim in dims:
        return Batch(None, lost_at=row)
    dim = batch.dim if keepdim else batch.dim - sum(d < batch.dim for d in dims)
    return Batch(dim, batch.fold, fold_at=batch.fold_at)


def indexed(batch: Batch, items: object, in_shape: Shape, out_shape: Shape, row: int) -> Batch:
    """After ``x[items]``: where the batch dim went, or lost if an index took one image."""
    if batch.dim is None:
        return batch
    items = items if isinstance(items, tuple) else (items,)
    if any(not isinstance(i, (int, slice, type(None), type(Ellipsis))) for i in items):
        return follow(in_shape, batch, out_shape) or UNKNOWN  # tensor indices: by shapes
    consuming = sum(1 for i in items if i is not None and i is not Ellipsis)
    expanded: list[object] = []
    for item in items:
        if item is Ellipsis:
            expanded += [slice(None)] * (len(in_shape) - consuming)
        else:
            expanded.append(item)
    expanded += [slice(None)] * (len(in_shape) - sum(1 for i in expanded if i is not None))
    in_dim = out_dim = 0
    for item in expanded:
        if item is None:
            out_dim += 1
            continue
        if in_dim == batch.dim:
            if isinstance(item, int):
                return Batch(None, lost_at=row)
            if out_dim < len(out_shape) and out_shape[out_dim] == in_shape[in_dim]:
                return Batch(out_dim, batch.fold, fold_at=batch.fold_at)
            return Batch(None, lost_at=row)  # x[:1] keeps one image of the batch
        in_dim += 1
        out_dim += 0 if isinstance(item, int) else 1
    return UNKNOWN


def stacked(batch: Batch, dim: int, rank: int, stack: bool, row: int) -> Batch:
    """After ``torch.stack(..., dim)`` (a new dim before or after the batch) or
    ``unbind(dim)`` (one dim gone): the batch moves by one, or is lost if unbound itself."""
    if batch.dim is None:
        return batch
    if stack:
        d = dim % (rank + 1)
        return Batch(batch.dim + (d <= batch.dim), batch.fold, fold_at=batch.fold_at)
    d = dim % rank if rank else 0
    if d == batch.dim:
        return Batch(None, lost_at=row)
    return Batch(batch.dim - (d < batch.dim), batch.fold, fold_at=batch.fold_at)


def einsum(batch: Batch, args: tuple, traced, row: int) -> Batch:
    """After ``torch.einsum("bchw,ck->bkhw", ...)``: where the batch's letter lands."""
    import torch

    equation = args[0] if args and isinstance(args[0], str) else None
    if equation is None or "->" not in equation or "..." in equation:
        return UNKNOWN
    inputs, output = equation.replace(" ", "").split("->")
    operands = args[1:]
    if len(operands) == 1 and isinstance(operands[0], (tuple, list)):
        operands = tuple(operands[0])
    first = traced[0][0]
    for letters, operand in zip(inputs.split(","), operands, strict=False):
        if isinstance(operand, torch.Tensor) and operand is first:
            if batch.dim is None or batch.dim >= len(letters):
                return UNKNOWN
            letter = letters[batch.dim]
            if letter not in output:
                return Batch(None, lost_at=row)  # summed over the images
            return Batch(output.index(letter), batch.fold, fold_at=batch.fold_at)
    return UNKNOWN
