"""Receptive fields from a finished trace: which input pixels each unit of each row sees.

Computed per spatial axis from the rows (their ``inputs``, their modules' geometry, the
arguments of the operations a ``forward`` calls, and their output sizes). A field is the
set of input pixels a unit depends on when the image is extended in every direction:
padding stands for the units an extended image would have there. For every unit ``o`` of
a row, along each axis, two intervals of input pixels are kept:

- the textbook one (``full``), which may reach into the padding (negative positions, or
  past the image's edge): for a chain its size is the ``r`` of the recurrence
  ``r ← r + (d·(k − 1) + 1 − 1)·j``, ``j ← j·s``, and its first pixel for unit 0 is
  ``start``. A position outside a layer's input is followed back through the layers before
  it as the extended image would have it, so ``start`` stays right after transposed
  convolutions, upsampling and explicit pads;
- the pixels the unit really reads (``seen``): the same, read through real positions only
  (clipped to the image, mirrored by a reflection pad, clamped where an interpolation
  clamps). This is what the gradient of one unit shows (the empirical check) and what
  ``draw --field`` draws.

Each layer is a map from an output unit to the input positions it reads:

- convolution and pooling: the window ``o·s − p … o·s − p + d·(k − 1)``; transposed
  convolution: the inputs ``q`` with ``q·s − p + t·d = o``, so the jump divides by ``s``;
- ``nn.Upsample`` / ``F.interpolate``: nearest reads ``⌊o·scale⌋`` (``scale`` = 1/factor
  when a factor is given, else in/out, in float32 as torch computes it); nearest-exact
  ``⌊(o + ½)·scale⌋``; (bi)linear the two neighbours of ``(o + ½)·scale − ½`` (``o·scale``
  with ``align_corners``), bicubic four; a neighbour of weight 0 is not read;
- adaptive pooling: bin ``i`` covers ``⌊i·n/m⌋ … ⌈(i + 1)·n/m⌉ − 1``;
- ``nn.ZeroPad2d`` and the other pads, ``F.pad``: unit ``o`` is input ``o − left``;
- slicing (``x[:, :, 2:-2]``): unit ``o`` is input ``start + o·step``;
- a mean (or sum, max, ...) over spatial dimensions: one unit reads every position;
- flattening keeps each unit's field (one unit is one pixel's field); a ``Linear`` after
  it reads all of them.

A merge (``add``, ``cat`` along the channels, ``mul``) sees the union of its inputs'
fields; where they differ the reported interval along each axis is their hull (a 3×1
branch and a 1×3 branch give 3×3: the cross they cover plus its corners). After a ``cat``
each channel still sees only its own branch's field: the row reports the union over its
channels (a ``PixelShuffle`` that moves channels of unequal fields to neighbouring units
reports that union for each of them). Normalisation layers count as pointwise (their
statistics are ignored, as in the textbook), an empty ``nn.Sequential()`` as the
identity. A row whose geometry is not known (an unknown operation that changes the
spatial size, a permute that moves H or W, attention) has no field, nor do the rows that
read it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING

from torch import nn

from archlab.trace._geometry import (
    Layer,
    Taps,
    arg,
    everything,
    keeps_positions,
    module_layers,
    op_layers,
    reduced,
)
from archlab.trace.formulas import ELEMENTWISE, fmt_shape

if TYPE_CHECKING:
    from archlab.trace.shapes import ShapeReport

__all__ = ["ReceptiveField", "covers_image", "field_states", "receptive_fields"]

Interval = tuple[int, int] | None


@dataclass
class ReceptiveField:
    """One row's receptive field, per spatial axis (e.g. ``(H, W)``).

    ``size``: the largest field of one unit in input pixels, counting padding (the
    textbook ``r``); ``jump``: input pixels between neighbouring units (the effective
    stride ``j``; a fraction after a transposed convolution or upsampling, the mean step
    after an adaptive pooling whose bins are uneven); ``start``: the first input pixel of
    unit 0's field on the extended image (negative: it reaches into the padding by that
    much); ``seen``: the pixels the middle unit sees inside the image, ``(first, last)``
    per axis. ``uniform``: every unit's field has the same size (False at a merge of
    unequal fields, a transposed convolution, an interpolation or an uneven adaptive
    pooling, where ``size`` is the largest).

    Example::

        >>> report = archlab.trace_shapes("cnn")
        >>> field = report.layers[7].receptive  # layer2.3, the second max-pooling
        >>> field.size, field.jump, field.start
        ((10, 10), (4, 4), (-1, -1))
    """

    size: tuple[int, ...]
    jump: tuple[float, ...]
    start: tuple[int, ...]
    seen: tuple[tuple[int, int], ...]
    units: tuple[int, ...] = ()  # the grid of units per axis (1: one unit sees it all)
    uniform: bool = True

    def __str__(self) -> str:
        size = fmt_shape(self.size)
        jump = "×".join(_num(j) for j in dict.fromkeys(self.jump))
        step = "" if all(u == 1 for u in self.units) else f" /{jump}"
        return f"{'≤' if not self.uniform else ''}{size}{step}"


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:.3g}"


def _hull(intervals) -> Interval:
    got = [iv for iv in intervals if iv is not None]
    if not got:
        return None
    return min(a for a, _ in got), max(b for _, b in got)


class _Axis:
    """One axis of a row: per unit, the textbook interval (``full``) and the pixels really
    read (``seen``); ``sources`` say how a unit outside the row's range (the extended
    image's) is read from the rows before: ``(axis, taps)`` pairs."""

    def __init__(
        self,
        full: list[Interval],
        seen: list[Interval],
        jump: Fraction = Fraction(1),
        sources: Sequence[tuple[_Axis, Taps]] = (),
    ) -> None:
        self.full, self.seen, self.jump, self.sources = full, seen, jump, list(sources)
        self._far: dict[int, Interval] = {}

    def __len__(self) -> int:
        return len(self.full)

    def _known(self, i: int) -> bool:
        return 0 <= i < len(self.full) or not self.sources or i in self._far

    def _get(self, i: int) -> Interval:
        if 0 <= i < len(self.full):
            return self.full[i]
        return self._far[i] if self.sources else (i, i)

    def virtual(self, i: int) -> Interval:
        """The textbook interval of unit ``i`` of the extended map (any integer ``i``),
        followed back through the rows before (without recursion: deep nets)."""
        stack = [(self, i)]
        while stack:
            axis, j = stack[-1]
            if axis._known(j):
                stack.pop()
                continue
            missing = [(p, t) for p, taps in axis.sources for t in taps(j) if not p._known(t)]
            if missing:
                stack.extend(missing)
                continue
            axis._far[j] = _hull(_hull(p._get(t) for t in taps(j)) for p, taps in axis.sources)
            stack.pop()
        return self._get(i)

    def gather(self, n_out: int, taps: Taps, jump: Fraction, real: Taps | None = None) -> _Axis:
        """The axis after a layer whose output unit ``o`` reads the positions ``taps(o)``
        of the extended input, and really reads ``real(o)`` (default: those of ``taps(o)``
        inside the input); ``jump``: how the layer scales the distance between units."""
        n = len(self)
        real = real or (lambda o: [t for t in taps(o) if 0 <= t < n])
        full = [_hull(self.virtual(t) for t in taps(o)) for o in range(n_out)]
        seen = [_hull(self.seen[t] for t in real(o)) for o in range(n_out)]
        return _Axis(full, seen, self.jump * jump, [(self, taps)])


