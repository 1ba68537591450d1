"""The registry: the only list of model names (as in timm's ``_registry.py``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from archlab.errors import ArchlabError


@dataclass(frozen=True)
class _Entry:
    builder: Callable[[], nn.Module]
    description: str
    input_shape: tuple[int, int, int]


_MODELS: dict[str, _Entry] = {}


def register_model(
    name: str, description: str, input_shape: tuple[int, int, int] = (1, 28, 28)
) -> Callable[[Callable[[], nn.Module]], Callable[[], nn.Module]]:
    """Register a builder under ``name``.

    Args:
        name: the name users type (``archlab shapes NAME``).
        description: one line for ``archlab models``.
        input_shape: the (C, H, W) the model is built for. Default: (1, 28, 28).

    Example::

        @register_model("tiny", "a one-layer model")
        def tiny() -> nn.Module:
            return nn.Sequential(nn.Flatten(), nn.Linear(784, 10))
    """

    def decorate(builder: Callable[[], nn.Module]) -> Callable[[], nn.Module]:
        if name in _MODELS:
            raise ValueError(f"model {name!r} is already registered")
        _MODELS[name] = _Entry(builder, description, input_shape)
        return builder

    return decorate


def _entry(name: str) -> _Entry:
    try:
        return _MODELS[name]
    except KeyError:
        known = ", ".join(list_models())
        raise ArchlabError(f"unknown model {name!r}; known models: {known}") from None


def create_model(name: str) -> nn.Module:
    """Build a fresh, randomly initialised model by its registered name.

    Args:
        name: a name from :func:`list_models`, e.g. ``"cnn"``.

    Returns:
        The ``nn.Module``; its ``input_shape`` attribute gives the (C, H, W) it expects.

    Example::

        >>> model = archlab.create_model("cnn")  # doctest: +SKIP
    """
    entry = _entry(name)
    model = entry.builder()
    model.input_shape = entry.input_shape
    return model


def list_models() -> list[str]:
    """The registered model names, sorted. Example: ``archlab.list_models() == ['cnn', 'dnn']``."""
    return sorted(_MODELS)


def model_description(name: str) -> str:
    """The one-line description of a registered model.

    Example::

        >>> archlab.model_description("dnn")
    """
    return _entry(name).description


def model_input_shape(name: str) -> tuple[int, int, int]:
    """The (C, H, W) input a registered model is built for."""
    return _entry(name).input_shape
