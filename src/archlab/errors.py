"""The one exception type a user mistake turns into."""

from __future__ import annotations

import errno
import os


class ArchlabError(Exception):
    """A problem the user can fix; the CLI prints it as one line and exits non-zero.

    Args:
        message: one line saying what is wrong and what to do.
        exit_code: the CLI's exit status. Default: 2 (bad input).

    Example::

        >>> try:
        ...     archlab.create_model("resnet50")
        ... except archlab.ArchlabError as exc:
        ...     print(exc.exit_code, str(exc).split(";")[0])
        2 unknown model 'resnet50'
    """

    def __init__(self, message: str, exit_code: int = 2, cli_message: str | None = None) -> None:
        super().__init__(message)
        self.exit_code = exit_code
        # the same line for the command line, a fix written as its flags (--set, --input)
        self.cli_message = cli_message or message


def os_reason(exc: OSError) -> str:
    """Why an ``OSError`` happened, in a few lower-case words (``no space left on device``,
    ``permission denied``): the one wording every message about the machine uses.

    Example::

        >>> archlab.errors.os_reason(PermissionError(13, "Permission denied"))
        'permission denied'
    """
    if exc.errno == errno.ENOSPC:
        return "no space left on device"
    return (exc.strerror or str(exc) or type(exc).__name__).lower()


def cannot_write(path: str | os.PathLike, exc: OSError) -> ArchlabError:
    """``cannot write PATH: REASON`` (exit 1: the machine refused, not the user's input)."""
    return ArchlabError(f"cannot write {os.fspath(path)}: {os_reason(exc)}", 1)
