"""Shape rules for the tensor operations a ``forward`` calls directly (not through a layer).

Each rule takes a :class:`Call` (the operation's arguments with its tensors' full shapes,
batch first) and returns a :class:`~archlab.trace.formulas.Step`, or raises
:class:`~archlab.trace.formulas.ShapeError` where torch would fail, naming the branches that
produced the tensors. :func:`label` writes an operation as the table shows it
(``F.max_pool2d(2)``, ``view(-1, 784)``, ``mean((2, 3))``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from archlab.trace._batch import BATCH
from archlab.trace.formulas import (
    Shape,
    ShapeError,
    Step,
    adaptive_step,
    flatten_shape,
    fmt_shape,
    pool_step,
    reshape_shape,
)


@dataclass
class Call:
    """One call of an operation: its name, arguments, tensor shapes and where they came from."""

    name: str
    args: tuple
    kwargs: dict
    shapes: list[Shape]  # every tensor argument's full shape, in argument order
    describe: Callable[[], list[str]] = list  # "layer3.0.bn2 (64×8×8)" for each of them

    @property
    def sources(self) -> list[str]:
        """What produced each tensor (computed only when a formula or a diagnosis needs it)."""
        if not hasattr(self, "_sources"):
            self._sources = self.describe()
        return self._sources

    def arg(self, index: int, keyword: str, default: object = None) -> object:
        """A positional-or-keyword argument; index counts from the tensor argument (0)."""
        if len(self.args) > index:
            return self.args[index]
        return self.kwargs.get(keyword, default)


def _dims(value: object, rank: int) -> list[int]:
    if value is None:
        return list(range(rank))
    values = list(value) if isinstance(value, (tuple, list, torch.Size)) else [value]
    return sorted({int(v) % rank for v in values}) if rank else []


# -- shape-keeping activations (each keeps its row, as layers do) ---------------------------
ACTIVATIONS = {
    F.relu: "F.relu",
    torch.relu: "torch.relu",
    torch.Tensor.relu: "relu",
    F.relu6: "F.relu6",
    F.gelu: "F.gelu",
    F.silu: "F.silu",
    F.mish: "F.mish",
    F.elu: "F.elu",
    F.selu: "F.selu",
    F.leaky_relu: "F.leaky_relu",
    F.hardswish: "F.hardswish",
    F.hardsigmoid: "F.hardsigmoid",
    F.softplus: "F.softplus",
    F.softmax: "F.softmax",
    F.log_softmax: "F.log_softmax",
    torch.softmax: "torch.softmax",
    torch.Tensor.softmax: "softmax",
    F.sigmoid: "F.sigmoid",
    F.tanh: "F.tanh",
    torch.sigmoid: "torch.sigmoid",
    torch.tanh: "torch.tanh",
    torch.Tensor.sigmoid: "sigmoid",
    torch.Tensor.tanh: "tanh",
    F.dropout: "F.dropout",
    F.dropout2d: "F.dropout2d",
}
RESHAPES = {
    torch.Tensor.view: "view",
    torch.Tensor.reshape: "reshape",
    torch.reshape: "reshape",
    torch.Tensor.flatten: "flatten",
    torch.flatten: "flatten",
}


# -- rules ---------------------------------------------------------------------------------
def _reshape(call: Call) -> Step | None:
    target = (
        call.args[1:] if len(call.args) > 1 else call.kwargs.get("shape", call.kwargs.get("size"))
    )
    if target is None:
        return None
    if len(target) == 1 and isinstance(target[0], (tuple, list, torch.Size)):
        target = tuple(target[0])
    if not all(isinstance(t, int) for t in target):
        return None  # x.view(torch.float16) reinterprets the bytes: no rule
    return reshape_shape(call.shapes[0], target, call.name)


def _flatten(call: Call) -> Step:
    return flatten_shape(call.shapes[0], call.arg(1, "start_dim", 0), call.arg(2, "end_dim", -1))


def _pool(nd: int, is_max: bool) -> Callable[[Call], Step]:
    def rule(call: Call) -> Step:
        kernel = call.arg(1, "kernel_size")
        return pool_step(
            nd,
            is_max,
            call.shapes[0],
            kernel,
            call.arg(2, "stride"),
            call.arg(3, "padding", 0),
            call.arg(4, "dilation", 1) if is_max else 1,
            bool(call.arg(5 if is_max else 4, "ceil_mode", False)),
            call.name,
        )

    return rule


def _adaptive(nd: int) -> Callable[[Call], Step]:
    return lambda call: adaptive_step(nd, call.shapes[0], call.arg(1, "output_size"), call.name)


def _interpolate(call: Call) -> Step | None:
    shape = call.shapes[0]
    nd = len(shape) - 2
    if nd < 1:
        raise ShapeError(
            f"{call.name} expects (N, C, ...) with at least one spatial dim but receives "
            f"{len(shape)}-d (N, {', '.join(map(str, shape[1:]))})",
            fix="x.unsqueeze(1) to add a channel dim",
        )
    size, scale = call.arg(1, "size"), call.arg(2, "scale_factor")
    spatial = shape[2:]
    if size is not None:
        out = tuple(size) if isinstance(size, (tuple, list, torch.Size)) else (size,) * nd
        formula = f"size = {fmt_shape(out)}"
    elif scale is not None:
        scales = tuple(scale) if isinstance(scale, (tuple, list)) else (scale,) * nd
        if len(scales) != nd:
            return None
        out = tuple(math.floor(h * float(f)) for h, f in zip(spatial, scales, strict=True))
        parts = [f"⌊{h}·{f:g}⌋ = {o}" for h, f, o in zip(spatial, scales, out, strict=True)]
        formula = parts[0] if len(set(parts)) == 1 else "; ".join(parts)
    else:
        return None
    if len(out) != nd:
        return None  # torch explains the mismatch itself
    return Step((*shape[:2], *out), formula)


def _pad(call: Call) -> Step:
    shape = call.shapes[0]
    pad = tuple(int(p) for p in call.arg(1, "pad"))
    mode = call.arg(2, "mode", "constant")
    out = list(shape)
    parts = []
    for i in range(len(pad) // 2):
        dim = len(shape) - 1 - i
        left, right = pad[2 * i], pad[2 * i + 1]
        if mode == "reflect" and max(left, right) >= shape[dim]:
            raise ShapeError(
                f"reflect padding of {max(left, right)} needs a dim wider than that, but dim "
                f"{dim} is {shape[dim]}",
                fix=f"pad by less than {shape[dim]}, or use mode='replicate' or 'constant'",
            )
        if mode == "circular" and max(left, right) > shape[dim]:
            raise ShapeError(
                f"circular padding of {max(left, right)} is more than dim {dim}'s {shape[dim]}",
                fix=f"pad by at most {shape[dim]}",
            )
        out[dim] = shape[dim] + left + right
        parts.append(f"{shape[dim]} + {left} + {right} = {out[dim]}")
    if min(out) < 0:
        raise ShapeError(f"negative padding leaves {fmt_shape(out[1:])}", fix="crop less")
    return Step(tuple(out), "; ".join(reversed(parts)))


def _mismatch_fix(a: str, b: str) -> str:
    return (
        f"make both branches output the same shape: change the layers that produce {a} "
        f"or {b} (a residual shortcut that changes size needs its own 1×1 conv with the "
        "same stride, as ResNet's downsample has)"
    )


def broadcast(call: Call) -> Step:
    """``a + b``, ``a * b`` and the other elementwise merges: numpy broadcasting."""
    shapes = call.shapes
    rank = max(len(s) for s in shapes)
    out = []
    for i in range(1, rank + 1):
        sizes = {s[-i] for s in shapes if len(s) >= i} - {1}
        if len(sizes) > 1:
            dim = rank - i
            raise ShapeError(
                f"cannot {call.name} {' and '.join(call.sources)}: dim {dim} is "
                f"{' vs '.join(str(s[-i]) for s in shapes if len(s) >= i)}",
                fix=_mismatch_fix(call.sources[0], call.sources[-1]),
            )
        out.append(sizes.pop() if sizes else 1)
    merged = f" {_SYMBOL.get(call.name, call.name)} ".join(call.sources)
    return Step(tuple(reversed(out)), merged)


_SYMBOL = {"add": "+", "sub": "−", "mul": "·", "div": "/"}


def _cat(call: Call) -> Step:
    shapes = call.shapes
    dim = call.arg(1, "dim", 0)
    rank = len(shapes[0])
    if any(len(s) != rank for s in shapes):
        raise ShapeError(
            f"cannot concatenate {' and '.join(call.sources)}: they have "
            f"{' and '.join(str(len(s)) for s in shapes)} dims",
            fix=_mismatch_fix(call.sources[0], call.sources[-1]),
        )
    d = dim % rank
    for i in range(rank):
        if i != d and len({s[i] for s in shapes}) > 1:
            raise ShapeError(
                f"cannot concatenate along dim {dim} {' and '.join(call.sources)}: dim {i} "
                f"is {' vs '.join(str(s[i]) for s in shapes)}, and only dim {dim} may differ",
                fix=f"crop or pad one branch to the other's size in dim {i} before the cat "
                f"(U-Net crops the skip connection), or change the layers that produce them",
            )
    out = list(shapes[0])
    out[d] = sum(s[d] for s in shapes)
    return Step(tuple(out), f"dim {dim}: {' + '.join(str(s[d]) for s in shapes)} = {out[d]}")


def _stack(call: Call) -> Step:
    shapes = call.shapes
    if len(set(shapes)) > 1:
        raise ShapeError(
            f"cannot stack {' and '.join(call.sources)}: stack needs equal shapes",
            fix=_mismatch_fix(call.sources[0], call.sources[-1]),
        )
    dim = call.arg(1, "dim", 0) % (len(shapes[0]) + 1)
    out = list(shapes[0])
    out.insert(dim, len(shapes))
    return Step(tuple(out), f"{len(shapes)} tensors")


def _matmul(call: Call) -> Step | None:
    if len(call.shapes) != 2:
        return None
    a, b = call.shapes
    if len(a) < 1 or len(b) < 1:
        return None
    inner_a = a[-1]
    inner_b = b[-2] if len(b) > 1 else b[0]
    if inner_a != inner_b:
        raise ShapeError(
            f"cannot multiply {call.sources[0]} by {call.sources[1]}: the inner dims "
            f"{inner_a} and {inner_b} differ",
            fix="transpose one of them (x.transpose(-2, -1)) or change the layer that sets "
            "the inner size",
        )
    if len(a) == 1 or len(b) == 1:
        return None  # vector products: torch's own rules, no formula
    lead_a, lead_b = a[:-2], b[:-2]
    rank = max(len(lead_a), len(lead_b))
    lead = []
    for i in range(1, rank + 1):
        sizes = {s[-i] for s in (lead_a, lead_b) if len(s) >= i} - {1}
        if len(sizes) > 1:
            return None  # torch raises; it says which dims
        lead.append(sizes.pop() if sizes else 1)
    out = (*reversed(lead), a[-2], b[-1])
    return Step(out, f"({a[-2]}×{inner_a})·({inner_b}×{b[-1]}) → {a[-2]}×{b[-1]}")


def _permute(call: Call) -> Step:
    shape = call.shapes[0]
    order = call.args[1:] if len(call.args) > 1 else call.kwargs.get("dims")
    if len(order) == 1 and isinstance(order[0], (tuple, list, torch.Size)):
        order = tuple(order[0])
    if len(order) != len(shape):
        raise ShapeError(
            f"permute needs {len(shape)} dims for a {len(shape)}-d tensor, got {len(order)}",
            fix=f"list all {len(shape)} dims, e.g. permute{tuple(range(len(shape)))}",
        )
    return Step(tuple(shape[int(d)] for d in order))


def _transpose(call: Call) -> Step:
    shape = list(call.shapes[0])
    a, b = call.arg(1, "dim0"), call.arg(2, "dim1")
    shape[a], shape[b] = shape[b], shape[a]
    return Step(tuple(shape))


def _squeeze(call: Call) -> Step:
    shape = call.shapes[0]
    dims = _dims(call.arg(1, "dim"), len(shape))
    return Step(tuple(s for i, s in enumerate(shape) if not (i in dims and s == 1)))


def _unsqueeze(call: Call) -> Step:
    shape = list(call.shapes[0])
    dim = call.arg(1, "dim") % (len(shape) + 1)
    shape.insert(dim, 1)
    return Step(tuple(shape))


def _reduce(call: Call) -> Step | None:
    shape = call.shapes[0]
    dim = call.arg(1, "dim")
    if dim is None or isinstance(dim, (str, torch.dtype)):
        return None if dim is not None else Step(())
    keep = bool(call.arg(2, "keepdim", False))
    dims = _dims(dim, len(shape))
    out = tuple(1 if i in dims else s for i, s in enumerate(shape) if keep or i not in dims)
    return Step(out)


def _unpack(call: Call) -> Step | None:
    """max(x, dim) and min(x, dim) return (values, indices): the shape of each."""
    dim = call.arg(1, "dim")
    if dim is None or isinstance(dim, torch.Tensor):
        return None
    return _reduce(call)


RULES: dict[object, Callable[[Call], Step | None]] = {
    torch.Tensor.view: _reshape,
    torch.Tensor.reshape: _reshape,
    torch.reshape: _reshape,
    torch.Tensor.flatten: _flatten,
    torch.flatten: _flatten,
    F.max_pool1d: _pool(1, True),
    F.max_pool2d: _pool(2, True),
    F.max_pool3d: _pool(3, True),
    F.max_pool1d_with_indices: _pool(1, True),
    F.max_pool2d_with_indices: _pool(2, True),
    F.max_pool3d_with_indices: _pool(3, True),
    F.avg_pool1d: _pool(1, False),
    F.avg_pool2d: _pool(2, False),
    F.avg_pool3d: _pool(3, False),
    F.adaptive_avg_pool1d: _adaptive(1),
    F.adaptive_avg_pool2d: _adaptive(2),
    F.adaptive_avg_pool3d: _adaptive(3),
    F.adaptive_max_pool1d: _adaptive(1),
    F.adaptive_max_pool2d: _adaptive(2),
    F.adaptive_max_pool3d: _adaptive(3),
    F.interpolate: _interpolate,
    F.pad: _pad,
    torch.cat: _cat,
    torch.concat: _cat,
    torch.concatenate: _cat,
    torch.stack: _stack,
    torch.matmul: _matmul,
    torch.Tensor.matmul: _matmul,
    torch.Tensor.__matmul__: _matmul,
    torch.mm: _matmul,
    torch.bmm: _matmul,
    torch.Tensor.permute: _permute,
    torch.permute: _permute,
    torch.Tensor.transpose: _transpose,
    torch.transpose: _transpose,
    torch.Tensor.squeeze: _squeeze,
    torch.squeeze: _squeeze,
    torch.Tensor.unsqueeze: _unsqueeze,
    torch.unsqueeze: _unsqueeze,
}
for _name in ("mean", "sum", "amax", "amin", "prod", "std", "var", "logsumexp", "argmax", "argmin"):
    RULES[getattr(torch.Tensor, _name)] = _reduce
    RULES[getattr(torch, _name)] = _reduce
for _name in ("max", "min"):
    RULES[getattr(torch.Tensor, _name)] = _unpack
    RULES[getattr(torch, _name)] = _unpack
for _name in ("add", "sub", "mul", "div", "add_", "sub_", "mul_", "div_"):
    RULES[getattr(torch.Tensor, _name)] = broadcast
    if not _name.endswith("_"):
        RULES[getattr(torch, _name)] = broadcast
for _name in ("__add__", "__radd__", "__iadd__", "__mul__", "__rmul__", "__imul__", "__sub__"):
    RULES[getattr(torch.Tensor, _name)] = broadcast

# elementwise: each output element reads the same position of each input (no softmax: its
# dim may be the batch)
ELEMENTWISE = {f for f, r in RULES.items() if r is broadcast} | {
    f
    for f in ACTIVATIONS
    if f not in (F.softmax, F.log_softmax, torch.softmax, torch.Tensor.softmax)
}
REDUCTIONS = {f for f, r in RULES.items() if r in (_reduce, _unpack)}
PERMUTES = {f for f, r in RULES.items() if r in (_permute, _transpose)}


# -- code fixes tried on a trial run -----------------------------------------------------------
CATS = (torch.cat, torch.concat, torch.concatenate)
EDITABLE = set(CATS) | PERMUTES | set(RESHAPES)


def editable(func, args: tuple, kwargs: dict, rank: int, batch) -> tuple:
    """What a trial could change in this call: ``(func, rank, batch dim, its argument)``
    (a cat's dim, a transpose's pair, a permute's order, a reshape's target)."""
    call = Call("", args, kwargs, [], list)
    if func in CATS:
        detail = call.arg(1, "dim", 0)
    elif func in (torch.Tensor.transpose, torch.transpose):
        detail = (call.arg(1, "dim0"), call.arg(2, "dim1"))
    elif func in PERMUTES:
        order = args[1:] if len(args) > 1 else kwargs.get("dims")
        if len(order) == 1 and isinstance(order[0], (tuple, list, torch.Size)):
            order = order[0]
        detail = tuple(order)
    else:
        detail = None
    return func, rank, batch.dim, detail


def edited(func, args: tuple, kwargs: dict, change: tuple) -> tuple[tuple, dict]:
    """The call's arguments with one code fix made: ``("dim", 1)`` for a cat,
    ``("dims", (1, 2))``, ``("order", (0, 2, 1))``, ``("shape", (N, -1))``, ``("start", 1)``."""
    what, value = change
    tensor = args[0]
    if what == "dim":
        return (tensor,), {"dim": value}
    if what in ("dims", "order"):
        return (tensor, *value), {}
    if what == "shape":
        return (tensor, *value), {}
    if what == "start":
        return (tensor, value), {}
    raise ValueError(f"unknown edit {change}")


# -- labels --------------------------------------------------------------------------------
_ARITHMETIC = {"add", "sub", "mul", "matmul", "truediv", "floordiv", "pow", "mod", "and", "or"}


def op_name(func: object) -> str:
    """``F.max_pool2d``, ``torch.cat``, ``view``, ``add`` (operators by their method name)."""
    name = getattr(func, "__name__", None) or type(func).__name__
    if name.startswith("__"):
        name = name.strip("_")
        if name[:1] in "ri" and name[1:] in _ARITHMETIC:
            name = name[1:]  # __radd__, __iadd__: an add
    if name.endswith("_") and not name.startswith("_"):
        name = name[:-1]  # add_ (x += y) is an add
    module = getattr(func, "__module__", None) or ""
    if module.startswith("torch.nn.functional") or module == "torch._C._nn":
        return f"F.{name}"
    if module == "torch" and func not in RESHAPES:
        return f"torch.{name}"
    return name


def _short(value: object) -> str | None:
    if isinstance(value, bool) or value is None:
        return repr(value)
    if isinstance(value, (int, str)):
        return repr(value) if isinstance(value, str) else str(value)
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (tuple, list, torch.Size)) and all(
        isinstance(v, (int, float)) for v in value
    ):
        inner = ", ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in value)
        return f"({inner}{',' if len(value) == 1 else ''})"
    if isinstance(value, torch.dtype):
        return str(value)
    return None


def _has_tensor(value: object) -> bool:
    if isinstance(value, (tuple, list)):
        return any(_has_tensor(v) for v in value)
    return isinstance(value, torch.Tensor)


def _index(item: object) -> str:
    if isinstance(item, slice):
        parts = ["" if v is None else str(v) for v in (item.start, item.stop, item.step)]
        return ":".join(parts[:2]) + (f":{parts[2]}" if parts[2] else "")
    if item is Ellipsis:
        return "..."
    if isinstance(item, torch.Tensor):
        return "tensor"
    return str(item)


def label(func: object, args: Sequence, kwargs: dict, batch_dim: int | None = None) -> str:
    """The type column for an operation: its name and its short non-tensor arguments.

    ``batch_dim`` is where the output keeps the batch: a view/reshape size given there
    (``x.size(0)``) is written ``N``, never the traced batch's own size.
    """
    name = ACTIVATIONS.get(func) or op_name(func)
    if func in ACTIVATIONS:
        return name
    if name == "getitem":
        items = args[1] if len(args) > 1 else ()
        items = items if isinstance(items, tuple) else (items,)
        return f"[{', '.join(_index(i) for i in items)}]"
    positional = [a for a in args if not _has_tensor(a)]
    if func in RESHAPES and "shape" in kwargs and len(args) <= 1:
        args, kwargs = (None, tuple(kwargs["shape"])), {}
    if func in RESHAPES and len(args) > 1:
        positional = list(args[1:])
        if len(positional) == 1 and isinstance(positional[0], (tuple, list, torch.Size)):
            positional = list(positional[0])
        at = batch_dim if batch_dim is not None and batch_dim < len(positional) else None
        if name != "flatten" and at is not None and positional[at] == BATCH:
            positional[at] = "N"  # x.size(0): the traced batch's size, not a constant
    texts = [p if p == "N" else _short(p) for p in positional]
    texts += [
        f"{k}={_short(v)}"
        for k, v in kwargs.items()
        if k not in ("input", "self", "inplace") and v is not None and _short(v) is not None
    ]
    if any(t is None for t in texts):
        return name
    text = ", ".join(texts)
    return f"{name}({text})" if text and len(text) <= 40 else name
