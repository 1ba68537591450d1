"""Receptive fields from a finished trace: which input pixels each unit of each row sees.

Computed per spatial axis from the rows (their ``inputs``, their modules' geometry and
their output sizes), so it follows the data through dilated, strided and transposed
convolutions, pooling, flattening and branches. For every unit ``o`` of a row, along
each axis, two intervals of input pixels are kept:

- the textbook one (``lo``, ``hi``), which may reach into the padding (negative
  positions, or past the image's edge): its size is the ``r`` of the recurrence
  ``r ← r + (d·(k − 1) + 1 − 1)·j``, ``j ← j·s``, and its first pixel for unit 0 is the
  padding offset (``start``);
- the pixels the unit really sees (``seen``): the same, read through real positions only,
  so clipped to the image. This is what the gradient of one unit shows (the empirical
  check) and what ``draw`` draws.

A merge (``add``, ``cat``, ``mul``) sees the union of its inputs' fields; where they
differ the reported interval along each axis is their hull (a 3×1 branch and a 1×3
branch give 3×3: the cross they cover plus its corners). After a ``cat`` along the
channels each channel still sees only its own branch's field: the row reports the union
over its channels. Normalisation layers count as
pointwise (their statistics are ignored, as in the textbook). A row whose geometry is
not known (an unknown operation that changes the spatial size) has no field, nor do the
rows that read it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction

from torch import nn

from archlab.trace.formulas import ELEMENTWISE, fmt_shape

__all__ = ["ReceptiveField", "covers_image", "receptive_fields"]

Interval = tuple[int, int] | None


@dataclass
class ReceptiveField:
    """One row's receptive field, per spatial axis (e.g. ``(H, W)``).

    ``size``: the largest field of one unit in input pixels, counting padding (the
    textbook ``r``); ``jump``: input pixels between neighbouring units (the effective
    stride ``j``; a fraction after a transposed convolution); ``start``: the first input
    pixel of unit 0's field (negative: it reaches into the padding by that much);
    ``seen``: the pixels the middle unit sees inside the image, ``(first, last)`` per axis.
    ``uniform``: every unit's field has the same size (False at a merge of unequal
    fields, a transposed convolution or an uneven adaptive pooling, where ``size`` is the
    largest).

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


class _Axis:
    """One axis of a row: per unit, the textbook interval and the seen interval."""

    def __init__(
        self, full: list[tuple[int, int]], seen: list[Interval], jump: Fraction = Fraction(1)
    ) -> None:
        self.full, self.seen, self.jump = full, seen, jump

    def __len__(self) -> int:
        return len(self.full)

    def virtual(self, i: int) -> tuple[int, int]:
        """The textbook interval of position ``i``, extrapolated into the padding."""
        n = len(self.full)
        if 0 <= i < n:
            return self.full[i]
        step = self.full[1][0] - self.full[0][0] if n > 1 else 1
        edge = 0 if i < 0 else n - 1
        lo, hi = self.full[edge]
        return lo + (i - edge) * step, hi + (i - edge) * step

    def gather(self, n_out: int, taps: Callable[[int], Sequence[int]], stride) -> _Axis:
        """The axis after a layer whose output unit ``o`` reads positions ``taps(o)``, one
        step of which is ``stride`` input positions (a fraction when it upsamples)."""
        full, seen = [], []
        for o in range(n_out):
            positions = list(taps(o))
            full.append(_hull(self.virtual(i) for i in positions) or (0, -1))
            seen.append(_hull(self.seen[i] for i in positions if 0 <= i < len(self.seen)))
        return _Axis(full, seen, self.jump * Fraction(stride))


def _hull(intervals) -> Interval:
    got = [iv for iv in intervals if iv is not None]
    if not got:
        return None
    return min(a for a, _ in got), max(b for _, b in got)


@dataclass
class _State:
    axes: list[_Axis]
    flat: bool = False  # flattened: units are still pixels' fields, no longer a grid


def _tuple(value, n: int) -> tuple[int, ...]:
    return tuple(value) if isinstance(value, (tuple, list)) else (value,) * n


def _window(k: int, s: int, p: int, d: int) -> Callable[[int], range]:
    return lambda o: range(o * s - p, o * s - p + d * (k - 1) + 1, d)


