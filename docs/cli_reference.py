"""Write the CLI reference from archlab's own argparse parser at build time, so the page
can never fall out of step with the options."""

from __future__ import annotations

import argparse
from pathlib import Path

HEADER = """Command-line reference
======================

Generated from ``archlab.cli.build_parser()`` each time the docs are built.

.. code-block:: text

{body}
"""


def _indent(text: str) -> str:
    return "\n".join(f"   {line}" if line else "" for line in text.splitlines())


def render() -> str:
    import os

    from archlab.cli import build_parser

    os.environ["COLUMNS"] = "88"  # argparse wraps to the terminal; the page must not vary
    parser = build_parser()
    parts = [HEADER.format(body=_indent(parser.format_help()))]
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name, sub in subparsers.choices.items():
        title = f"archlab {name}"
        parts.append(
            f"{title}\n{'-' * len(title)}\n\n.. code-block:: text\n\n{_indent(sub.format_help())}\n"
        )
    return "\n".join(parts)


def _write(app) -> None:
    target = Path(app.srcdir) / "cli.rst"
    text = render()
    if not target.exists() or target.read_text(encoding="utf-8") != text:
        target.write_text(text, encoding="utf-8")


def setup(app):
    app.connect("builder-inited", _write)
    return {"parallel_read_safe": True, "version": "1"}