@dataclass
class _State:
    axes: list[_Axis]
    flat: bool = False  # flattened: units are still pixels' fields, no longer a grid


_POINTWISE = (  # each output unit sees the same place in its input: fields unchanged
    *ELEMENTWISE,
    nn.modules.batchnorm._BatchNorm,
    nn.modules.instancenorm._InstanceNorm,
    nn.GroupNorm,
    nn.LocalResponseNorm,
    nn.LayerNorm,
    nn.ChannelShuffle,
    nn.Softmax2d,  # over the channels
)
# per sample, the same at every position (a random depth or path dropped in training)
_POINTWISE_NAMES = ("StochasticDepth", "DropPath")


def _pointwise(module: nn.Module) -> bool:
    if isinstance(module, _POINTWISE):
        return True
    if isinstance(module, (nn.Softmax, nn.LogSoftmax, nn.Softmin)):
        return module.dim in (1, -3)  # over the channels of (N, C, H, W)
    return type(module).__name__ in _POINTWISE_NAMES


def _identity(module: nn.Module) -> bool:
    """An empty ``nn.Sequential()`` or ``nn.Identity``: the output is the input."""
    return isinstance(module, nn.Identity) or (
        isinstance(module, nn.Sequential) and len(module) == 0
    )


# -- the walk over the rows ----------------------------------------------------------------


def _spatial(shape, n: int) -> list[int] | None:
    if shape is None or len(shape) < n + 1:
        return None
    return list(shape[-n:]) if n else []


def _union(states: list[_State], sizes: list[int]) -> _State | None:
    """A merge: per unit, the hull of its inputs' fields (a size-1 axis broadcasts)."""
    axes = []
    for a, n in enumerate(sizes):
        parts = [s.axes[a] for s in states]
        if any(len(p) not in (1, n) for p in parts):
            return None
        full = [_hull(p.full[o if len(p) > 1 else 0] for p in parts) for o in range(n)]
        seen = [_hull(p.seen[o if len(p) > 1 else 0] for p in parts) for o in range(n)]
        sources = [(p, (lambda o: [o]) if len(p) > 1 else (lambda o: [0])) for p in parts]
        jump = min(p.jump for p in parts if len(p) == n or n == 1)
        axes.append(_Axis(full, seen, jump, sources))
    return _State(axes)


