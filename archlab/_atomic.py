"""Writing a file so that readers see the old version or the new one, never half of one."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path


def partial_path(path: Path, pid: int | None = None) -> Path:
    """The temporary sibling a process writes ``path`` into: ``.NAME.PID.partial``."""
    return path.with_name(f".{path.name}.{os.getpid() if pid is None else pid}.partial")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """A temporary sibling of ``path`` to write into; renamed over ``path`` when the block
    succeeds, deleted when it fails (the previous ``path`` is then left as it was)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = partial_path(path)
    try:
        yield partial
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


def remove_stale_partials(folder: Path) -> list[Path]:
    """Remove the ``.NAME.PID.partial`` files in ``folder`` whose process is gone: what a
    kill -9 in the middle of an atomic write leaves behind. Returns those removed."""
    removed = []
    for partial in Path(folder).glob(".*.partial"):
        pid = partial.name.rsplit(".", 2)[-2]
        if pid.isdigit() and not _alive(int(pid)):
            partial.unlink(missing_ok=True)
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
