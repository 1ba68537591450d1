"""One writer at a time, and SIGTERM as Ctrl-C: what every command that writes shares.

A run folder (``archlab train``) and an explorer site (``archlab explore``) are each
guarded by a lock file beside what they write, held with ``flock`` for the whole write;
the lock file is opened with ``O_NOFOLLOW``, so a link planted there is refused, never
followed. The holder writes its name into the file, so a second writer can say who holds it.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

from archlab._atomic import no_follow, refuse_link
from archlab.errors import ArchlabError, os_reason


@contextlib.contextmanager
def held_lock(
    lock_file: Path,
    holder: str,
    cannot_open: Callable[[str], str],
    busy: Callable[[str], ArchlabError],
) -> Iterator[None]:
    """Hold ``lock_file`` exclusively for the block, or refuse at once.

    Args:
        lock_file: the lock's path (created if missing; a link there is refused).
        holder: what this process writes into it, e.g. ``"archlab train (pid 12)"``.
        cannot_open: the error's text when the file cannot be opened, from the OS reason.
        busy: the error to raise when another process holds it, from that holder's text.
    """
    try:  # O_NOFOLLOW: a link planted here is refused, never followed
        handle = open(lock_file, "a+", opener=no_follow)  # noqa: SIM115 (held for the block)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            refuse_link(lock_file)
        raise ArchlabError(cannot_open(os_reason(exc)), 1) from exc
    try:
        try:
            import fcntl
        except ImportError:  # Windows: no advisory locks; nothing is guarded there
            fcntl = None
        if fcntl is not None:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                handle.seek(0)
                raise busy(handle.read().strip() or "another process") from None
        handle.seek(0)
        handle.truncate()
        handle.write(holder)
        handle.flush()
        yield
    finally:
        handle.close()


@contextlib.contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """SIGTERM (``kill``, a job scheduler, a closing terminal) stops the block the way
    Ctrl-C does: the ``finally`` blocks run, so a file half-written (``.NAME.PID.partial``)
    or a staging folder is removed and the previous one stays; Python's default would end
    the process where it stands. Only the main thread may set a handler: elsewhere the
    block runs as it is."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(_signum, _frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def pid_holder(command: str) -> str:
    """What a lock holder writes: ``archlab train (pid 12)``."""
    return f"{command} (pid {os.getpid()})"
