"""Analytic output shapes of single layers, with the formula written out.

Each rule takes a module and its full input shape (batch first) and returns a
:class:`Step`, or raises :class:`ShapeError` when the layer cannot take that input,
exactly where torch's forward pass would fail. Formulas follow the PyTorch docs::

    Conv, MaxPool:  ⌊(H + 2·p − d·(k−1) − 1)/s⌋ + 1
    AvgPool:        ⌊(H + 2·p − k)/s⌋ + 1
    ConvTranspose:  (H − 1)·s − 2·p + d·(k−1) + output_padding + 1
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from torch import nn

Shape = tuple[int, ...]

_DIM_NAMES = {1: ("L",), 2: ("H", "W"), 3: ("D", "H", "W")}


@dataclass(frozen=True)
class Step:
    """What one layer does to a shape: the output and, if it changes size, why."""

    output: Shape
    formula: str | None = None


class ShapeError(Exception):
    """The layer cannot take this input; ``fix`` says in words what would make it fit.

    ``change`` is the same fix as structure, where it is one: ``("set", argument, value)``
    (rebuild this layer with one argument changed), ``("replace", "BatchNorm1d", (16,))``
    (another layer in its place) or ``("before", "flatten")`` / ``("before", "transpose")``
    (an operation on the layer's input). The tracer tries it before it is shown.
    """

    def __init__(self, message: str, fix: str | None = None, change: tuple | None = None) -> None:
        super().__init__(message)
        self.fix = fix
        self.change = change


class RankError(ShapeError):
    """The input has the wrong number of dimensions; ``form`` is the per-sample one wanted
    (``"C,H,W"``), so that a model's first layer can say which ``--input`` it takes."""

    def __init__(self, message: str, fix: str | None, rank: int, form: str) -> None:
        super().__init__(message, fix)  # no change: reshaping the input has no one form
        self.rank = rank
        self.form = form


class ChannelError(ShapeError):
    """A layer received the wrong number of channels (``expected`` against ``got``)."""

    def __init__(
        self, message: str, fix: str | None, expected: int, got: int, change: tuple | None = None
    ) -> None:
        super().__init__(message, fix, change)
        self.expected = expected
        self.got = got


def _batched(shape: Shape) -> str:
    """``(N, 64)``: a full shape as a message shows it, the traced batch's size never in it."""
    return f"{len(shape)}-d (N, {', '.join(map(str, shape[1:]))})" if shape else "0-d ()"


def fmt_shape(shape: Sequence[int]) -> str:
    """``(32, 28, 28)`` → ``"32×28×28"``."""
    return "×".join(str(d) for d in shape)


def _tuple(value: int | Sequence[int], n: int) -> tuple[int, ...]:
    if isinstance(value, int):
        return (value,) * n
    value = tuple(value)
    return value * n if len(value) == 1 else value


def _floor_div(a: int, b: int) -> int:
    return a // b  # Python rounds toward −∞, as ATen's div_rtn does for negative sizes


def _join(names: Sequence[str], parts: Sequence[str]) -> str:
    """One formula for all spatial dims when they are the same, else one per dim."""
    if len(set(parts)) == 1:
        return f"{','.join(names)}: {parts[0]}"
    return "; ".join(f"{n}: {p}" for n, p in zip(names, parts, strict=True))


def expected_form(nd: int) -> str:
    """``"(N, C, H, W)"`` for a 2-d layer."""
    return f"(N, C, {', '.join(_DIM_NAMES[nd])})"


def _spatial(module_nd: int, in_shape: Shape, what: str) -> Shape:
    # archlab always traces a batch, so the unbatched (C, H, W) form torch also accepts
    # would mean the batch had been lost or the channel dimension was never there
    if len(in_shape) != module_nd + 2:
        raise RankError(
            f"{what} expects a {module_nd + 2}-d input {expected_form(module_nd)} but receives "
            f"{_batched(in_shape)}",
            fix="reshape the input to (N, C, ...) before this layer",
            rank=module_nd + 1,
            form=",".join(("C", *_DIM_NAMES[module_nd])),
        )
    return tuple(in_shape[-module_nd:])


def _check_channels(expected: int, in_shape: Shape, nd: int, what: str, groups: int = 1) -> None:
    got = in_shape[-nd - 1]
    if got == expected:
        return
    if nd == 1 and in_shape[-1] == expected:  # (N, L, C): a channels-last sequence
        raise ChannelError(
            f"{what} expects {expected} input channels in dim 1 (N, C, L) but receives "
            f"{fmt_shape(in_shape[1:])}, a (length, channels) sequence",
            fix="x.transpose(1, 2) before this layer: Conv1d takes (N, C, L)",
            expected=expected,
            got=got,
            change=("before", "transpose"),
        )
    depthwise = groups == expected > 1
    kind = f" (depthwise: groups = in = out = {expected})" if depthwise else ""
    raise ChannelError(
        f"{what} expects {expected} input channels{kind} but receives {got}",
        fix=(
            f"change the layer before it to output {expected} (in_channels={got} alone "
            "would make it a grouped convolution, no longer depthwise)"
            if depthwise
            else f"set in_channels={got}, or change the layer before it to output {expected}"
        ),
        expected=expected,
        got=got,
        change=("set", "in_channels", got),
    )


def _check_padding_mode(m: nn.modules.conv._ConvNd, spatial: Shape, pads: Sequence[int]) -> None:
    mode = getattr(m, "padding_mode", "zeros")
    if mode not in ("reflect", "circular"):
        return
    for h, p in zip(spatial, pads, strict=True):
        if p >= h if mode == "reflect" else p > h:
            limit = f"< {h}" if mode == "reflect" else f"≤ {h}"
            raise ShapeError(
                f"{mode} padding of {p} needs an input wider than that, but the map is "
                f"{fmt_shape(spatial)}",
                fix=f"use padding {limit}, or padding_mode='zeros' or 'replicate'",
                change=("set", "padding", h - 1 if mode == "reflect" else h),
            )


def _groups(m: nn.modules.conv._ConvNd) -> str:
    """``; groups 32 = in = out (depthwise)``: a conv's groups, where it has more than one."""
    if m.groups == 1:
        return ""
    if m.groups == m.in_channels == m.out_channels:
        return f"; groups {m.groups} = in = out (depthwise)"
    return f"; groups {m.groups} (each filter sees {m.in_channels // m.groups} channels)"


def _conv(m: nn.modules.conv._ConvNd, in_shape: Shape) -> Step:
    nd = len(m.kernel_size)
    spatial = _spatial(nd, in_shape, type(m).__name__)
    depthwise = m.groups if m.groups == m.out_channels else 1
    _check_channels(m.in_channels, in_shape, nd, type(m).__name__, depthwise)
    names = _DIM_NAMES[nd]
    if isinstance(m.padding, str):  # 'same' keeps the size; 'valid' is padding 0
        if m.padding == "same":
            same = "padding='same'" + _groups(m)
            return Step((*in_shape[: -nd - 1], m.out_channels, *spatial), same)
        pads = (0,) * nd
    else:
        pads = _tuple(m.padding, nd)
    _check_padding_mode(m, spatial, pads)
    out, parts = [], []
    for h, k, s, p, d in zip(spatial, m.kernel_size, m.stride, pads, m.dilation, strict=True):
        if s < 1 or k < 1:
            raise ShapeError(
                f"has kernel {k} and stride {s}; a convolution needs both ≥ 1", fix="use sizes ≥ 1"
            )
        reach = d * (k - 1) + 1
        if h + 2 * p < reach:
            raise ShapeError(
                f"the map shrinks to nothing: {fmt_shape(spatial)} input"
                f"{f' (+{p} padding per side)' if p else ''} is smaller than the "
                f"{fmt_shape(m.kernel_size)} kernel's reach of {reach}",
                fix="feed a larger input, add padding here, or pool less before this layer",
            )
        o = _floor_div(h + 2 * p - d * (k - 1) - 1, s) + 1
        out.append(o)
        parts.append(f"⌊({h} + 2·{p} − {d}·({k}−1) − 1)/{s}⌋ + 1 = {o}")
    return Step((*in_shape[: -nd - 1], m.out_channels, *out), _join(names, parts) + _groups(m))


def _conv_transpose(
    m: nn.modules.conv._ConvTransposeNd, in_shape: Shape, output_size: Sequence[int] | None = None
) -> Step:
    nd = len(m.kernel_size)
    spatial = _spatial(nd, in_shape, type(m).__name__)
    _check_channels(m.in_channels, in_shape, nd, type(m).__name__)
    if output_size is not None:
        return _conv_transpose_to(m, in_shape, spatial, tuple(output_size)[-nd:])
    out, parts = [], []
    for h, k, s, p, d, op in zip(
        spatial, m.kernel_size, m.stride, m.padding, m.dilation, m.output_padding, strict=True
    ):
        if op >= max(s, d):
            raise ShapeError(
                f"output_padding {op} must be smaller than the stride {s} or the dilation {d}",
                fix=f"use output_padding < {max(s, d)}",
                change=("set", "output_padding", max(s, d) - 1),
            )
        o = (h - 1) * s - 2 * p + d * (k - 1) + op + 1
        if o < 1:
            raise ShapeError(
                f"the output shrinks to nothing: (H − 1)·s − 2·p + d·(k−1) + output_padding + 1"
                f" = {o} for H = {h}",
                fix="use less padding or a larger input",
            )
        out.append(o)
        parts.append(f"({h} − 1)·{s} − 2·{p} + {d}·({k}−1) + {op} + 1 = {o}")
    formula = _join(_DIM_NAMES[nd], parts) + _groups(m)
    return Step((*in_shape[: -nd - 1], m.out_channels, *out), formula)


def _conv_transpose_to(
    m: nn.modules.conv._ConvTransposeNd, in_shape: Shape, spatial: Shape, wanted: Shape
) -> Step:
    """``layer(x, output_size=...)``: any size from the formula's up to stride − 1 more."""
    nd = len(spatial)
    for h, k, s, p, d, o in zip(
        spatial, m.kernel_size, m.stride, m.padding, m.dilation, wanted, strict=True
    ):
        low = (h - 1) * s - 2 * p + d * (k - 1) + 1
        if not low <= o < low + s:
            raise ShapeError(
                f"output_size {fmt_shape(wanted)} is out of reach: from {h} it can make "
                f"{low} to {low + s - 1}",
                fix=f"ask for an output_size between {low} and {low + s - 1}",
            )
    formula = f"output_size = {fmt_shape(wanted)} (output_padding chosen to fit)" + _groups(m)
    return Step((*in_shape[: -nd - 1], m.out_channels, *wanted), formula)


_POOL_ND = {
    nn.MaxPool1d: 1,
    nn.MaxPool2d: 2,
    nn.MaxPool3d: 3,
    nn.AvgPool1d: 1,
    nn.AvgPool2d: 2,
    nn.AvgPool3d: 3,
}


def _pool(m: nn.Module, in_shape: Shape) -> Step:
    nd = _POOL_ND[type(m)]
    is_max = isinstance(m, (nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d))
    return pool_step(
        nd,
        is_max,
        in_shape,
        m.kernel_size,
        m.stride,
        m.padding,
        m.dilation if is_max else 1,
        m.ceil_mode,
        type(m).__name__,
    )


def pool_step(
    nd: int,
    is_max: bool,
    in_shape: Shape,
    kernel_size: int | Sequence[int],
    stride: int | Sequence[int] | None,
    padding: int | Sequence[int] = 0,
    dilation: int | Sequence[int] = 1,
    ceil_mode: bool = False,
    what: str = "pooling",
) -> Step:
    """Max or average pooling over the last ``nd`` dims (``F.max_pool2d`` and friends)."""
    spatial = _spatial(nd, in_shape, what)
    ks = _tuple(kernel_size, nd)
    strides = _tuple(stride if stride not in (None, (), []) else kernel_size, nd)
    pads = _tuple(padding, nd)
    dils = _tuple(dilation, nd)
    out, parts = [], []
    for h, k, s, p, d in zip(spatial, ks, strides, pads, dils, strict=True):
        if s == 0:
            raise ShapeError("stride must not be zero", fix="use stride ≥ 1")
        if p > k // 2:
            raise ShapeError(
                f"padding {p} is more than half the kernel size {k}: "
                "a window would see only padding",
                fix=f"use padding ≤ {k // 2}",
            )
        span = f"{d}·({k}−1) − 1" if is_max else f"{k}"
        numerator = h + 2 * p - (d * (k - 1) + 1 if is_max else k)
        if ceil_mode:
            o = -((-numerator) // s) + 1  # ceiling division
            formula = f"⌈({h} + 2·{p} − {span})/{s}⌉ + 1"
            if (o - 1) * s >= h + p:  # the last window would start in the right padding
                o -= 1
                formula += " − 1 (the last window would start in the padding)"
        else:
            o = _floor_div(numerator, s) + 1
            formula = f"⌊({h} + 2·{p} − {span})/{s}⌋ + 1"
        if o < 1:
            raise ShapeError(
                f"the map shrinks to nothing: a {fmt_shape(spatial)} input is smaller than the "
                f"{fmt_shape(ks)} pooling window",
                fix="feed a larger input or pool less before this layer",
            )
        out.append(o)
        parts.append(f"{formula} = {o}")
    return Step((*in_shape[:-nd], *out), _join(_DIM_NAMES[nd], parts))


_ADAPTIVE_ND = {
    nn.AdaptiveAvgPool1d: 1,
    nn.AdaptiveAvgPool2d: 2,
    nn.AdaptiveAvgPool3d: 3,
    nn.AdaptiveMaxPool1d: 1,
    nn.AdaptiveMaxPool2d: 2,
    nn.AdaptiveMaxPool3d: 3,
}


def _adaptive(m: nn.Module, in_shape: Shape) -> Step:
    return adaptive_step(_ADAPTIVE_ND[type(m)], in_shape, m.output_size, type(m).__name__)


def adaptive_step(nd: int, in_shape: Shape, output_size: object, what: str = "pooling") -> Step:
    """Adaptive pooling: the output is ``output_size`` (``None`` keeps that dimension)."""
    spatial = _spatial(nd, in_shape, what)
    if min(spatial) < 1:
        raise ShapeError(f"receives an empty {fmt_shape(spatial)} map", fix="feed a larger input")
    size = tuple(output_size) if isinstance(output_size, (tuple, list)) else (output_size,) * nd
    out = tuple(h if o is None else o for h, o in zip(spatial, size, strict=True))
    return Step((*in_shape[:-nd], *out), f"output_size = {fmt_shape(out)}, whatever the input")


_NORM_RANKS = {
    nn.BatchNorm1d: ((2, 3), "(N, C) or (N, C, L)"),
    nn.BatchNorm2d: ((4,), "(N, C, H, W)"),
    nn.BatchNorm3d: ((5,), "(N, C, D, H, W)"),
}
_NORM_FOR_RANK = {2: "BatchNorm1d", 3: "BatchNorm1d", 4: "BatchNorm2d", 5: "BatchNorm3d"}


def _norm(m: nn.Module, in_shape: Shape) -> Step:
    what = type(m).__name__
    if isinstance(m, nn.LayerNorm):
        want = tuple(m.normalized_shape)
        if tuple(in_shape[-len(want) :]) != want:
            raise ShapeError(
                f"LayerNorm normalises the last dims {fmt_shape(want)} but its input ends in "
                f"{fmt_shape(in_shape[-len(want) :])}",
                fix=f"set normalized_shape={tuple(in_shape[-len(want) :])}",
                change=("set", "normalized_shape", tuple(in_shape[-len(want) :])),
            )
        return Step(tuple(in_shape))
    for kind, (ranks, form) in _NORM_RANKS.items():
        if isinstance(m, kind) and len(in_shape) not in ranks:
            other = _NORM_FOR_RANK.get(len(in_shape))
            got = in_shape[1] if len(in_shape) > 1 else None
            raise ShapeError(
                f"{what} expects a {' or '.join(map(str, ranks))}-d input {form} but receives "
                f"{_batched(in_shape)}",
                fix=f"use nn.{other}({got}) here" if other and got else None,
                change=("replace", other, (got,)) if other and got else None,
            )
    if isinstance(m, nn.GroupNorm):
        expected, keyword = m.num_channels, "num_channels"
    else:
        expected, keyword = m.num_features, "num_features"
    if len(in_shape) < 2 or in_shape[1] != expected:
        got = in_shape[1] if len(in_shape) > 1 else None
        raise ChannelError(
            f"{what} expects {expected} channels but receives {got if got else 'no'}",
            fix=f"set {keyword}={got}" if got else None,
            expected=expected,
            got=got or 0,
            change=("set", keyword, got) if got else None,
        )
    return Step(tuple(in_shape))


def _linear(m: nn.Linear, in_shape: Shape) -> Step:
    got = in_shape[-1] if len(in_shape) > 1 else 0
    if got != m.in_features:
        per_sample = math.prod(in_shape[1:])
        if len(in_shape) > 2 and per_sample == m.in_features:
            # 1×28×28 into Linear(784, …): the values are all there, only not flattened
            raise ShapeError(
                f"expects {m.in_features} input features but receives "
                f"{fmt_shape(in_shape[1:])} per image, unflattened: Linear acts on the last "
                f"dim ({got}), and {'·'.join(map(str, in_shape[1:]))} = {per_sample} is "
                "exactly in_features",
                fix="flatten first: torch.flatten(x, 1) (or nn.Flatten()) before this layer",
                change=("before", "flatten"),
            )
        raise ShapeError(
            f"expects {m.in_features} input features but receives {got}",
            fix=f"build it as nn.Linear({got}, {m.out_features})",
            change=("set", "in_features", got, f"build it as nn.Linear({got}, {m.out_features})"),
        )
    return Step((*in_shape[:-1], m.out_features), f"in_features {m.in_features} ✓")


def _embedding(m: nn.Embedding, in_shape: Shape) -> Step:
    return Step((*in_shape, m.embedding_dim), f"embedding_dim {m.embedding_dim}")


def _rnn(m: nn.RNNBase, in_shape: Shape) -> None:
    """RNN, LSTM, GRU: only the input is checked; the output comes from the forward pass."""
    what = type(m).__name__
    if len(in_shape) != 3:
        form = "(N, L, features)" if m.batch_first else "(L, N, features)"
        raise ShapeError(
            f"{what} expects a 3-d input {form} but receives {_batched(in_shape)}",
            fix="give it a sequence: (N, L, features) with batch_first=True",
        )
    if in_shape[-1] != m.input_size:
        raise ShapeError(
            f"expects {m.input_size} input features per step but receives {in_shape[-1]}",
            fix=f"set input_size={in_shape[-1]}",
            change=("set", "input_size", in_shape[-1]),
        )


def flatten_shape(in_shape: Shape, start_dim: int = 0, end_dim: int = -1) -> Step:
    """Shape after ``torch.flatten(x, start_dim, end_dim)``, with the product written out."""
    n = len(in_shape)
    if n == 0:
        return Step((1,), None)
    start, end = start_dim % n, end_dim % n
    if start > end:
        raise ShapeError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim}")
    merged = in_shape[start : end + 1]
    size = math.prod(merged)
    formula = f"{'·'.join(map(str, merged))} = {size}" if len(merged) > 1 else None
    return Step((*in_shape[:start], size, *in_shape[end + 1 :]), formula)


def reshape_shape(in_shape: Shape, target: Sequence[int], op: str = "view") -> Step:
    """Shape after ``x.view(*target)`` / ``x.reshape(*target)``, resolving one ``-1``."""
    total = math.prod(in_shape)
    target = tuple(int(t) for t in target)
    if target.count(-1) > 1:
        raise ShapeError(f"{op}: only one dimension can be -1, got {target}")
    known = math.prod(t for t in target if t != -1)
    per_sample = math.prod(in_shape[1:]) if len(in_shape) > 1 else total
    if -1 in target:
        if known == 0 or total % known:
            raise ShapeError(
                f"{op}{target} cannot cut {fmt_shape(in_shape[1:])} = {per_sample} values per "
                f"image into rows of {known}",
                fix=f"the layer before delivers {per_sample} values per image; "
                f"use {op}(x.size(0), -1) and size the next layer to match",
            )
        target = tuple(total // known if t == -1 else t for t in target)
    elif known != total:
        raise ShapeError(f"{op}{target} needs {known} values but receives {total}")
    formula = None
    if len(in_shape) > 1 and len(target) < len(in_shape) and target[:1] == in_shape[:1]:
        formula = f"{'·'.join(map(str, in_shape[1:]))} = {per_sample}"  # the batch kept
    return Step(target, formula)


# applied to each element alone: the shape, and each unit's receptive field, unchanged
ELEMENTWISE = (
    nn.ReLU,
    nn.ReLU6,
    nn.LeakyReLU,
    nn.PReLU,
    nn.ELU,
    nn.SELU,
    nn.CELU,
    nn.GELU,
    nn.SiLU,
    nn.Mish,
    nn.Sigmoid,
    nn.Tanh,
    nn.Hardtanh,
    nn.Hardswish,
    nn.Hardsigmoid,
    nn.Softplus,
    nn.Identity,
    nn.Dropout,
    nn.Dropout1d,
    nn.Dropout2d,
    nn.Dropout3d,
    nn.AlphaDropout,
)
# the shape unchanged, though they mix channels (norms) or a dimension (softmax)
_UNCHANGED = (
    *ELEMENTWISE,
    nn.Softmax,
    nn.LogSoftmax,
)


def infer_step(module: nn.Module, in_shape: Shape, kwargs: dict | None = None) -> Step | None:
    """The analytic output of ``module`` for an input of ``in_shape`` (batch first).

    Args:
        module: the layer.
        in_shape: its input's full shape, batch first.
        kwargs: keyword arguments of the call (``output_size=`` of a ConvTranspose).
            Default: none.

    Returns:
        A :class:`Step`, or ``None`` for a layer type without a rule (its shape then comes
        only from the forward pass). Raises :class:`ShapeError` where torch would fail.

    Example::

        >>> from torch import nn
        >>> infer_step(nn.Conv2d(1, 32, 3, padding=1), (2, 1, 28, 28)).output
        (2, 32, 28, 28)
    """
    in_shape = tuple(in_shape)
    if not getattr(type(module).forward, "__module__", "").startswith("torch.nn."):
        return None  # a subclass with its own forward (LayerNorm2d permutes first): no rule
    if isinstance(module, nn.modules.conv._ConvTransposeNd):
        return _conv_transpose(module, in_shape, (kwargs or {}).get("output_size"))
    if isinstance(module, nn.modules.conv._ConvNd):
        return _conv(module, in_shape)
    if type(module) in _POOL_ND:
        return _pool(module, in_shape)
    if type(module) in _ADAPTIVE_ND:
        return _adaptive(module, in_shape)
    if isinstance(module, (nn.modules.batchnorm._BatchNorm, nn.GroupNorm, nn.LayerNorm)):
        return _norm(module, in_shape)
    if isinstance(module, nn.Linear):
        return _linear(module, in_shape)
    if isinstance(module, nn.Embedding):
        return _embedding(module, in_shape)
    if isinstance(module, nn.RNNBase):
        return _rnn(module, in_shape)
    if isinstance(module, nn.Flatten):
        return flatten_shape(in_shape, module.start_dim, module.end_dim)
    if isinstance(module, _UNCHANGED):
        return Step(in_shape)
    return None
