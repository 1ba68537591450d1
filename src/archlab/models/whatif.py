"""What-ifs: change one hyper-parameter of one layer and rebuild that layer."""

from __future__ import annotations

import ast
import inspect

from torch import nn

from archlab.errors import ArchlabError


def _parse_value(text: str) -> object:
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text  # e.g. padding=same


def _init_parameters(cls: type) -> list[str]:
    """The named arguments of ``cls``'s constructor. nn.GRU, nn.LSTM and nn.RNN take
    ``*args, **kwargs`` and pass them on to nn.RNNBase: its names count (``batch_first``),
    less ``mode`` (each subclass gives its own), ``proj_size`` outside LSTM, and plus
    RNN's ``nonlinearity``."""
    names = list(inspect.signature(cls.__init__).parameters)[1:]
    if not issubclass(cls, nn.RNNBase) or cls is nn.RNNBase or "batch_first" in names:
        return names
    names = [n for n in inspect.signature(nn.RNNBase.__init__).parameters][1:]
    names = [n for n in names if n != "mode" and (n != "proj_size" or issubclass(cls, nn.LSTM))]
    return names + ["nonlinearity"] * issubclass(cls, nn.RNN)


def _constructor_args(module: nn.Module) -> dict[str, object]:
    """The keyword arguments that rebuild ``module`` as it is now."""
    args = {}
    for name in _init_parameters(type(module)):
        if name in ("device", "dtype", "args", "kwargs"):
            continue
        if name == "bias":
            args[name] = getattr(module, "bias", None) is not None
        elif name == "affine" and hasattr(module, "affine"):
            args[name] = module.affine
        elif hasattr(module, name):
            args[name] = getattr(module, name)
    return args


# the smallest value each size argument takes (padding may also be 'same' or 'valid')
_MINIMUM = {
    "kernel_size": 1,
    "stride": 1,
    "dilation": 1,
    "padding": 0,
    "output_padding": 0,
    "groups": 1,
    "in_channels": 1,
    "out_channels": 1,
    "in_features": 1,
    "out_features": 1,
    "num_features": 1,
    "num_channels": 1,
    "num_groups": 1,
    "output_size": 1,
}


def _check_value(assignment: str, kind: str, attr: str, value: object) -> None:
    """Refuse a size that no layer can have (exit 2: a value out of range, as ``--help``'s
    exit codes say)."""
    low = _MINIMUM.get(attr)
    if low is None or (attr == "padding" and value in ("same", "valid")):
        return
    values = value if isinstance(value, (tuple, list)) else (value,)
    if attr == "output_size" and None in values:
        values = tuple(v for v in values if v is not None)
    if not values or any(isinstance(v, bool) or not isinstance(v, int) or v < low for v in values):
        extra = " or 'same'/'valid'" if attr == "padding" and kind.startswith("Conv") else ""
        raise ArchlabError(
            f"--set {assignment}: {kind}'s {attr} must be a whole number ≥ {low} (or a tuple "
            f"of them){extra}",
            2,
        )


def set_hyperparameter(model: nn.Module, assignment: str) -> nn.Module:
    """Apply ``"layer2.0.padding=1"``: rebuild that layer with one argument changed.

    The layer is rebuilt through its constructor (so torch validates the value);
    its parameters are freshly initialised. Works in place and returns ``model``.

    Args:
        model: the model to change.
        assignment: ``"<qualified layer name>.<argument>=<Python literal>"``, or
            ``"<qualified layer name>=Identity"`` to take the layer out (see
            :func:`remove_layer`).

    Example::

        >>> archlab.models.whatif.set_hyperparameter(model, "layer2.0.padding=1")  # doctest: +SKIP
    """
    target, eq, value_text = assignment.partition("=")
    if eq and value_text.strip() in REMOVE:
        return remove_layer(model, target.strip())
    if eq and target.strip() in dict(model.named_modules()) and target.strip():
        return _swap_layer(model, target.strip(), value_text.strip(), assignment)
    layer_name, _, attr = target.strip().rpartition(".")
    if not eq or not layer_name or not attr:
        raise ArchlabError(
            f"--set {assignment!r}: expected LAYER.ARGUMENT=VALUE, e.g. layer2.0.padding=1"
        )
    return set_argument(model, layer_name, attr, _parse_value(value_text.strip()))


# the torch.nn modules a layer may be swapped for: element-wise layers that keep the
# shape (not containers, losses or layers that need sizes)
SWAPPABLE = ("torch.nn.modules.activation", "torch.nn.modules.dropout", "torch.nn.modules.linear")


