"""Range checks for numeric options, in one place: the library raises them naming the
Python argument (``eps=nan``), the CLI shows the same check naming its flag (``--eps nan``).

Example:

    >>> archlab._bounds.check_int("steps", 10, 1, 1000)
    10
    >>> try:
    ...     archlab._bounds.check_int("pgd_steps", 0, 1, 1000)
    ... except archlab.ArchlabError as exc:
    ...     print(exc.cli_message)
    --pgd-steps 0: give a whole number from 1 to 1000
"""

from __future__ import annotations

import math
import numbers

from archlab.errors import ArchlabError

# 2**63 − 1: the largest seed torch.manual_seed and torch.Generator accept everywhere
MAX_SEED = 2**63 - 1


def _fail(name: str, value: object, wanted: str) -> ArchlabError:
    flag = "--" + name.replace("_", "-")
    return ArchlabError(f"{name}={value!r}: {wanted}", cli_message=f"{flag} {value}: {wanted}")


def check_int(name: str, value: object, low: int, high: int) -> int:
    """``value`` as an int in ``[low, high]``, else one :class:`ArchlabError`.

    Args:
        name: the Python argument's name (the CLI's flag is derived from it).
        value: what the user gave (a bool or a float is refused).
        low, high: the bounds, both included.

    Returns:
        The value as an ``int``.
    """
    wanted = f"give a whole number from {low} to {high}"
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise _fail(name, value, wanted)
    if not low <= int(value) <= high:
        raise _fail(name, value, wanted)
    return int(value)


def check_float(
    name: str, value: object, low: float, high: float, *, low_open: bool = False
) -> float:
    """``value`` as a finite float in ``[low, high]`` (``(low, high]`` with ``low_open``),
    else one :class:`ArchlabError` (NaN and infinities are refused).

    Args:
        name: the Python argument's name.
        value: what the user gave.
        low, high: the bounds.
        low_open: exclude ``low`` itself. Default: False.

    Returns:
        The value as a ``float``.
    """
    wanted = f"give a number {'>' if low_open else '≥'} {low:g} and ≤ {high:g}"
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise _fail(name, value, wanted)
    v = float(value)
    if not math.isfinite(v) or v > high or v < low or (low_open and v == low):
        raise _fail(name, value, wanted)
    return v


def check_seed(value: object, name: str = "seed") -> int:
    """A seed torch accepts: a whole number from 0 to 2**63 − 1."""
    return check_int(name, value, 0, MAX_SEED)
