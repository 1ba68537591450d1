"""The one exception type a user mistake turns into."""

from __future__ import annotations


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
