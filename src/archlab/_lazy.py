"""Names a package re-exports, imported only when first used (``archlab --help`` and
``archlab models`` must not pay for torch, matplotlib or captum).

A re-exported function is the public door, so it comes with its arguments checked
(:func:`archlab._check.checked`): ``archlab.create_model("cnn", "layer1.0.padding=1")``
is one error naming ``overrides``, not a what-if read a character at a time. The module's
own function stays as written (``inspect.unwrap`` gives it back).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(
    package: dict[str, Any], exports: Mapping[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for a package whose public name ``n`` lives in the
    module ``exports[n]``; the value is cached in the package once imported."""

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package['__name__']!r} has no attribute {name!r}")
        from archlab._check import checked

        value = checked(getattr(importlib.import_module(module), name))
        package[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(set(package.get("__all__", ())) | set(exports))

    return __getattr__, __dir__
