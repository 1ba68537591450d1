"""Turn a model spec (a name, ``file.py:Class`` or ``package.module:Class``) into a model."""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import sys
from pathlib import Path

from torch import nn

from archlab.errors import ArchlabError

DEFAULT_INPUT_SHAPE = (1, 28, 28)


def _import_source(source: str):
    if source.endswith(".py") or "/" in source or "\\" in source:
        path = Path(source)
        if not path.is_file():
            raise ArchlabError(f"no such file: {source}")
        name = f"_archlab_user_{path.stem}"
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise ArchlabError(f"cannot import {source} as Python")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        try:
            spec.loader.exec_module(module)
        except Exception as exc:
            raise ArchlabError(f"importing {source} failed: {type(exc).__name__}: {exc}") from exc
        return module
    try:
        return importlib.import_module(source)
    except ImportError as exc:
        raise ArchlabError(f"cannot import module {source!r}: {exc}") from exc


def _load_class(spec: str) -> type[nn.Module]:
    source, _, class_name = spec.rpartition(":")
    if not source or not class_name:
        raise ArchlabError(
            f"model {spec!r}: expected path/to/file.py:ClassName or package.module:ClassName"
        )
    module = _import_source(source)
    cls = getattr(module, class_name, None)
    if cls is None:
        found = sorted(
            n
            for n, v in vars(module).items()
            if isinstance(v, type) and issubclass(v, nn.Module) and v.__module__ == module.__name__
        )
        hint = f"; it defines: {', '.join(found)}" if found else ""
        raise ArchlabError(f"{source} has no class {class_name!r}{hint}")
    if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
        raise ArchlabError(f"{spec} is not an nn.Module subclass")
    return cls


def load_model(spec: str | nn.Module) -> nn.Module:
    """A model from a registered name, ``path/to/file.py:Class`` or ``package.module:Class``.

    A class is constructed without arguments. The returned model carries
    ``input_shape`` (C, H, W): the registry's, the class's own ``input_shape``
    attribute, or (1, 28, 28).

    Args:
        spec: the name or ``source:Class`` string; an ``nn.Module`` is returned as is.

    Example::

        >>> model = archlab.load_model("path/to/my_net.py:MyNet")  # doctest: +SKIP
    """
    if isinstance(spec, nn.Module):
        return spec
    if ":" not in spec:
        from archlab.models import create_model

        return create_model(spec)
    cls = _load_class(spec)
    required = [
        p.name
        for p in list(inspect.signature(cls.__init__).parameters.values())[1:]
        if p.default is p.empty and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    ]
    if required:
        raise ArchlabError(
            f"{cls.__name__} needs constructor arguments ({', '.join(required)}); archlab builds "
            "models without arguments: give them defaults or wrap the model in a class that does"
        )
    try:
        model = cls()
    except Exception as exc:
        raise ArchlabError(
            f"building {cls.__name__}() failed: {type(exc).__name__}: {exc}"
        ) from exc
    if not hasattr(model, "input_shape"):
        model.input_shape = DEFAULT_INPUT_SHAPE
    return model


def model_name(spec: str | nn.Module) -> str:
    """A short display name: the registry name, the class name, or the module's type."""
    if isinstance(spec, nn.Module):
        return type(spec).__name__
    return spec.rpartition(":")[2] or spec
