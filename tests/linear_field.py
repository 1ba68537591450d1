"""The receptive-field reference: which input pixels each unit of each row depends on, read
from a linearised float64 copy of the model (every weight 1/fan_in, no bias, BatchNorm as
identity, ReLU as identity, max pooling replaced by sum pooling). Its inputs are one-hot
images (one per pixel, every channel 1 there); the copy is linear and non-negative, so unit
``u`` of a row depends on pixel ``p`` exactly when its value on image ``p`` is non-zero.

Nothing here is archlab's geometry: the numbers come from torch running the copy. archlab's
tracer only says which tensor is which row (its ``keep`` values)."""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

_MAX_POOLS = {F.max_pool1d: 1, F.max_pool2d: 2, F.max_pool3d: 3}
_ADAPTIVE_MAX = {
    F.adaptive_max_pool1d: F.adaptive_avg_pool1d,
    F.adaptive_max_pool2d: F.adaptive_avg_pool2d,
}
_RELUS = (F.relu, torch.relu, torch.Tensor.relu, F.relu_, torch.relu_)


def _arg(args, kwargs, i, name, default):
    return args[i] if len(args) > i else kwargs.get(name, default)


def _sum_pool(func, args, kwargs):
    """A max pooling's windows summed: zero padding, the same windows, the same output size."""
    nd = _MAX_POOLS[func]
    x = args[0]
    real = func(*args, **kwargs)
    out_size = (real[0] if isinstance(real, tuple) else real).shape[2:]
    k = _arg(args, kwargs, 1, "kernel_size", None)
    s = _arg(args, kwargs, 2, "stride", None) or k
    p = _arg(args, kwargs, 3, "padding", 0)
    d = _arg(args, kwargs, 4, "dilation", 1)
    k, s, p, d = ((v,) * nd if isinstance(v, int) else tuple(v) for v in (k, s, p, d))
    widths = []
    for a in reversed(range(nd)):  # F.pad: last dim first; room on the right for ceil_mode
        need = (out_size[a] - 1) * s[a] + d[a] * (k[a] - 1) + 1
        widths += [p[a], max(0, need - x.shape[2 + a] - p[a])]
    y = F.pad(x, widths)
    c = x.shape[1]
    ones = torch.ones((c, 1, *k), dtype=x.dtype)
    conv = (F.conv1d, F.conv2d, F.conv3d)[nd - 1]
    y = conv(y, ones, stride=s, dilation=d, groups=c)
    y = y[(..., *(slice(0, m) for m in out_size))]
    return (y, real[1]) if isinstance(real, tuple) else y


