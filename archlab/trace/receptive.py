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

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING

from torch import nn

from archlab.trace.formulas import ELEMENTWISE, fmt_shape

if TYPE_CHECKING:
    from archlab.trace.shapes import ShapeReport

__all__ = ["ReceptiveField", "covers_image", "field_states", "receptive_fields"]

Interval = tuple[int, int] | None
Taps = Callable[[int], Sequence[int]]


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


def _tuple(value, n: int) -> tuple:
    return tuple(value) if isinstance(value, (tuple, list)) else (value,) * n


def _window(k: int, s: int, p: int, d: int) -> Taps:
    return lambda o: range(o * s - p, o * s - p + d * (k - 1) + 1, d)


def _transposed(k: int, s: int, p: int, d: int) -> Taps:
    def taps(o: int) -> list[int]:
        hits = ((o + p - t * d) for t in range(k))
        return sorted({q // s for q in hits if q % s == 0})

    return taps


def _bins(n_in: int, n_out: int) -> Taps:
    """Adaptive pooling's bin ``o``: ``⌊o·n/m⌋ … ⌈(o + 1)·n/m⌉ − 1``."""
    return lambda o: range((o * n_in) // n_out, -((-(o + 1) * n_in) // n_out))


def _bins_jump(n_in: int, n_out: int) -> Fraction:
    """The mean distance between neighbouring bins' starts (n/m when m divides n)."""
    if n_out < 2:
        return Fraction(n_in)
    return Fraction(((n_out - 1) * n_in) // n_out, n_out - 1)


def _everything(n: int) -> Taps:
    """One unit reads all ``n`` positions (unit ``i`` of the extended map: the next ``n``)."""
    return lambda o: range(o * n, (o + 1) * n)


def _real(mode: str, n: int) -> Callable[[int], int | None]:
    """Where a padded position ``t`` of an input of ``n`` reads in that input."""
    if mode in ("reflect", "reflection"):
        period = 2 * (n - 1) or 1

        def reflect(t: int) -> int:
            t %= period
            return t if t < n else period - t

        return reflect
    if mode in ("replicate", "replication"):
        return lambda t: min(max(t, 0), n - 1)
    if mode == "circular":
        return lambda t: t % n
    return lambda t: t if 0 <= t < n else None  # zeros, constant


def _reading(taps: Taps, mode: str, n: int) -> Taps:
    where = _real(mode, n)
    return lambda o: [r for r in (where(t) for t in taps(o)) if r is not None]


@dataclass
class _Layer:
    """One axis of a layer: ``taps`` on the extended input, what it really reads, jump."""

    taps: Taps
    jump: Fraction
    real: Taps | None = None


# -- the layers, per axis ------------------------------------------------------------------


def _conv(k, s, p, d, n: int, sizes_in, mode: str = "zeros") -> list[_Layer]:
    k, s, d = _tuple(k, n), _tuple(s, n), _tuple(d, n)
    if isinstance(p, str):  # 'same' pads (k_eff − 1) // 2 on the left, 'valid' none
        p = [(d[a] * (k[a] - 1)) // 2 if p == "same" else 0 for a in range(n)]
    p = _tuple(p, n)
    out = []
    for a in range(n):
        taps = _window(k[a], s[a], p[a], d[a])
        real = _reading(taps, mode, sizes_in[a]) if mode != "zeros" else None
        out.append(_Layer(taps, Fraction(s[a]), real))
    return out


def _conv_transposed(k, s, p, d, n: int) -> list[_Layer]:
    k, s, p, d = (_tuple(v, n) for v in (k, s, p, d))
    return [_Layer(_transposed(k[a], s[a], p[a], d[a]), Fraction(1, s[a])) for a in range(n)]


def _pool(k, s, p, d, n: int) -> list[_Layer]:
    return _conv(k, s or k, p, d, n, ())


def _adaptive(sizes_in, sizes) -> list[_Layer]:
    return [_Layer(_bins(a, m), _bins_jump(a, m)) for a, m in zip(sizes_in, sizes, strict=True)]


def _pad(widths: Sequence[int], mode: str, n: int, sizes_in) -> list[_Layer] | None:
    """``widths`` as torch gives them: (left, right) of the last dim first."""
    if len(widths) % 2 or len(widths) // 2 > n:
        return None
    left = [0] * n
    for i in range(len(widths) // 2):
        left[n - 1 - i] = int(widths[2 * i])
    out = []
    for shift, m in zip(left, sizes_in, strict=True):
        taps = _shifted(shift)
        out.append(_Layer(taps, Fraction(1), _reading(taps, mode, m)))
    return out


def _shifted(shift: int) -> Taps:
    return lambda o: [o - shift]


def _float32(x: float) -> float:
    import numpy as np

    return float(np.float32(x))


def _interpolation(
    mode: str,
    align_corners: bool | None,
    factors: Sequence[float] | None,
    sizes_in,
    sizes,
) -> list[_Layer] | None:
    """``nn.Upsample`` / ``F.interpolate`` along each axis, as torch's kernels index."""
    out = []
    for a, (n, m) in enumerate(zip(sizes_in, sizes, strict=True)):
        factor = factors[a] if factors else None
        linear = mode in ("linear", "bilinear", "trilinear", "bicubic")
        if linear and align_corners:
            scale = Fraction(n - 1, m - 1) if m > 1 else Fraction(0)
        elif factor:
            scale = 1 / Fraction(str(factor))
        else:
            scale = Fraction(n, m)
        jump = scale if scale else Fraction(n)
        if mode in ("nearest", "nearest-exact"):
            half = 0.5 if mode == "nearest-exact" else 0.0
            s32 = _float32(1 / factor) if factor else _float32(n / m)

            def taps(o, n=n, m=m, s32=s32, half=half):
                # torch: floorf((o + ½)·scale) in float32, clamped to the last input
                i = math.floor(_float32(_float32(o + half) * s32))
                return [min(i, n - 1) if 0 <= o < m else i]

            out.append(_Layer(taps, jump))
        elif linear:
            out.append(_linear(n, scale, bool(align_corners), mode == "bicubic"))
        else:
            return None
    return out


def _linear(n: int, scale: Fraction, align: bool, cubic: bool) -> _Layer:
    """(Bi)linear or bicubic interpolation along one axis: unit ``o`` reads the neighbours
    of ``x = (o + ½)·scale − ½`` (``o·scale`` with ``align_corners``); torch clamps a
    negative ``x`` to 0 (linear) and reads clamped indices (cubic)."""

    def raw(o: int) -> Fraction:
        return o * scale if align else (o + Fraction(1, 2)) * scale - Fraction(1, 2)

    def taps(o: int) -> list[int]:  # on the extended input
        x = raw(o)
        i = math.floor(x)
        if x == i:  # on an input: its neighbours' weights are 0
            return [i]
        return list(range(i - 1, i + 3)) if cubic else [i, i + 1]

    def real(o: int) -> list[int]:  # what torch reads
        x = raw(o)
        if cubic:
            return sorted({min(max(t, 0), n - 1) for t in taps(o)})
        x = max(x, Fraction(0))
        i = min(math.floor(x), n - 1)
        return [i, i + 1] if x > i and i < n - 1 else [i]

    return _Layer(taps, scale if scale else Fraction(n), real)


def _upsample_module(module: nn.Module, n: int, sizes_in, sizes) -> list[_Layer] | None:
    if isinstance(module, nn.UpsamplingNearest2d):
        mode, align = "nearest", None
    elif isinstance(module, nn.UpsamplingBilinear2d):
        mode, align = "bilinear", True
    else:
        mode, align = module.mode, module.align_corners
    factor = module.scale_factor
    if factor is None or getattr(module, "recompute_scale_factor", None):
        factors = None
    else:
        factors = _tuple(factor, n)
    return _interpolation(mode, align, factors, sizes_in, sizes)


_PADS = {
    nn.modules.padding._ConstantPadNd: "constant",
    nn.modules.padding._ReflectionPadNd: "reflect",
    nn.modules.padding._ReplicationPadNd: "replicate",
}
if hasattr(nn.modules.padding, "_CircularPadNd"):
    _PADS[nn.modules.padding._CircularPadNd] = "circular"

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


def _module_layers(module: nn.Module, n: int, sizes_in, sizes) -> list[_Layer] | None:
    """Per axis, how the module's output units read its input, or None if unknown."""
    if isinstance(module, nn.modules.conv._ConvTransposeNd):
        return _conv_transposed(
            module.kernel_size, module.stride, module.padding, module.dilation, n
        )
    if isinstance(module, nn.modules.conv._ConvNd):
        return _conv(
            module.kernel_size,
            module.stride,
            module.padding,
            module.dilation,
            n,
            sizes_in,
            module.padding_mode,
        )
    if isinstance(module, (nn.modules.pooling._MaxPoolNd, nn.modules.pooling._AvgPoolNd)):
        d = getattr(module, "dilation", 1)
        return _pool(module.kernel_size, module.stride, module.padding, d, n)
    if isinstance(
        module, (nn.modules.pooling._AdaptiveAvgPoolNd, nn.modules.pooling._AdaptiveMaxPoolNd)
    ):
        return _adaptive(sizes_in, sizes)
    if isinstance(module, (nn.Upsample, nn.UpsamplingNearest2d, nn.UpsamplingBilinear2d)):
        return _upsample_module(module, n, sizes_in, sizes)
    if isinstance(module, nn.PixelShuffle):
        return _shuffle(module.upscale_factor, n)
    if isinstance(module, nn.PixelUnshuffle):
        return _unshuffle(module.downscale_factor, n)
    for kind, mode in _PADS.items():
        if isinstance(module, kind):
            return _pad(module.padding, mode, n, sizes_in)
    return None


def _shuffle(r: int, n: int) -> list[_Layer]:
    """PixelShuffle: output unit ``o`` is one channel of input unit ``⌊o/r⌋``."""
    return [_Layer(lambda o: [o // r], Fraction(1, r)) for _ in range(n)]


def _unshuffle(r: int, n: int) -> list[_Layer]:
    """PixelUnshuffle: output unit ``o`` gathers input units ``o·r … o·r + r − 1``."""
    return [_Layer(lambda o: range(o * r, o * r + r), Fraction(r)) for _ in range(n)]


def _identity(module: nn.Module) -> bool:
    """An empty ``nn.Sequential()`` or ``nn.Identity``: the output is the input."""
    return isinstance(module, nn.Identity) or (
        isinstance(module, nn.Sequential) and len(module) == 0
    )


# -- operations called in forward ----------------------------------------------------------


def _arg(call: tuple, index: int, keyword: str, default: object = None) -> object:
    """A positional-or-keyword argument of a recorded call (index 0: the tensor)."""
    _, args, kwargs = call
    if len(args) > index:
        return args[index]
    return kwargs.get(keyword, default)


def _op_layers(call: tuple, n: int, sizes_in, sizes) -> list[_Layer] | None:
    """Per axis, how an operation's output units read its input, or None if unknown."""
    import torch.nn.functional as F

    func = call[0]
    name = getattr(func, "__name__", "")
    if func is F.pad:
        mode = _arg(call, 2, "mode", "constant")
        return _pad(tuple(_arg(call, 1, "pad")), mode, n, sizes_in)
    if name in ("interpolate", "upsample", "upsample_nearest", "upsample_bilinear"):
        if _arg(call, 6, "antialias", False):
            return None
        mode = {"upsample_nearest": "nearest", "upsample_bilinear": "bilinear"}.get(
            name, _arg(call, 3, "mode", "nearest")
        )
        align = True if name == "upsample_bilinear" else _arg(call, 4, "align_corners")
        factor = _arg(call, 2, "scale_factor")
        recompute = _arg(call, 5, "recompute_scale_factor") if name != "upsample_bilinear" else None
        factors = None if factor is None or recompute else _tuple(factor, n)
        if mode == "area":
            return _adaptive(sizes_in, sizes)
        return _interpolation(mode, align, factors, sizes_in, sizes)
    if name.startswith(("max_pool", "avg_pool", "lp_pool")) and "adaptive" not in name:
        k = _arg(call, 1, "kernel_size")
        s = _arg(call, 2, "stride") or k
        p = _arg(call, 3, "padding", 0)
        d = _arg(call, 4, "dilation", 1) if name.startswith("max_pool") else 1
        return _pool(k, s, p, d, n)
    if name.startswith(("adaptive_avg_pool", "adaptive_max_pool")):
        return _adaptive(sizes_in, sizes)
    if name.startswith("conv_transpose"):
        weight = _arg(call, 1, "weight")
        k = tuple(weight[2:])
        s, p = _arg(call, 3, "stride", 1), _arg(call, 4, "padding", 0)
        return _conv_transposed(k, s, p, _arg(call, 7, "dilation", 1), n)
    if name.startswith("conv") and name[4:5].isdigit():
        weight = _arg(call, 1, "weight")
        k = tuple(weight[2:])
        s, p, d = (
            _arg(call, i, a, v)
            for i, a, v in ((3, "stride", 1), (4, "padding", 0), (5, "dilation", 1))
        )
        return _conv(k, s, p, d, n, sizes_in)
    if name == "__getitem__":
        return _slice(call, n, sizes_in, sizes)
    if name == "pixel_shuffle":
        return _shuffle(int(_arg(call, 1, "upscale_factor")), n)
    if name == "pixel_unshuffle":
        return _unshuffle(int(_arg(call, 1, "downscale_factor")), n)
    if name in ("chunk", "split", "tensor_split", "narrow"):
        dim = _arg(call, 2, "dim", 0)
        rank = len(call[1][0])
        return (
            [_Layer(lambda o: [o], Fraction(1)) for _ in range(n)]
            if int(dim) % rank < rank - n
            else None
        )
    return None


def _slice(call: tuple, n: int, sizes_in, sizes) -> list[_Layer] | None:
    """``x[:, :, a:b:s, ...]``: slices only, the spatial axes last, none dropped."""
    items = _arg(call, 1, "idx")
    items = items if isinstance(items, tuple) else (items,)
    if any(not isinstance(i, slice) and i is not Ellipsis for i in items):
        return None
    if Ellipsis in items:
        at = items.index(Ellipsis)
        rank = len(call[1][0])
        items = items[:at] + (slice(None),) * (rank - len(items) + 1) + items[at + 1 :]
    rank = len(call[1][0])
    items = items + (slice(None),) * (rank - len(items))
    out = []
    for item, m, k in zip(items[-n:], sizes_in, sizes, strict=True):
        first, _, step = item.indices(m)
        if step < 1 or (k and not 0 <= first < m):
            return None
        out.append(_Layer(lambda o, f=first, s=step: [f + o * s], Fraction(step)))
    return out


def _keeps_positions(call: tuple, row, n: int) -> bool:
    """A view, reshape, transpose or permute that leaves the last ``n`` (spatial) dims where
    they are: it only regroups the channels (ShuffleNet's channel shuffle)."""
    from archlab.trace import _ops

    shape = call[1][0] if call[1] and isinstance(call[1][0], tuple) else None
    if shape is None or row.output is None or len(shape) < n + 2 or len(row.output) < n + 1:
        return False
    rank = len(shape)
    if call[0] in _ops.RESHAPES:  # the trailing H·W block is whole: each unit keeps its place
        return tuple(shape[-n:]) == tuple(row.output[-n:])
    args = [a for a in call[1][1:]]
    if len(args) == 1 and isinstance(args[0], (tuple, list)):
        args = list(args[0])
    if not args:
        args = list(call[2].get("dims", ())) or [call[2].get("dim0"), call[2].get("dim1")]
    try:
        moved = {int(a) % rank for a in args}
    except TypeError:
        return False
    if len(args) == 2 and len(moved) <= 2 and call[0].__name__ == "transpose":
        return not moved & set(range(rank - n, rank))
    order = [int(a) % rank for a in args]
    return order[-n:] == list(range(rank - n, rank))


def _reduced(call: tuple, n: int) -> tuple[list[int], bool] | None:
    """A reduction's spatial axes (0…n−1) and its ``keepdim``, or None when unknown."""
    args = call[1]
    rank = len(args[0]) if args and isinstance(args[0], tuple) else None
    if rank is None or rank != n + 2:
        return None
    dim = _arg(call, 1, "dim")
    if dim is None and _arg(call, 1, "axis") is not None:
        dim = _arg(call, 1, "axis")
    if isinstance(dim, str):
        return None
    dims = range(rank) if dim is None else _tuple(dim, 1)
    dims = {int(d) % rank for d in dims}
    return sorted(d - 2 for d in dims if d >= 2), bool(_arg(call, 2, "keepdim", False))


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
        a.gather(1, _everything(len(a)), Fraction(len(a))) if i in which else a
        for i, a in enumerate(state.axes)
    ]
    return _State(axes, flat)


def _apply(first: _State, layers: list[_Layer], sizes: list[int]) -> _State:
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
        return int(_arg(call, 1, "dim", 0)) % rank < rank - n
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
        reduced = _reduced(call, n)
        if reduced is None:
            return None
        axes, keep = reduced
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
        layers = _module_layers(module, n, sizes_in, sizes)
        if layers is None and not (_pointwise(module) and sizes == sizes_in):
            return None  # a layer archlab does not know the geometry of
    elif call is not None:
        if call[0] in _ops.PERMUTES or call[0] in _ops.RESHAPES:
            return first if _keeps_positions(call, row, n) else None
        layers = _op_layers(call, n, sizes_in, sizes)
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
