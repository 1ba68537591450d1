"""Commands archlab prints for a user to paste: quoted for the shell, or not printed.

A suggestion is built from data archlab does not control (a spec or a run name read
from a checkpoint, a folder the user named), so every word is quoted with
:func:`shlex.quote`: pasted into a POSIX shell, it runs archlab with exactly those words
and nothing else. A word that no single pasted line can carry (a newline, a control
character) makes the whole suggestion unprintable: the caller says so instead.
"""

from __future__ import annotations

import os
import shlex


def shell_command(*words: str | os.PathLike) -> str | None:
    """``words`` as one line a POSIX shell reads back word for word, or None when a word
    holds a character that has no place on a pasted line.

    Example:

        >>> print(shell_command("archlab", "train", "net.py:Net", "--name", "$(rm -rf ~)"))
        archlab train net.py:Net --name '$(rm -rf ~)'
        >>> shell_command("archlab", "train", "net\\n.py:Net") is None
        True
    """
    text = [os.fspath(w) for w in words]
    if not all(w.isprintable() for w in text):
        return None
    return " ".join(shlex.quote(w) for w in text)
