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


def _constructor_args(module: nn.Module) -> dict[str, object]:
    """The keyword arguments that rebuild ``module`` as it is now."""
    args = {}
    for name in list(inspect.signature(type(module).__init__).parameters)[1:]:
        if name in ("device", "dtype", "args", "kwargs"):
            continue
        if name == "bias":
            args[name] = getattr(module, "bias", None) is not None
        elif name == "affine" and hasattr(module, "affine"):
            args[name] = module.affine
        elif hasattr(module, name):
            args[name] = getattr(module, name)
    return args


def set_hyperparameter(model: nn.Module, assignment: str) -> nn.Module:
    """Apply ``"layer2.0.padding=1"``: rebuild that layer with one argument changed.

    The layer is rebuilt through its constructor (so torch validates the value);
    its parameters are freshly initialised. Works in place and returns ``model``.

    Args:
        model: the model to change.
        assignment: ``"<qualified layer name>.<argument>=<Python literal>"``.

    Example::

        >>> archlab.set_hyperparameter(model, "layer2.0.padding=1")  # doctest: +SKIP
    """
    target, eq, value_text = assignment.partition("=")
    layer_name, _, attr = target.strip().rpartition(".")
    if not eq or not layer_name or not attr:
        raise ArchlabError(
            f"--set {assignment!r}: expected LAYER.ARGUMENT=VALUE, e.g. layer2.0.padding=1"
        )
    modules = dict(model.named_modules())
    if layer_name not in modules:
        leaves = [n for n, m in modules.items() if n and not list(m.children())]
        raise ArchlabError(f"--set: no layer {layer_name!r}; layers: {', '.join(leaves)}")
    old = modules[layer_name]
    args = _constructor_args(old)
    if attr not in args:
        raise ArchlabError(
            f"--set: {layer_name} ({type(old).__name__}) has no argument {attr!r}; "
            f"it has: {', '.join(args)}"
        )
    args[attr] = _parse_value(value_text.strip())
    try:
        new = type(old)(**args)
    except Exception as exc:
        raise ArchlabError(
            f"--set {target}={value_text}: {type(old).__name__} rejects it: {exc}"
        ) from exc
    new.train(old.training)
    parent_name, _, child = layer_name.rpartition(".")
    setattr(modules[parent_name] if parent_name else model, child, new)
    return model
