"""The geometry of each layer and operation along one axis, for :mod:`receptive`.

A layer is, per spatial axis, a :class:`Layer`: ``taps(o)``, the positions of the extended
input that output unit ``o`` reads; ``real(o)``, the positions it really reads (clipped,
mirrored, clamped); ``jump``, how it scales the distance between units. The rules are
those of torch's kernels (see :mod:`archlab.trace.receptive` for the list).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction

from torch import nn

Taps = Callable[[int], Sequence[int]]


def as_tuple(value, n: int) -> tuple:
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


def everything(n: int) -> Taps:
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
class Layer:
    """One axis of a layer: ``taps`` on the extended input, what it really reads, jump."""

    taps: Taps
    jump: Fraction
    real: Taps | None = None


# -- the layers, per axis ------------------------------------------------------------------


def _conv(k, s, p, d, n: int, sizes_in, mode: str = "zeros") -> list[Layer]:
    k, s, d = as_tuple(k, n), as_tuple(s, n), as_tuple(d, n)
    if isinstance(p, str):  # 'same' pads (k_eff − 1) // 2 on the left, 'valid' none
        p = [(d[a] * (k[a] - 1)) // 2 if p == "same" else 0 for a in range(n)]
    p = as_tuple(p, n)
    out = []
    for a in range(n):
        taps = _window(k[a], s[a], p[a], d[a])
        real = _reading(taps, mode, sizes_in[a]) if mode != "zeros" else None
        out.append(Layer(taps, Fraction(s[a]), real))
    return out


def _conv_transposed(k, s, p, d, n: int) -> list[Layer]:
    k, s, p, d = (as_tuple(v, n) for v in (k, s, p, d))
    return [Layer(_transposed(k[a], s[a], p[a], d[a]), Fraction(1, s[a])) for a in range(n)]


def _pool(k, s, p, d, n: int) -> list[Layer]:
    return _conv(k, s or k, p, d, n, ())


def _adaptive(sizes_in, sizes) -> list[Layer]:
    return [Layer(_bins(a, m), _bins_jump(a, m)) for a, m in zip(sizes_in, sizes, strict=True)]


def _pad(widths: Sequence[int], mode: str, n: int, sizes_in) -> list[Layer] | None:
    """``widths`` as torch gives them: (left, right) of the last dim first."""
    if len(widths) % 2 or len(widths) // 2 > n:
        return None
    left = [0] * n
    for i in range(len(widths) // 2):
        left[n - 1 - i] = int(widths[2 * i])
    out = []
    for shift, m in zip(left, sizes_in, strict=True):
        taps = _shifted(shift)
        out.append(Layer(taps, Fraction(1), _reading(taps, mode, m)))
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
) -> list[Layer] | None:
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

            out.append(Layer(taps, jump))
        elif linear:
            out.append(_linear(n, scale, bool(align_corners), mode == "bicubic"))
        else:
            return None
    return out


def _linear(n: int, scale: Fraction, align: bool, cubic: bool) -> Layer:
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

    return Layer(taps, scale if scale else Fraction(n), real)


def _upsample_module(module: nn.Module, n: int, sizes_in, sizes) -> list[Layer] | None:
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
        factors = as_tuple(factor, n)
    return _interpolation(mode, align, factors, sizes_in, sizes)


_PADS = {
    nn.modules.padding._ConstantPadNd: "constant",
    nn.modules.padding._ReflectionPadNd: "reflect",
    nn.modules.padding._ReplicationPadNd: "replicate",
}
if hasattr(nn.modules.padding, "_CircularPadNd"):
    _PADS[nn.modules.padding._CircularPadNd] = "circular"


def module_layers(module: nn.Module, n: int, sizes_in, sizes) -> list[Layer] | None:
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


def _shuffle(r: int, n: int) -> list[Layer]:
    """PixelShuffle: output unit ``o`` is one channel of input unit ``⌊o/r⌋``."""
    return [Layer(lambda o: [o // r], Fraction(1, r)) for _ in range(n)]


def _unshuffle(r: int, n: int) -> list[Layer]:
    """PixelUnshuffle: output unit ``o`` gathers input units ``o·r … o·r + r − 1``."""
    return [Layer(lambda o: range(o * r, o * r + r), Fraction(r)) for _ in range(n)]


# -- operations called in forward ----------------------------------------------------------


def arg(call: tuple, index: int, keyword: str, default: object = None) -> object:
    """A positional-or-keyword argument of a recorded call (index 0: the tensor)."""
    _, args, kwargs = call
    if len(args) > index:
        return args[index]
    return kwargs.get(keyword, default)


def op_layers(call: tuple, n: int, sizes_in, sizes) -> list[Layer] | None:
    """Per axis, how an operation's output units read its input, or None if unknown."""
    import torch.nn.functional as F

    func = call[0]
    name = getattr(func, "__name__", "")
    if func is F.pad:
        mode = arg(call, 2, "mode", "constant")
        return _pad(tuple(arg(call, 1, "pad")), mode, n, sizes_in)
    if name in ("interpolate", "upsample", "upsample_nearest", "upsample_bilinear"):
        if arg(call, 6, "antialias", False):
            return None
        mode = {"upsample_nearest": "nearest", "upsample_bilinear": "bilinear"}.get(
            name, arg(call, 3, "mode", "nearest")
        )
        align = True if name == "upsample_bilinear" else arg(call, 4, "align_corners")
        factor = arg(call, 2, "scale_factor")
        recompute = arg(call, 5, "recompute_scale_factor") if name != "upsample_bilinear" else None
        factors = None if factor is None or recompute else as_tuple(factor, n)
        if mode == "area":
            return _adaptive(sizes_in, sizes)
        return _interpolation(mode, align, factors, sizes_in, sizes)
    if name.startswith(("max_pool", "avg_pool", "lp_pool")) and "adaptive" not in name:
        k = arg(call, 1, "kernel_size")
        s = arg(call, 2, "stride") or k
        p = arg(call, 3, "padding", 0)
        d = arg(call, 4, "dilation", 1) if name.startswith("max_pool") else 1
        return _pool(k, s, p, d, n)
    if name.startswith(("adaptive_avg_pool", "adaptive_max_pool")):
        return _adaptive(sizes_in, sizes)
    if name.startswith("conv_transpose"):
        weight = arg(call, 1, "weight")
        k = tuple(weight[2:])
        s, p = arg(call, 3, "stride", 1), arg(call, 4, "padding", 0)
        return _conv_transposed(k, s, p, arg(call, 7, "dilation", 1), n)
    if name.startswith("conv") and name[4:5].isdigit():
        weight = arg(call, 1, "weight")
        k = tuple(weight[2:])
        s, p, d = (
            arg(call, i, a, v)
            for i, a, v in ((3, "stride", 1), (4, "padding", 0), (5, "dilation", 1))
        )
        return _conv(k, s, p, d, n, sizes_in)
    if name == "__getitem__":
        return _slice(call, n, sizes_in, sizes)
    if name == "pixel_shuffle":
        return _shuffle(int(arg(call, 1, "upscale_factor")), n)
    if name == "pixel_unshuffle":
        return _unshuffle(int(arg(call, 1, "downscale_factor")), n)
    if name in ("chunk", "split", "tensor_split", "narrow"):
        dim = arg(call, 2, "dim", 0)
        rank = len(call[1][0])
        return (
            [Layer(lambda o: [o], Fraction(1)) for _ in range(n)]
            if int(dim) % rank < rank - n
            else None
        )
    return None


def _slice(call: tuple, n: int, sizes_in, sizes) -> list[Layer] | None:
    """``x[:, :, a:b:s, ...]``: slices only, the spatial axes last, none dropped."""
    items = arg(call, 1, "idx")
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
        out.append(Layer(lambda o, f=first, s=step: [f + o * s], Fraction(step)))
    return out


def keeps_positions(call: tuple, row, n: int) -> bool:
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


def reduced(call: tuple, n: int) -> tuple[list[int], bool] | None:
    """A reduction's spatial axes (0…n−1) and its ``keepdim``, or None when unknown."""
    args = call[1]
    rank = len(args[0]) if args and isinstance(args[0], tuple) else None
    if rank is None or rank != n + 2:
        return None
    dim = arg(call, 1, "dim")
    if dim is None and arg(call, 1, "axis") is not None:
        dim = arg(call, 1, "axis")
    if isinstance(dim, str):
        return None
    dims = range(rank) if dim is None else as_tuple(dim, 1)
    dims = {int(d) % rank for d in dims}
    return sorted(d - 2 for d in dims if d >= 2), bool(arg(call, 2, "keepdim", False))
