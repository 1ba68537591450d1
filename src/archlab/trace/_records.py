"""What the tracing engine records: rows, module calls, the failure that stopped a pass.

Plain data, apart from the engine (:mod:`archlab.trace._engine`) that fills it, so that the
views (:mod:`archlab.trace.shapes`), the trials (:mod:`archlab.trace._trial`) and the
mixing check read them without the engine's machinery.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from archlab.trace.fixes import Fix
from archlab.trace.formulas import Shape


@dataclass
class Row:
    """One row as the engine records it; :mod:`archlab.trace.shapes` turns it into a LayerShape."""

    name: str
    type: str
    input: Shape
    output: Shape | None
    formula: str | None
    checked: bool
    inputs: list[int]
    parts: list[Shape] = field(default_factory=list)  # every tensor of a tuple output
    scope: tuple[int, ...] = ()  # the module calls it ran inside (their call ids)
    functional: bool = False
    op: int | None = None  # the operation's call number (an edit's address on a trial run)
    # an operation's function and arguments, each tensor replaced by its shape (receptive
    # fields read a pad's widths, an interpolation's scale and mode, a mean's dims)
    call: tuple | None = None


@dataclass
class ModuleCall:
    """A module's call, for folding rows into blocks (``--depth``)."""

    name: str
    type: str
    depth: int
    inputs: list[int]
    input: Shape
    output: Shape | None = None
    parts: list[Shape] = field(default_factory=list)


@dataclass
class Failure:
    """Where the pass stopped: the layer or operation, its input, why, and a fix to try.

    ``fix`` is a change that may make the model fit, not yet tried; ``hint`` is advice in
    words that no single change makes (``make both branches output the same shape``).
    ``inputs`` are the rows the failing layer or operation read (for looking upstream).
    """

    layer: str
    type: str
    input: Shape
    message: str
    fix: Fix | None = None
    functional: bool = False
    hint: str | None = None
    inputs: tuple[int, ...] = ()
    expected: int | None = None  # the size the layer wanted, where it says one
    op: int | None = None  # the failing operation's call number, where an operation failed


class _Stop(BaseException):
    """Ends the forward pass at the first misfit (BaseException: a model's own
    ``except Exception`` must not swallow it)."""


class _Internal(BaseException):
    """The tracer itself failed: reported as an archlab bug, never as the user's mistake."""


def _tensors(value: object, out: list[torch.Tensor], depth: int = 0) -> list[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        out.append(value)
    elif isinstance(value, (tuple, list)) and depth < 3:
        for v in value:
            _tensors(v, out, depth + 1)
    elif isinstance(value, dict) and depth < 3:
        for v in value.values():
            _tensors(v, out, depth + 1)
    return out


def _shapes_for_tensors(value: object) -> object:
    """``value`` with every tensor in it replaced by its shape (a row keeps no tensor)."""
    if isinstance(value, torch.Tensor):
        return tuple(value.shape)
    if isinstance(value, list):
        return [_shapes_for_tensors(v) for v in value]
    if isinstance(value, tuple):
        return tuple(_shapes_for_tensors(v) for v in value)
    if isinstance(value, dict):
        return {k: _shapes_for_tensors(v) for k, v in value.items()}
    return value


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
