"""Writing a file so that readers see the old version or the new one, never half of one.

The temporary file is created fresh (``O_CREAT | O_EXCL``, which never follows a link) and
renamed over the target (a rename replaces a link, never writes through it): a symbolic
link planted where archlab writes cannot turn a write into one elsewhere.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from archlab.errors import ArchlabError


def partial_path(path: Path, pid: int | None = None) -> Path:
    """The temporary sibling a process writes ``path`` into: ``.NAME.PID.partial``."""
    return path.with_name(f".{path.name}.{os.getpid() if pid is None else pid}.partial")


def refuse_link(path: Path) -> None:
    """One line (exit 1) when ``path``, a file archlab writes, is a symbolic link."""
    if path.is_symlink():
        raise ArchlabError(
            f"{path} is a symbolic link where archlab keeps its own file; archlab never "
            "writes through a link: remove it",
            1,
        )


def no_follow(path: str, flags: int) -> int:
    """An ``opener`` for :func:`open` that refuses to follow a link at ``path`` (ELOOP)."""
    return os.open(path, flags | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0), 0o666)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """A new, empty temporary sibling of ``path`` to write into; renamed over ``path`` when
    the block succeeds, deleted when it fails (the previous ``path`` is then left as it
    was). A link where the temporary file goes is refused with one line."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = partial_path(path)
    refuse_link(partial)
    with contextlib.suppress(FileNotFoundError):  # this process's own leftover
        partial.unlink()
    try:
        open(partial, "xb").close()  # O_EXCL: fails on a link planted since, never follows it
    except FileExistsError:
        refuse_link(partial)
        raise
    try:
        yield partial
        try:
            os.replace(partial, path)
        except OSError as exc:  # name the file the user knows, not the temporary one
            raise type(exc)(exc.errno, exc.strerror, os.fspath(path)) from exc
    finally:
        if not partial.is_symlink():
            partial.unlink(missing_ok=True)


def remove_stale_partials(folder: Path) -> list[Path]:
    """Remove the ``.NAME.PID.partial`` files in ``folder`` whose process is gone: what a
    kill -9 in the middle of an atomic write leaves behind. Returns those removed."""
    removed = []
    for partial in Path(folder).glob(".*.partial"):
        pid = partial.name.rsplit(".", 2)[-2]
        if pid.isdigit() and not _alive(int(pid)):
            partial.unlink(missing_ok=True)  # a link is removed, never followed
            removed.append(partial)
    return removed


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # exists, owned by someone else
    return True