def _transposed(k: int, s: int, p: int, d: int, n_in: int) -> Callable[[int], list[int]]:
    def taps(o: int) -> list[int]:
        hits = ((o + p - t * d) for t in range(k))
        return [q // s for q in hits if q % s == 0 and 0 <= q // s < n_in]

    return taps


def _adaptive(n_in: int, n_out: int) -> Callable[[int], range]:
    return lambda o: range((o * n_in) // n_out, -((-(o + 1) * n_in) // n_out))


_POINTWISE = (  # each output unit sees the same place in its input: fields unchanged
    *ELEMENTWISE,
    nn.modules.batchnorm._BatchNorm,
    nn.modules.instancenorm._InstanceNorm,
    nn.GroupNorm,
    nn.LocalResponseNorm,
)


def _geometry(module: nn.Module, n: int, sizes_in: list[int]):
    """Per axis, the taps of a module that slides a window and its stride, or None."""
    if isinstance(module, nn.modules.conv._ConvTransposeNd):
        k, s, p, d = (
            _tuple(getattr(module, a), n) for a in ("kernel_size", "stride", "padding", "dilation")
        )
        taps = [_transposed(k[a], s[a], p[a], d[a], sizes_in[a]) for a in range(n)]
        return taps, [Fraction(1, s[a]) for a in range(n)]
    if isinstance(module, nn.modules.conv._ConvNd):
        if isinstance(module.padding, str):  # 'same' pads (k_eff − 1) // 2 on the left
            pad = [
                (d * (k - 1)) // 2
                for k, d in zip(module.kernel_size, module.dilation, strict=False)
            ]
            pad = pad if module.padding == "same" else [0] * n
        else:
            pad = list(_tuple(module.padding, n))
        k, s, d = (_tuple(getattr(module, a), n) for a in ("kernel_size", "stride", "dilation"))
        return [_window(k[a], s[a], pad[a], d[a]) for a in range(n)], s
    if isinstance(module, (nn.modules.pooling._MaxPoolNd, nn.modules.pooling._AvgPoolNd)):
        k = _tuple(module.kernel_size, n)
        s = _tuple(module.stride or module.kernel_size, n)
        p = _tuple(module.padding, n)
        d = _tuple(getattr(module, "dilation", 1), n)
        return [_window(k[a], s[a], p[a], d[a]) for a in range(n)], s
    return None


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
        axes.append(_Axis(full, seen, min(p.jump for p in parts if len(p) == n or n == 1)))
    return _State(axes)


def _collapse(state: _State) -> _State:
    """A unit reading every position (Linear after flatten): the hull of all of them."""
    return _State([a.gather(1, _everything(len(a)), len(a)) for a in state.axes], state.flat)


def _step(row, module: nn.Module | None, ins: list[_State], n: int) -> _State | None:
    if not ins or any(s is None for s in ins):
        return None
    first = ins[0]
    sizes = _spatial(row.output, n)
    if len(ins) > 1:
        if sizes is None or any(s.flat for s in ins):
            return None
        return _union(ins, sizes)
    if isinstance(module, nn.Linear) or row.type.startswith("F.linear"):
        if first.flat or row.output is None or len(row.output) == 1:
            return _collapse(first)
        return None  # a Linear over the last axis of a feature map: not a field
    if first.flat:
        if row.output is not None and len(row.output) == 1:
            return first  # dropout, activations, another flatten
        return None
    if row.output is not None and len(row.output) == 1:
        return _State(first.axes, flat=True)  # flatten / view: one unit is one pixel's field
    if sizes is None:
        return None
    sizes_in = [len(a) for a in first.axes]
    if module is not None:
        geometry = _geometry(module, n, sizes_in)
        if geometry is not None:
            taps, strides = geometry
            return _State(
                [
                    a.gather(m, t, st)
                    for a, m, t, st in zip(first.axes, sizes, taps, strides, strict=False)
                ]
            )
        if isinstance(
            module, (nn.modules.pooling._AdaptiveAvgPoolNd, nn.modules.pooling._AdaptiveMaxPoolNd)
        ):
            return _State(
                [
                    a.gather(m, _adaptive(len(a), m), Fraction(len(a), m))
                    for a, m in zip(first.axes, sizes, strict=False)
                ]
            )
        if isinstance(module, nn.Upsample) and module.mode == "nearest":
            return _State(
                [
                    a.gather(m, lambda o, a=a, m=m: [o * len(a) // m], Fraction(len(a), m))
                    for a, m in zip(first.axes, sizes, strict=False)
                ]
            )
        if isinstance(module, _POINTWISE) and sizes == sizes_in:
            return first
        if not isinstance(module, _POINTWISE) and not row.functional:
            return None  # a layer archlab does not know the geometry of
    if sizes == sizes_in:
        return first  # an activation or an elementwise operation in forward
    return None


def _field(state: _State | None) -> ReceptiveField | None:
    if state is None:
        return None
    size, jump, start, seen, uniform = [], [], [], [], True
    for axis in state.axes:
        widths = [hi - lo + 1 for lo, hi in axis.full]
        size.append(max(widths))
        uniform = uniform and len(set(widths)) == 1
        n = len(axis)
        jump.append(axis.jump)
        start.append(axis.full[0][0])
        seen.append(axis.seen[n // 2] or (0, -1))
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

    ``rows`` are the trace's rows (``type``, ``name``, ``output``, ``inputs``,
    ``functional``), ``input_shape`` one sample's ``(C, H, W)`` (or ``(C, L)``, ...).
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
        states.append(_step(row, _module_for(model, row), ins, n))
    return [_field(s) for s in states], states


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
    of whose units sees the whole image (``full``: the unfolded rows)."""
    fields, states = receptive_fields(full, model, report.input_shape)
    if report.layers is full or len(report.layers) == len(full):
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


def _everything(n: int) -> Callable[[int], range]:
    return lambda _o: range(n)
