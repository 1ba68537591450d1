"""Commands archlab prints for a user to paste: quoted for the shell, or not printed.

A suggestion is built from data archlab does not control (a run name read from a
checkpoint, a folder the user named), so every word is quoted with :func:`shlex.quote`:
pasted into a POSIX shell, it runs archlab with exactly those words and nothing else. A
word that no single pasted line can carry (a newline, a control character) makes the
whole suggestion unprintable: the caller says so instead.

Every ``archlab ...`` a message advises is built by :func:`archlab_command`, which keeps
the runs folder the user named (``train --out``, the others' ``--runs``) and refuses an
option the command does not have. A model spec read from a checkpoint is code (archlab
would import the file it names, or call the function), so it is never put into a command:
:func:`recorded_spec_text` shows it as data, with a warning.
"""

from __future__ import annotations

import functools
import os
import shlex
from pathlib import Path


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


def runs_flag(command: str) -> str:
    """The option that names the runs folder: ``train`` writes one (``--out``), every
    other command reads one (``--runs``)."""
    return "--out" if command == "train" else "--runs"


@functools.cache
def command_options(command: str) -> frozenset[str]:
    """The options ``archlab COMMAND`` accepts, read from its own parser."""
    import argparse
    import importlib

    parser = argparse.ArgumentParser(add_help=False)
    importlib.import_module(f"archlab.commands.{command.replace('-', '_')}").add_arguments(parser)
    return frozenset(o for action in parser._actions for o in action.option_strings)


def archlab_command(
    command: str, *words: str | os.PathLike, runs: str | os.PathLike | None = None
) -> str | None:
    """``archlab COMMAND WORDS...`` quoted word by word, with the runs folder when it is
    not the default one; None when a word cannot be pasted (see :func:`shell_command`).

    Args:
        command: the subcommand (``"train"``).
        words: its arguments and options; every option must be one the command has.
        runs: the runs folder the advice is about. Default: the default folder.

    Returns:
        One line to paste, or None.

    Example:

        >>> print(archlab_command("train", "cnn", "--watch", runs="my runs"))
        archlab train cnn --watch --out 'my runs'
        >>> print(archlab_command("dynamics", "x$(touch PWNED)", runs="runs"))
        archlab dynamics 'x$(touch PWNED)'
    """
    extra = []
    if runs is not None and Path(runs) != Path("runs"):
        extra = [runs_flag(command), runs]
    known = command_options(command)
    wrong = [w for w in map(os.fspath, words) if w.startswith("--") and w not in known]
    if wrong:  # a hint that the command would refuse is archlab's bug, not the user's
        raise AssertionError(f"archlab {command} has no option {wrong[0]}")
    return shell_command("archlab", command, *words, *extra)


def recorded_spec_text(spec: str) -> str:
    """A model spec read from a checkpoint, shown as data the user should read before
    naming it (never as a command: naming a spec imports or calls the code it points at).

    Example:

        >>> print(recorded_spec_text("os:system(command='ls')").split(" (the")[0])
        "os:system(command='ls')"
        >>> print(recorded_spec_text("net.py:Net\\x1b[2J").split(" (the")[0])
        'net.py:Net\\x1b[2J'
    """
    return (
        f"{spec!r} (the spec its checkpoint records: it names code that archlab would "
        "import and run, so read that code before you name it as the model)"
    )
