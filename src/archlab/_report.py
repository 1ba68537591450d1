"""What every archlab report can do: print, render in Jupyter, plot, save, export.

A report is the computed answer to one question (a trace, a parameter count, a trained
run, an explanation, a confusion matrix...). It keeps the numbers; drawing is a separate
step, as in scikit-learn's display objects:

- ``str(report)``: the terminal text (tables and paragraphs, from ``_parts``);
- ``report.plot(ax=None)``: draws it and returns the matplotlib ``Figure``. A report with
  one picture draws on ``ax``; a report of several panels draws its whole figure when
  ``ax`` is None and its main panel on ``ax`` when one is given (each says which);
- ``report.save(path)``: ``.png``/``.svg``/``.pdf`` the picture, ``.json`` the data,
  ``.txt`` the text, ``.html`` the Jupyter rendering; written atomically;
- ``report.to_dict()`` / ``report.to_json()``: the numbers, JSON-ready (tensors become
  lists);
- in Jupyter the report renders itself: its tables as HTML, and its picture below them
  where ``_shows_figure`` says the picture is what people would rather look at;
- ``repr(report)`` (what a terminal, ``nbconvert --to script`` and a notebook's
  ``text/plain`` show) is a one-line summary: tensors by their shape, long lists by their
  length, never a dataclass dump of whole tensors.
"""

from __future__ import annotations

import base64
import dataclasses
import html
import io
import json
import math
import os
from pathlib import Path
from typing import Any

from archlab._table import Table, Tabular
from archlab._text import plural
from archlab.errors import ArchlabError, cannot_write

FIGURE_SUFFIXES = (".png", ".svg", ".pdf")
SUFFIXES = (*FIGURE_SUFFIXES, ".json", ".txt", ".html")


def jsonable(value: Any) -> Any:
    """``value`` with tensors, arrays, paths, tuples and dataclasses made JSON-ready."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        if hasattr(value, "to_dict") and not isinstance(value, Report):
            return jsonable(value.to_dict())
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if hasattr(value, "tolist") and callable(value.tolist):  # torch tensors, numpy arrays
        return jsonable(value.tolist())
    if hasattr(value, "state_dict"):  # a model: its class name, not its weights
        return type(value).__name__
    return value


def figure_html(fig, alt: str) -> str:
    """``fig`` as an inline PNG ``<img>`` (a notebook keeps it in the page), then closed."""
    from archlab.viz import close_figure

    buffer = io.BytesIO()
    try:
        fig.savefig(buffer, format="png", dpi=96)
    finally:
        close_figure(fig)
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    alt = html.escape(alt)
    return f'<img alt="{alt}" style="max-width:100%" src="data:image/png;base64,{data}">'


_REPR_MOST = 300  # characters of a report's repr: a summary, not its data


def summary(value: Any, depth: int = 0) -> str:
    """A short text for one field of a report: a tensor or array by its shape, a long
    list or dict by its length, a long string cut, a model by its class name.

    Example:

        >>> import torch
        >>> summary(torch.zeros(16, 28, 28)), summary(list(range(100))), summary("cnn")
        ('tensor(16×28×28)', '[100 items]', "'cnn'")
    """
    if hasattr(value, "shape") and hasattr(value, "dtype"):
        kind = "tensor" if type(value).__module__.startswith("torch") else "array"
        return f"{kind}({'×'.join(str(n) for n in value.shape)})"
    if isinstance(value, Report):
        return f"<{type(value).__name__}>"
    if hasattr(value, "state_dict"):  # a model
        return f"<{type(value).__name__}>"
    if isinstance(value, str):
        return repr(value if len(value) <= 60 else value[:57] + "...")
    if isinstance(value, Path):
        return repr(str(value))
    if isinstance(value, dict):
        if depth or len(value) > 6:
            return f"{{{len(value)} keys}}"
        return "{" + ", ".join(f"{k!r}: {summary(v, 1)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        numbers = all(
            isinstance(v, int | float)
            or (isinstance(v, tuple) and all(isinstance(w, int | float) for w in v))
            for v in value
        )
        if not depth and numbers and len(repr(value)) <= 40:
            return repr(value)  # a few numbers, or pairs of them: a field's box, a grid
        plain = all(v is None or isinstance(v, str | int | float | bool) for v in value)
        if depth or len(value) > 6 or not plain:
            return f"[{plural(len(value), 'item')}]"
        inner = ", ".join(summary(v, 1) for v in value)
        if len(inner) > 60:  # a few long sentences: their number
            return f"[{plural(len(value), 'item')}]"
        return f"[{inner}]" if isinstance(value, list) else f"({inner})"
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return f"<{type(value).__name__}>"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def summary_repr(report: Any) -> str:
    """``<archlab.Explanation model='cnn', index=42, image=tensor(28×28), ...>``: each field
    in a few characters (:func:`summary`), the whole under a few hundred; what every
    report's and table's ``repr`` is (see :class:`~archlab._table.Tabular`)."""
    if dataclasses.is_dataclass(report):
        names = [f.name for f in dataclasses.fields(report) if f.repr]
    else:
        names = [k for k in vars(report) if not k.startswith("_")]
    head = f"<archlab.{type(report).__name__}"
    parts: list[str] = []
    for name in names:
        part = f"{name}={summary(getattr(report, name, None))}"
        if len(head) + sum(len(p) + 2 for p in parts) + len(part) > _REPR_MOST:
            parts.append("...")
            break
        parts.append(part)
    return f"{head} {', '.join(parts)}>" if parts else f"{head}>"


class Report(Tabular):
    """The base of every archlab report (see the module's docstring)."""

    _shows_figure = False  # Jupyter: draw the picture under the tables

    def plot(self, ax=None):
        """Draw the report and return the ``Figure`` (see each report for its panels)."""
        raise ArchlabError(f"{type(self).__name__} has no picture; print it instead")

    def to_dict(self) -> dict:
        """The report's numbers as a JSON-ready dict."""
        return jsonable(self)

    def to_json(self, indent: int | None = 1) -> str:
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False)

    def save(self, path: str | os.PathLike) -> Path:
        """Write the report in the format its suffix names (.png, .svg, .pdf, .json, .txt,
        .html), atomically; returns the path."""
        from archlab._atomic import atomic_path

        path = Path(path)
        suffix = path.suffix.lower()
        if suffix not in SUFFIXES:
            raise ArchlabError(f"{path}: a report is saved as {', '.join(SUFFIXES)}")
        try:
            if suffix in FIGURE_SUFFIXES:
                from archlab.viz import save_figure

                return save_figure(self.plot(), path)
            text = {
                ".json": self.to_json,
                ".txt": lambda: str(self) + "\n",
                ".html": lambda: f"<!doctype html><meta charset='utf-8'>{self._repr_html_()}",
            }[suffix]()
            with atomic_path(path) as partial:
                partial.write_text(text, encoding="utf-8")
        except OSError as exc:
            raise cannot_write(path, exc) from exc
        return path

    def _figure_html(self) -> str:
        return figure_html(self.plot(), type(self).__name__)

    def _repr_html_(self) -> str:
        text = super()._repr_html_()
        return text + self._figure_html() if self._shows_figure else text


__all__ = ["Report", "Table", "jsonable", "summary", "summary_repr"]