def _collapse(state: _State, which: Sequence[int] | None = None, flat: bool = True) -> _State:
    """Units reading every position of the axes ``which`` (default all): a Linear after a
    flatten, a mean over H and W."""
    which = range(len(state.axes)) if which is None else which
    axes = [
        a.gather(1, everything(len(a)), Fraction(len(a))) if i in which else a
        for i, a in enumerate(state.axes)
    ]
    return _State(axes, flat)


def _apply(first: _State, layers: list[Layer], sizes: list[int]) -> _State:
    return _State(
        [
            a.gather(m, layer.taps, layer.jump, layer.real)
            for a, layer, m in zip(first.axes, layers, sizes, strict=True)
        ]
    )


def _merges(row, n: int) -> bool:
    """An operation that combines its inputs unit by unit (add, mul, a cat or stack along
    the channels): its field is the union of theirs."""
    import torch

    from archlab.trace import _ops

    call = getattr(row, "call", None)
    if call is None:  # a row recorded without its call: trust that it merges
        return True
    func = call[0]
    if func in _ops.ELEMENTWISE or func is torch.stack:
        return True
    if func in _ops.CATS:
        shapes = call[1][0] if call[1] else ()
        if not shapes or not isinstance(shapes[0], tuple):
            return False
        rank = len(shapes[0])
        return int(arg(call, 1, "dim", 0)) % rank < rank - n
    return False


def _step(row, module: nn.Module | None, ins: list[_State], n: int) -> _State | None:
    if not ins or any(s is None for s in ins):
        return None
    first = ins[0]
    sizes = _spatial(row.output, n)
    call = getattr(row, "call", None)
    if len(ins) > 1:
        if sizes is None or any(s.flat for s in ins) or not _merges(row, n):
            return None
        return _union(ins, sizes)
    if module is not None and _identity(module):
        return first
    if isinstance(module, nn.Linear) or row.type.startswith("F.linear"):
        if first.flat or row.output is None or len(row.output) == 1:
            return _collapse(first)
        return None  # a Linear over the last axis of a feature map: not a field
    if first.flat:
        if row.output is not None and len(row.output) <= 1:
            return first  # dropout, activations, another flatten
        return None
    from archlab.trace import _ops

    if call is not None and call[0] in _ops.REDUCTIONS:
        over = reduced(call, n)
        if over is None:
            return None
        axes, keep = over
        if not axes:
            return first if sizes == [len(a) for a in first.axes] else None
        if len(axes) == n:
            return _collapse(first, axes, flat=not keep)
        return _collapse(first, axes, flat=False) if keep else None
    if row.output is not None and len(row.output) == 1:
        if call is not None and call[0] not in _ops.RESHAPES:
            return None  # an index, an RNN's last step: not one pixel's field per unit
        return _State(first.axes, flat=True)  # flatten / view: one unit is one pixel's field
    if sizes is None or 0 in sizes:
        return None  # no units (a crop or pool down to nothing)
    sizes_in = [len(a) for a in first.axes]
    layers = None
    if module is not None:
        layers = module_layers(module, n, sizes_in, sizes)
        if layers is None and not (_pointwise(module) and sizes == sizes_in):
            return None  # a layer archlab does not know the geometry of
    elif call is not None:
        if call[0] in _ops.PERMUTES or call[0] in _ops.RESHAPES:
            return first if keeps_positions(call, row, n) else None
        layers = op_layers(call, n, sizes_in, sizes)
    if layers is not None:
        return _apply(first, layers, sizes)
    if sizes == sizes_in:
        return first  # an activation or an elementwise operation in forward
    return None