def _swap_layer(model: nn.Module, layer_name: str, kind: str, assignment: str) -> nn.Module:
    """``LAYER=GELU``: the layer replaced by a torch.nn layer built without arguments (an
    activation: what if ReLU were GELU?)."""
    cls = getattr(nn, kind.removeprefix("nn."), None)
    if not (isinstance(cls, type) and issubclass(cls, nn.Module) and cls.__module__ in SWAPPABLE):
        raise ArchlabError(
            f"--set {assignment}: {kind!r} is no torch.nn activation, dropout or Identity; "
            "a layer is replaced by one built without arguments (e.g. GELU, Tanh, Identity) "
            "or changed by LAYER.ARGUMENT=VALUE"
        )
    try:
        new = cls()
    except TypeError:
        raise ArchlabError(
            f"--set {assignment}: nn.{cls.__name__} needs arguments; a layer is replaced "
            "only by one built without any (e.g. GELU, Tanh, Identity)"
        ) from None
    return replace_layer(model, layer_name, new)


def set_argument(model: nn.Module, layer_name: str, attr: str, value: object) -> nn.Module:
    """Rebuild ``layer_name`` with ``attr=value`` (what ``--set LAYER.ATTR=VALUE`` does).

    Works in place and returns ``model``; raises :class:`ArchlabError` when the layer's
    constructor refuses the value (exit 2), or the machine cannot hold its weights (exit 1).
    """
    modules = dict(model.named_modules())
    if layer_name not in modules:
        leaves = [n for n, m in modules.items() if n and not list(m.children())]
        raise ArchlabError(f"--set: no layer {layer_name!r}; layers: {', '.join(leaves)}")
    old = modules[layer_name]
    args = _constructor_args(old)
    if attr not in args:
        has = f"it has: {', '.join(args)}" if args else "it takes no argument archlab can change"
        raise ArchlabError(
            f"--set: {layer_name} ({type(old).__name__}) has no argument {attr!r}; {has}"
        )
    if isinstance(args[attr], bool):  # bias, ceil_mode, affine, batch_first...
        if isinstance(value, str) and value.lower() in ("true", "false"):
            value = value.lower() == "true"
        if not isinstance(value, bool):  # 'no' or 2 once built bias=True, named bias=no
            raise ArchlabError(
                f"--set {layer_name}.{attr}={value}: {type(old).__name__}'s {attr} is True or "
                "False",
                2,
            )
    args[attr] = value
    _check_value(f"{layer_name}.{attr}={value}", type(old).__name__, attr, value)
    try:
        new = type(old)(**args)
    except Exception as exc:
        assignment = f"--set {layer_name}.{attr}={value}"
        if isinstance(exc, MemoryError) or "can't allocate memory" in str(exc):
            # the value is legal, the machine cannot hold the layer's weights (exit 1)
            raise ArchlabError(
                f"{assignment}: {type(old).__name__}'s weights would need more memory than "
                "this machine has; choose a smaller value",
                1,
            ) from exc
        raise ArchlabError(f"{assignment}: {type(old).__name__} rejects it: {exc}", 2) from exc
    return replace_layer(model, layer_name, new)


def replace_layer(model: nn.Module, layer_name: str, new: nn.Module) -> nn.Module:
    """Put ``new`` where ``layer_name`` is, in the same train/eval mode; returns ``model``."""
    modules = dict(model.named_modules())
    new.train(modules[layer_name].training)
    parent_name, _, child = layer_name.rpartition(".")
    setattr(modules[parent_name] if parent_name else model, child, new)
    return model


# the values that take a layer out: ``--set layer1.1=Identity``
REMOVE = ("Identity", "nn.Identity", "identity")


def remove_layer(model: nn.Module, layer_name: str) -> nn.Module:
    """Replace the layer ``layer_name`` by ``nn.Identity()`` (``--set layer1.1=Identity``):
    the CNN without a BatchNorm, a net without a dropout. Works in place, returns ``model``.

    Only a layer whose output has its input's shape can go (a norm, an activation, a
    dropout...): the shape trace says so when the chain no longer fits.
    """
    modules = dict(model.named_modules())
    if not layer_name or layer_name not in modules:
        leaves = [n for n, m in modules.items() if n and not list(m.children())]
        raise ArchlabError(f"--set: no layer {layer_name!r}; layers: {', '.join(leaves)}")
    parent_name, _, child = layer_name.rpartition(".")
    setattr(modules[parent_name] if parent_name else model, child, nn.Identity())
    return model
