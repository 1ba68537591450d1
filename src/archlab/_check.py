"""Arguments of the public functions checked against their annotations, before any work.

A notebook that passes ``"layer1.0.padding=1"`` where a list of what-ifs goes, an int
where a spec goes, ``None`` or a module, gets one :class:`~archlab.ArchlabError` naming
the argument, instead of a string read a character at a time or an internal
``TypeError``. The rules are read from each function's own signature (its annotations,
as written), so a new public function is checked without a new line here; the few
parameters left unannotated are described in :data:`UNANNOTATED`.

An annotation is read as a union (``|``) of: ``None``, ``str``, ``int`` (not ``bool``),
``float`` (an int too), ``bool``, ``os.PathLike``, ``Sequence[X]`` / ``list[X]`` /
``tuple[X, ...]`` (a sequence, never a string, whose items are ``X``), ``Mapping`` /
``dict``, ``Callable``, or a class name the function's module can name
(``nn.Module``, ``ModelSpec``, ``Run``). A name it cannot resolve, ``object`` or ``Any``
accepts anything: the checker never refuses a value the function could take.
"""

from __future__ import annotations

import functools
import inspect
import numbers
import os
import sys
import types
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from archlab.errors import ArchlabError

# parameters the public functions leave unannotated: what they take
UNANNOTATED = {
    "model": "str | ModelSpec | nn.Module | Run",
    "run": "Run | str | ModelSpec",
    "data": "FashionMNIST | None",
    "input_shape": "Sequence[int] | None",
}

# class names an annotation may use, where the function's module does not import them
_CLASSES = {
    "ModelSpec": ("archlab.models.spec", "ModelSpec"),
    "Run": ("archlab.training.run", "Run"),
    "FashionMNIST": ("archlab.training.data", "FashionMNIST"),
    "nn.Module": ("torch.nn", "Module"),
    "torch.nn.Module": ("torch.nn", "Module"),
    "torch.Tensor": ("torch", "Tensor"),
    "Tensor": ("torch", "Tensor"),
    "torch.dtype": ("torch", "dtype"),
    "Path": ("pathlib", "Path"),
}

_WORDS = {"str": "a str", "int": "an int", "float": "a number", "bool": "True or False"}


class _Rule:
    """One annotation, ready to test values: ``accepts(value)`` and its words."""

    def __init__(self, accepts: Callable[[Any], bool], words: str) -> None:
        self.accepts = accepts
        self.words = words


_ANY = _Rule(lambda value: True, "anything")


def _split(text: str, sep: str) -> list[str]:
    """``text`` split at ``sep`` outside brackets."""
    parts, depth, start = [], 0, 0
    for i, char in enumerate(text):
        if char in "[(":
            depth += 1
        elif char in "])":
            depth -= 1
        elif char == sep and depth == 0:
            parts.append(text[start:i].strip())
            start = i + 1
    parts.append(text[start:].strip())
    return [p for p in parts if p]


def _is_int(value: object) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_real(value: object) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _is_sequence(value: object) -> bool:
    """A list, a tuple, or anything sized and iterable (a numpy array), never a string
    (read a character at a time) or a mapping (read by its keys)."""
    if isinstance(value, (str, bytes, Mapping)):
        return False
    return isinstance(value, Sequence) or (hasattr(value, "__len__") and hasattr(value, "__iter__"))


def _class(name: str, namespace: Mapping[str, Any]) -> type | None:
    """The class ``name`` (``nn.Module``) names in ``namespace``, or in :data:`_CLASSES`."""
    obj: Any = namespace.get(name.split(".")[0], None)
    for attr in name.split(".")[1:]:
        obj = getattr(obj, attr, None)
    if isinstance(obj, type):
        return obj
    where = _CLASSES.get(name)
    if where is not None:
        import importlib

        found = getattr(importlib.import_module(where[0]), where[1], None)
        return found if isinstance(found, type) else None
    return None