def _field(state: _State | None) -> ReceptiveField | None:
    if state is None:
        return None
    size, jump, start, seen, uniform = [], [], [], [], True
    for axis in state.axes:
        widths = [hi - lo + 1 for lo, hi in (iv for iv in axis.full if iv is not None)]
        size.append(max(widths, default=0))
        uniform = uniform and len(set(widths)) <= 1 and len(widths) == len(axis)
        jump.append(axis.jump)
        start.append(next((iv[0] for iv in axis.full if iv is not None), 0))
        seen.append(axis.seen[len(axis) // 2] or (0, -1))
    jump = [int(j) if j.denominator == 1 else float(j) for j in jump]
    units = tuple(len(a) for a in state.axes)
    return ReceptiveField(tuple(size), tuple(jump), tuple(start), tuple(seen), units, uniform)


def _module_for(model: nn.Module, row) -> nn.Module | None:
    if row.functional:
        return None
    try:
        return model.get_submodule(row.name)
    except AttributeError:
        return None


def receptive_fields(
    rows: Sequence, model: nn.Module, input_shape: Sequence[int]
) -> tuple[list[ReceptiveField | None], list[_State | None]]:
    """Each row's :class:`ReceptiveField` (None where unknown or where the input has no
    spatial axes), and the per-unit states (for drawing and the empirical check).

    Args:
        rows: the tracer's rows (``type``, ``name``, ``output``, ``inputs``,
            ``functional``, and ``call``: an operation's function and arguments).
        model: the traced model (its layers' geometry).
        input_shape: one sample's ``(C, H, W)`` (or ``(C, L)``, ...).

    Returns:
        ``(fields, states)``, one of each per row.
    """
    n = len(input_shape) - 1
    if n < 1:
        return [None] * len(rows), [None] * len(rows)
    source = _State(
        [_Axis([(i, i) for i in range(m)], [(i, i) for i in range(m)]) for m in input_shape[1:]]
    )
    states: list[_State | None] = []
    for row in rows:
        ins = [source if i == -1 else states[i] for i in row.inputs]
        try:
            state = _step(row, _module_for(model, row), ins, n)
        except (TypeError, ValueError, IndexError, KeyError, ZeroDivisionError):
            state = None  # arguments archlab cannot read (a call of its own kind): no field
        states.append(state)
    return [_field(s) for s in states], states


def field_states(report: ShapeReport) -> list[_State | None]:
    """The per-unit fields of a report's rows, as :func:`add_receptive_fields` left them
    (for ``draw --field`` and the tests).

    Args:
        report: what :func:`~archlab.trace_shapes` returned (without ``depth``).

    Returns:
        One state per unfolded row (None where the row has no field): per axis, each
        unit's textbook interval (``full``) and the pixels it reads (``seen``).
    """
    return list(getattr(report, "_field_states", []))


def covers_image(state: _State | None, input_shape: Sequence[int]) -> bool:
    """True when one unit of the row sees every pixel of the image."""
    if state is None:
        return False
    for axis, m in zip(state.axes, input_shape[1:], strict=False):
        if not any(iv is not None and iv[0] <= 0 and iv[1] >= m - 1 for iv in axis.seen):
            return False
    return True


def unit_box(state: _State, unit: Sequence[int] | None = None) -> tuple[tuple[int, int], ...]:
    """The pixels one unit sees, ``(first, last)`` per axis; default the middle unit."""
    unit = unit or [len(a) // 2 for a in state.axes]
    return tuple(a.seen[u] or (0, -1) for a, u in zip(state.axes, unit, strict=False))


def _fold_field(row, full: Sequence, fields: list) -> ReceptiveField | None:
    """A folded block's field: that of the last row inside it."""
    inside = [
        i
        for i, r in enumerate(full)
        if r.name == row.name or r.name.startswith(row.name + ".") or not row.name
    ]
    return fields[inside[-1]] if inside else None


def add_receptive_fields(report, full: Sequence, model: nn.Module) -> None:
    """Fill ``receptive`` on the report's rows and add the note naming the first row one
    of whose units sees the whole image.

    Args:
        report: the :class:`~archlab.ShapeReport` being built.
        full: the tracer's rows, unfolded (with their calls).
        model: the traced model.
    """
    fields, states = receptive_fields(full, model, report.input_shape)
    report._field_states = states  # not a field of the report: never serialised
    if len(report.layers) == len(full):
        for row, f in zip(report.layers, fields, strict=False):
            row.receptive = f
    else:
        for row in report.layers:
            row.receptive = _fold_field(row, full, fields)
    if not any(fields) or report.error is not None:
        return
    image = fmt_shape(report.input_shape[1:])
    first = next((i for i, s in enumerate(states) if covers_image(s, report.input_shape)), None)
    if first is not None:
        before = next(
            (i for i in range(first - 1, -1, -1) if fields[i] and not full[i].functional), None
        )
        was = ""
        if before is not None:
            size = fmt_shape(fields[before].size)
            was = f"; before it, one unit of {_label(full[before])} sees {size}"
        report.notes.append(
            f"receptive field: {_label(full[first])} is the first layer one unit of which "
            f"sees the whole {image} image{was}"
        )
    else:
        widest = max((i for i, f in enumerate(fields) if f), key=lambda i: fields[i].size)
        report.notes.append(
            f"receptive field: no unit sees the whole {image} image; the widest field is "
            f"{'×'.join(map(str, fields[widest].size))} ({_label(full[widest])})"
        )


def _label(row) -> str:
    return f"{row.type} in forward" if row.functional else f"{row.name} ({row.type})"
