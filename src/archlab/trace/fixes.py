"""A fix as structure: which layer or operation, which argument, which value.

The tracer proposes a :class:`Fix` where a chain does not fit; :func:`apply_fix` makes it
on a copy of the model (a ``set`` is a call of :func:`~archlab.models.whatif.set_argument`,
never a string edit), so that :func:`archlab.trace.shapes.trace_shapes` can try it before
it shows it. How a fix reads (in words, or as ``--set``/``--input`` flags for the command
line) is :mod:`archlab.trace._words`' job.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass

from torch import nn

from archlab.models.whatif import replace_layer, set_argument

KINDS = ("set", "replace", "input", "dtype", "code")


@dataclass(frozen=True)
class Fix:
    """One change that makes the model fit, with any further changes it needs (``also``).

    ``kind`` is one of:

    - ``"set"``: rebuild ``layer`` with ``argument=value`` (``--set fc.in_features=2352``);
    - ``"replace"``: put ``nn.<argument>(*value)`` in ``layer``'s place;
    - ``"input"``: trace a ``value``-shaped image instead (``--input 3,28,28``);
    - ``"dtype"``: feed ``value`` (``"long"``) tensors;
    - ``"code"``: a change to ``forward``, in words (``text``); ``edit`` is how the tracer
      makes it on a trial run: ``("op", call, change)`` for the ``call``-th operation, or
      ``("before", layer, "flatten" | "transpose")`` on a layer's input.

    ``text`` says the change as a student would write it (``nn.Linear(2352, 10)``).

    Example::

        >>> fix = Fix("set", layer="fc1", argument="in_features", value=3136)
        >>> str(fix)
        'set fc1.in_features=3136'
    """

    kind: str
    layer: str | None = None
    argument: str | None = None
    value: object = None
    text: str | None = None
    edit: tuple | None = None
    also: tuple[Fix, ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"Fix kind {self.kind!r}: one of {', '.join(KINDS)}")

    def steps(self) -> list[Fix]:
        """This change and every one that goes with it, in the order they are made."""
        out = [Fix(self.kind, self.layer, self.argument, self.value, self.text, self.edit)]
        for other in self.also:
            out += other.steps()
        return out

    def then(self, other: Fix) -> Fix:
        """This fix followed by ``other`` (both needed)."""
        return Fix(
            self.kind,
            self.layer,
            self.argument,
            self.value,
            self.text,
            self.edit,
            (*self.also, other),
        )

    def __str__(self) -> str:
        from archlab.trace._words import fix_text

        return fix_text(self)


def _depthwise(m: nn.Module) -> bool:
    return (
        isinstance(m, nn.modules.conv._ConvNd)
        and m.groups > 1
        and m.groups == m.in_channels == m.out_channels
    )


def kind_changed(model: nn.Module, trial: nn.Module) -> str | None:
    """Which depthwise convolution of ``model`` a fix made into another kind, in words
    (``blocks.1.0 would no longer be depthwise (...)``), or None when all stay depthwise.

    A depthwise convolution (``groups == in_channels == out_channels``) given
    ``in_channels=64`` with ``groups=32`` still builds, as a grouped convolution: the shapes
    fit, the architecture is another. Such a fix is not shown; the change belongs upstream.
    (A grouped convolution keeps its groups through any fix: ``set`` changes one argument
    and the constructor refuses sizes the groups do not divide.)
    """
    after = dict(trial.named_modules())
    for name, m in model.named_modules():
        new = after.get(name)
        if _depthwise(m) and new is not None and not _depthwise(new):
            shape = f"groups {new.groups}, in {new.in_channels}, out {new.out_channels}"
            return f"{name} would no longer be depthwise ({shape}; depthwise is groups = in = out)"
    return None


@dataclass
class Trial:
    """What a fix changes for a trial trace: the model copy, the input, the dtype, edits."""

    model: nn.Module
    shape: tuple[int, ...]
    dtype: object
    edits: tuple[tuple, ...] = ()


def apply_fix(model: nn.Module, fix: Fix, shape: Sequence[int], dtype: object) -> Trial:
    """``fix`` made on a deep copy of ``model`` (the caller's is never changed).

    Raises:
        ArchlabError: a layer's constructor refuses the value (``in_channels=16`` for a
            convolution with ``groups=32``): the fix cannot be made.
    """
    trial = Trial(copy.deepcopy(model), tuple(shape), dtype)
    for step in fix.steps():
        if step.kind == "set":
            set_argument(trial.model, step.layer, step.argument, step.value)
        elif step.kind == "replace":
            replace_layer(trial.model, step.layer, getattr(nn, step.argument)(*step.value))
        elif step.kind == "input":
            trial.shape = tuple(step.value)
        elif step.kind == "dtype":
            trial.dtype = step.value
        elif step.edit is not None:
            trial.edits = (*trial.edits, step.edit)
    return trial
