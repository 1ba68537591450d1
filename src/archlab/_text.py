"""Words that depend on a number: ``1 epoch``, ``5 epochs``, ``10,000 test images``."""

from __future__ import annotations


def plural(count: int, word: str, many: str | None = None) -> str:
    """``count`` and ``word``, in the plural unless ``count`` is 1 (thousands separated).

    Args:
        count: how many.
        word: the singular, e.g. ``"test image"``.
        many: the plural where it is not ``word + "s"``. Default: ``word + "s"``.

    Returns:
        e.g. ``"1 test image"``, ``"10,000 test images"``.

    Example:

        >>> plural(1, "epoch"), plural(5, "epoch"), plural(10000, "test image")
        ('1 epoch', '5 epochs', '10,000 test images')
        >>> plural(2, "pixel a step", "pixels a step")
        '2 pixels a step'
    """
    return f"{count:,} {word if count == 1 else (many or word + 's')}"
