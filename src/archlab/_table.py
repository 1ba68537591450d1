"""Plain text and HTML tables for the reports (terminal and Jupyter)."""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass

Row = Sequence[object]


def _is_number(text: str) -> bool:
    return text.replace(",", "").replace(".", "").replace("%", "").replace("-", "").isdigit()


def text_table(headers: Sequence[str], rows: Sequence[Row]) -> str:
    """Columns padded to their widest cell; numbers right-aligned."""
    cells = [[str(c) for c in headers]] + [["" if c is None else str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    numeric = [all(_is_number(r[i]) or not r[i] for r in cells[1:]) for i in range(len(headers))]

    def line(row: list[str]) -> str:
        padded = [
            c.rjust(w) if num else c.ljust(w)
            for c, w, num in zip(row, widths, numeric, strict=True)
        ]
        return "  ".join(padded).rstrip()

    rule = "  ".join("─" * w for w in widths)
    return "\n".join([line(cells[0]), rule, *(line(r) for r in cells[1:])])


def html_table(headers: Sequence[str], rows: Sequence[Row], caption: str | None = None) -> str:
    """A small HTML table for ``_repr_html_``."""
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in headers)
    body = "".join(
        "<tr>"
        + "".join(f"<td>{html.escape('' if c is None else str(c))}</td>" for c in r)
        + "</tr>"
        for r in rows
    )
    cap = f"<caption>{html.escape(caption)}</caption>" if caption else ""
    return f"<table>{cap}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


@dataclass
class Table:
    """Headers and rows, with an optional caption: one table of a report."""

    headers: Sequence[str]
    rows: Sequence[Row]
    caption: str | None = None

    def text(self) -> str:
        table = text_table(self.headers, self.rows)
        return f"{self.caption}\n\n{table}" if self.caption else table

    def html(self) -> str:
        return html_table(self.headers, self.rows, self.caption)


class Tabular:
    """A report made of tables and paragraphs: ``str()`` for the terminal and
    ``_repr_html_`` for Jupyter, both from the one list that ``_parts`` returns; ``repr``
    a one-line summary (tensors by their shape), never a dump of the data."""

    def __init_subclass__(cls, **kwargs) -> None:
        # @dataclass keeps a __repr__ the class already has: a subclass that writes none
        # gets the summary, not the dataclass's dump of its fields (whole tensors)
        super().__init_subclass__(**kwargs)
        if "__repr__" not in cls.__dict__:
            cls.__repr__ = Tabular.__repr__

    def __repr__(self) -> str:
        from archlab._report import summary_repr

        return summary_repr(self)

    def _parts(self) -> list[Table | str]:
        raise NotImplementedError

    def __str__(self) -> str:
        return "\n\n".join(p.text() if isinstance(p, Table) else p for p in self._parts() if p)

    def _repr_html_(self) -> str:
        return "".join(
            p.html() if isinstance(p, Table) else f"<pre>{html.escape(p)}</pre>"
            for p in self._parts()
            if p
        )