class _Linearised(TorchFunctionMode):
    """Max pooling as sum pooling, ReLU as identity, wherever they are called."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in _MAX_POOLS:
            return _sum_pool(func, args, kwargs)
        if func in _ADAPTIVE_MAX:
            out = _ADAPTIVE_MAX[func](args[0], _arg(args, kwargs, 1, "output_size", None))
            return (out, None) if _arg(args, kwargs, 2, "return_indices", False) else out
        if func in _RELUS:
            return args[0] if not isinstance(args[0], torch.Tensor) else args[0] * 1
        return func(*args, **kwargs)


def linearise(model: nn.Module) -> nn.Module:
    """A float64 copy: weights 1/fan_in, biases 0, BatchNorm the identity, in eval mode."""
    model = copy.deepcopy(model).double().eval()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.reset_running_stats()
                m.eps = 0.0
                if m.affine:
                    m.weight.fill_(1.0)
                    m.bias.zero_()
                continue
            w = getattr(m, "weight", None)
            if isinstance(w, nn.Parameter) and w.dim() >= 2:
                fan_in = nn.init._calculate_fan_in_and_fan_out(w)[0]
                w.fill_(1.0 / fan_in)
            b = getattr(m, "bias", None)
            if isinstance(b, nn.Parameter):
                b.zero_()
    return model


def supports(model: nn.Module, shape) -> list[torch.Tensor | None]:
    """Per row of the trace, a bool tensor ``(H·W, *per-image output)``: does the row's
    output depend on pixel ``p``? (None where the tracer kept no per-image value.)"""
    from archlab.trace._batch import BATCH
    from archlab.trace._engine import Tracer

    c, *spatial = shape
    pixels = 1
    for m in spatial:
        pixels *= m
    basis = torch.zeros((pixels, c, pixels), dtype=torch.double)
    basis[torch.arange(pixels), :, torch.arange(pixels)] = 1.0
    basis = basis.reshape(pixels, c, *spatial)
    linear = linearise(model)
    per_row: list[list[torch.Tensor] | None] = []
    for start in range(0, pixels, BATCH):
        x = basis[start : start + BATCH]
        keep = len(x)
        if keep < BATCH:
            x = torch.cat([x, torch.zeros((BATCH - keep, *x.shape[1:]), dtype=x.dtype)])
        tracer = Tracer(linear, keep=True)
        with torch.no_grad(), _Linearised():
            tracer.run(linear, x)
        assert tracer.failure is None, tracer.failure
        if not per_row:
            per_row = [[] for _ in tracer.rows]
        for i in range(len(per_row)):
            value = tracer.values.get(i)
            if per_row[i] is None or value is None or not value[1].known or value[1].fold != 1:
                per_row[i] = None
                continue
            per_row[i].append(value[0].movedim(value[1].dim, 0)[:keep] != 0)
    return [None if parts is None else torch.cat(parts) for parts in per_row]


def _edges(t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """First and last index along dim 0 where ``t`` is True, per unit (L, -1 where none)."""
    n = t.shape[0]
    idx = torch.arange(n).view(n, *[1] * (t.dim() - 1))
    return torch.where(t, idx, n).amin(0), torch.where(t, idx, -1).amax(0)


def _widest_gap(along: torch.Tensor) -> int:
    """The largest distance between neighbouring pixels one unit reads, along dim 0."""
    n = along.shape[0]
    idx = torch.arange(n).view(n, *[1] * (along.dim() - 1)).expand_as(along)
    last = torch.where(along, idx, -1).cummax(0).values  # the last read pixel at or before
    before = torch.cat([torch.full_like(last[:1], -1), last[:-1]])
    gaps = torch.where(along & (before >= 0), idx - before, 0)
    return int(gaps.max()) if gaps.numel() else 0


def _expected(intervals, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    lo = torch.tensor([iv[0] if iv is not None else n for iv in intervals])
    hi = torch.tensor([iv[1] if iv is not None else -1 for iv in intervals])
    return lo, hi


def check_every_row(
    model: nn.Module, shape, zero_padding: bool = True, margin: int | None = 1
) -> int:
    """Assert, for every unit of every row with a field, that archlab's ``seen`` interval is
    the bounding box of the pixels that unit depends on (per axis), and that its textbook
    interval agrees for a unit whose pixels lie clear of the image's edges (the textbook
    intervals near the edges are checked by :func:`check_extended`). Returns the number of
    rows checked.

    ``zero_padding``: every pad of the model reads zeros; then a unit whose pixels lie
    ``margin`` or more pixels inside the image has its textbook interval there as well
    (``margin``: at least the widest gap between the pixels one unit reads, which dilation
    or subsampling opens; None: no such check, for a model whose extended units near an
    edge are real pixels, as after upsampling by 1.5, where :func:`check_extended` checks)."""
    from archlab.trace.receptive import field_states
    from archlab.trace.shapes import trace_shapes

    report = trace_shapes(model, shape)
    assert report.ok, report.error
    states = field_states(report)
    found = supports(model, shape)
    assert len(found) == len(report.layers)
    sides = list(shape[1:])
    n = len(sides)
    checked = 0
    for row, state, support in zip(report.layers, states, found, strict=True):
        if state is None:
            continue
        where = f"{row.name} ({row.type})"
        assert support is not None, where
        support = support.reshape(*sides, *support.shape[1:])
        if state.flat or len(row.output) < n + 1:  # every unit together
            union = support.reshape(*sides, -1).any(-1)
            for a in range(n):
                along = union.movedim(a, 0).reshape(sides[a], -1).any(1)
                lo, hi = _edges(along)
                hull = [iv for iv in state.axes[a].seen if iv is not None]
                want = (
                    (min(h[0] for h in hull), max(h[1] for h in hull)) if hull else (sides[a], -1)
                )
                assert (int(lo), int(hi)) == want, (where, a)
            checked += 1
            continue
        grid = tuple(row.output[-n:])
        units = support.reshape(*sides, -1, *grid).any(n)  # any channel: (*sides, *grid)
        # archlab's box of unit (i, j) is seen_0[i] × seen_1[j]: empty if either is
        reads = torch.ones(grid, dtype=torch.bool)
        for a in range(n):
            view = [1] * n
            view[a] = grid[a]
            some = torch.tensor([iv is not None for iv in state.axes[a].seen])
            reads = reads & some.view(view)
        for a in range(n):
            others = tuple(i for i in range(n) if i != a)
            along = units.any(others) if others else units  # (sides[a], *grid)
            lo, hi = _edges(along)
            want_lo, want_hi = _expected(state.axes[a].seen, sides[a])
            view = [1] * n
            view[a] = grid[a]
            want = torch.where(reads, want_lo.view(view), sides[a])
            assert torch.equal(lo, want), (where, "first", a)
            want = torch.where(reads, want_hi.view(view), -1)
            assert torch.equal(hi, want), (where, "last", a)
            full_lo, full_hi = _expected(state.axes[a].full, sides[a])
            if zero_padding and margin is not None:  # clear of the edges: the textbook field
                lo1 = lo.movedim(a, 0).reshape(grid[a], -1).amin(1)
                hi1 = hi.movedim(a, 0).reshape(grid[a], -1).amax(1)
                # a unit reads pixels up to ``gap`` apart (dilation, subsampling): one
                # that far from both edges reads no padding
                edge = max(margin, _widest_gap(along))
                clear = (lo1 >= edge) & (hi1 <= sides[a] - 1 - edge) & (lo1 <= hi1)
                assert torch.equal(full_lo[clear], lo1[clear]), (where, "interior first", a)
                assert torch.equal(full_hi[clear], hi1[clear]), (where, "interior last", a)
        checked += 1
    return checked


def check_extended(model: nn.Module, shape, margin: int = 2) -> int:
    """Assert archlab's textbook intervals (``full``, hence ``start``) on the extended image:
    the copy runs on the image with ``M`` more pixels on every side; for a model that is
    the same at every shift (convolutions, pools, transposed convolutions, pads, upsampling
    by a factor), unit ``o`` of the image's run is unit ``o + M/jump`` of that run, and its
    field is that unit's pixels shifted back by ``M``. Checks the module rows' corner,
    second and middle units; returns the number of rows checked (0 when the shift that keeps
    every row's units whole needs more than 256 pixels: three 1.7× upsamplings)."""
    import math
    from fractions import Fraction

    from archlab.trace.receptive import field_states
    from archlab.trace.shapes import trace_shapes

    report = trace_shapes(model, shape)
    states = field_states(report)
    rows = [
        (row, state)
        for row, state in zip(report.layers, states, strict=True)
        if state is not None and not row.functional and not state.flat
    ]
    jumps = [
        Fraction(j).limit_denominator(1000) for _, st in rows for j in (a.jump for a in st.axes)
    ]
    unit = math.lcm(*(j.numerator for j in jumps)) if jumps else 1
    widest = max(
        (hi - lo + 1 for _, st in rows for a in st.axes for lo, hi in filter(None, a.full)),
        default=1,
    )
    reach = max(  # how far any unit's textbook field reaches past the image
        (
            max(-lo, hi - (side - 1))
            for _, st in rows
            for a, side in zip(st.axes, shape[1:], strict=True)
            for lo, hi in filter(None, a.full)
        ),
        default=0,
    )
    extra = unit * math.ceil((max(widest, reach) + margin + 2) / unit)
    if extra > 256:  # three 1.7× upsamplings shift by 17³ units: too big a canvas
        return 0
    linear = linearise(model)
    c, *sides = shape
    outputs: dict[str, torch.Tensor] = {}
    hooks = [
        linear.get_submodule(row.name).register_forward_hook(
            lambda m, a, out, name=row.name: outputs.__setitem__(name, out)
        )
        for row, _ in rows
    ]
    x = torch.ones((1, c, *(m + 2 * extra for m in sides)), dtype=torch.double, requires_grad=True)
    try:
        with _Linearised():
            linear(x)
    finally:
        for h in hooks:
            h.remove()
    for row, state in rows:
        where = f"{row.name} ({row.type})"
        out = outputs[row.name]
        grid = [len(a) for a in state.axes]
        picks = {tuple(min(p, g - 1) for g in grid) for p in (0, 1)} | {
            tuple(g // 2 for g in grid),
            tuple(g - 1 for g in grid),
        }
        for pick in sorted(picks):
            shift = [extra / Fraction(a.jump).limit_denominator(1000) for a in state.axes]
            assert all(s.denominator == 1 for s in shift), where
            at = tuple(int(p + s) for p, s in zip(pick, shift, strict=True))
            (grad,) = torch.autograd.grad(out[(0, slice(None), *at)].sum(), x, retain_graph=True)
            hit = grad[0].abs().sum(0).nonzero()
            wants = [axis.full[p] for axis, p in zip(state.axes, pick, strict=True)]
            if any(w is None for w in wants):  # a unit that reads nothing (zeros inserted)
                assert not len(hit), (where, pick)
                continue
            for a, want in enumerate(wants):
                lo, hi = int(hit[:, a].min()) - extra, int(hit[:, a].max()) - extra
                assert lo - margin > -extra and hi + margin < sides[a] + extra, where
                assert (lo, hi) == want, (where, pick, a)
    return len(rows)