def _term(text: str, namespace: Mapping[str, Any]) -> _Rule:
    head, _, rest = text.partition("[")
    inner = rest[:-1] if rest.endswith("]") else ""
    head = head.strip()
    if head in ("object", "Any", "typing.Any"):
        return _ANY
    if head == "None":
        return _Rule(lambda v: v is None, "None")
    if head == "str":
        return _Rule(lambda v: isinstance(v, str), _WORDS["str"])
    if head == "int":
        return _Rule(_is_int, _WORDS["int"])
    if head == "float":
        return _Rule(_is_real, _WORDS["float"])
    if head == "bool":
        return _Rule(lambda v: isinstance(v, bool), _WORDS["bool"])
    if head in ("os.PathLike", "PathLike", "Path"):
        return _Rule(lambda v: isinstance(v, os.PathLike), "a path")
    if head in ("Sequence", "list", "tuple", "collections.abc.Sequence"):
        items = _split(inner, ",")
        fixed = len(items) > 1 and items[1] != "..."  # tuple[int, str]: only its being a sequence
        item = _ANY if not items or fixed else _parse(items[0], namespace)
        words = "a list" + ("" if item is _ANY else f" of {items[0]}")
        return _Rule(lambda v: _is_sequence(v) and all(item.accepts(x) for x in v), words)
    if head in ("Mapping", "dict", "collections.abc.Mapping"):
        return _Rule(lambda v: isinstance(v, Mapping), "a dict")
    if head in ("Callable", "collections.abc.Callable"):
        return _Rule(callable, "a function")
    cls = _class(head, namespace)
    if cls is None:
        return _ANY
    return _Rule(lambda v: isinstance(v, cls), f"a {head.rpartition('.')[2]}")


def _parse(text: str, namespace: Mapping[str, Any]) -> _Rule:
    terms = [_term(t, namespace) for t in _split(text.strip().strip("'\""), "|")]
    if any(t is _ANY for t in terms):
        return _ANY
    words = " or ".join(t.words for t in terms)
    if len(terms) > 2:
        words = ", ".join(t.words for t in terms[:-1]) + f" or {terms[-1].words}"
    return _Rule(lambda v: any(t.accepts(v) for t in terms), words)


def rules(func: Callable) -> dict[str, _Rule]:
    """Each parameter of ``func`` with the rule its annotation (or :data:`UNANNOTATED`)
    gives; ``*args``, ``**kwargs`` and parameters that take anything are left out."""
    namespace = vars(sys.modules.get(func.__module__, types.ModuleType("_")))
    found = {}
    for param in inspect.signature(func).parameters.values():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        annotation = param.annotation
        if annotation is inspect.Parameter.empty:
            annotation = UNANNOTATED.get(param.name)
            if annotation is None:
                continue
        if not isinstance(annotation, str):  # annotations evaluated: use their own words
            annotation = inspect.formatannotation(annotation)
        rule = _parse(annotation, namespace)
        if rule is not _ANY:
            found[param.name] = rule
    return found


def _shown(value: object) -> str:
    if isinstance(value, types.ModuleType):
        return value.__name__
    text = repr(value)
    if "\n" in text:  # a model's repr spans lines: its first line only
        text = text.splitlines()[0] + "..."
    return text if len(text) <= 40 else text[:37] + "..."


def _kind(value: object) -> str:
    if value is None:
        return "None"
    if isinstance(value, types.ModuleType):
        return "a module"
    name = type(value).__name__
    return f"{'an' if name[0] in 'aeiouAEIOU' else 'a'} {name}"


def check_arguments(func: Callable, rules_: Mapping[str, _Rule], bound: inspect.BoundArguments):
    """Raise one :class:`ArchlabError` naming the first argument its rule refuses."""
    for name, value in bound.arguments.items():
        rule = rules_.get(name)
        if rule is not None and not rule.accepts(value):
            hint = ""
            if isinstance(value, str) and rule.words.startswith("a list of str"):
                hint = f" (one item goes in a list: [{value!r}])"
            raise ArchlabError(
                f"{func.__name__}(): {name}={_shown(value)} is {_kind(value)}; "
                f"give {rule.words}{hint}"
            )


def checked(func: Callable) -> Callable:
    """``func``, its arguments checked against its signature on every call (a wrong
    number of arguments, an unknown keyword or a wrong type is one :class:`ArchlabError`).

    Example:

        >>> def scale(factor: int, names: Sequence[str] = ()) -> int:
        ...     return factor
        >>> try:
        ...     checked(scale)(2, "ab")
        ... except ArchlabError as exc:
        ...     print(exc)
        scale(): names='ab' is a str; give a list of str (one item goes in a list: ['ab'])
    """
    if getattr(func, "__archlab_checked__", False) or not inspect.isfunction(func):
        return func
    signature = inspect.signature(func)
    found: dict[str, _Rule] | None = None

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        nonlocal found
        try:
            bound = signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise ArchlabError(f"{func.__name__}(): {exc}") from None
        if found is None:  # read once, on the first call: the annotations' names resolve late
            found = rules(func)
        check_arguments(func, found, bound)
        return func(*args, **kwargs)

    wrapper.__archlab_checked__ = True
    return wrapper
