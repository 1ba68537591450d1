"""The explorer's folder is written as ``train`` writes a run: all of it or none of it.

The new site is built in a staging folder beside ``out`` (``.NAME.PID.partial``) and
swapped into place by one rename, so that ``out`` names the previous site, whole, until
the new one is complete, whatever stops the write (Ctrl-C, SIGTERM, kill -9, a full disk).
On Linux the swap is one ``renameat2(RENAME_EXCHANGE)``; elsewhere two renames, the
previous site kept as ``.NAME.PID.old`` between them and put back by the next write if a
kill fell in between.

``out`` must be missing, empty, or a site archlab wrote (nothing but the page's files and
``data/``): a folder holding anything else is refused, never replaced. A link at ``out``
is refused; nothing is written through a link (the staging folder is new). One writer at
a time: ``.NAME.lock`` beside ``out`` is held with an OS lock, as a run folder's ``.lock``.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

from archlab._atomic import _alive, no_follow, refuse_link
from archlab._exclusive import held_lock, pid_holder, terminate_as_interrupt
from archlab.errors import ArchlabError, os_reason

# what a site holds; a folder with anything else is not archlab's to replace
# (the page's files are static/'s: a site written before a panel was added is still one)
STATIC = Path(__file__).parent / "static"
SITE_ENTRIES = frozenset({"data", *(p.name for p in STATIC.iterdir() if p.name[0] != ".")})
DATA_PREFIX = "ARCHLAB.add("


def is_site(folder: Path) -> bool:
    """True when ``folder`` holds nothing but an explorer site archlab wrote."""
    names = {p.name for p in folder.iterdir()}
    index = folder / "data" / "index.js"
    if not names <= SITE_ENTRIES or index.is_symlink() or not index.is_file():
        return False
    with open(index, "rb", opener=no_follow) as handle:
        return handle.read(len(DATA_PREFIX)) == DATA_PREFIX.encode()


def check_out(out: Path) -> None:
    """Refuse, with one line, an ``out`` that is a link, a file, or a folder that holds
    anything but an explorer site (nothing has been written yet)."""
    refuse_link(out)
    if not out.exists():
        return
    if not out.is_dir():
        raise ArchlabError(f"{out} is a file, not a folder to write the explorer into", 1)
    if any(out.iterdir()) and not is_site(out):
        others = sorted(p.name for p in out.iterdir() if p.name not in SITE_ENTRIES)
        what = f" (such as {others[0]!r})" if others else ""
        raise ArchlabError(
            f"{out} is a folder that is not an explorer site{what}; archlab replaces only a "
            "site it wrote: choose an empty or new folder for the explorer",
            1,
        )


def _aside(out: Path, kind: str, pid: int | None = None) -> Path:
    return out.with_name(f".{out.name}.{os.getpid() if pid is None else pid}.{kind}")


def _lock(out: Path):
    """The site's lock, ``.NAME.lock`` beside ``out``, held as a run folder's is."""
    return held_lock(
        out.with_name(f".{out.name}.lock"),
        pid_holder("archlab explore"),
        lambda reason: f"cannot write {out}: {reason}",
        lambda holder: ArchlabError(
            f"{out} is being written by {holder}; wait for it to finish, or write "
            "the explorer into another folder",
            1,
        ),
    )


def _clean_leftovers(out: Path) -> None:
    """What a killed writer left beside ``out``: its staging folder is removed; a previous
    site it had moved aside (the two-rename swap) is put back when ``out`` is missing."""
    for kind in ("old", "partial"):
        for path in out.parent.glob(f".{out.name}.*.{kind}"):
            pid = path.name[len(out.name) + 2 : -len(kind) - 1]
            if not pid.isdigit() or (_alive(int(pid)) and int(pid) != os.getpid()):
                continue
            if kind == "old" and not os.path.lexists(out) and not path.is_symlink():
                os.replace(path, out)
            elif path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one step (Linux's ``renameat2(RENAME_EXCHANGE)``); False where the
    system or the file system cannot."""
    import ctypes

    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), os.fspath(b))


def _swap_in(staging: Path, out: Path) -> None:
    """Put the complete ``staging`` folder at ``out``; the previous site is removed after."""
    if not os.path.lexists(out):
        os.rename(staging, out)
        return
    old = _aside(out, "old")
    if _exchange(staging, out):
        os.rename(staging, old)  # staging now holds the previous site
    else:
        os.rename(out, old)
        os.rename(staging, out)
    shutil.rmtree(old, ignore_errors=True)


def cannot_write_site(out: Path, exc: OSError) -> ArchlabError:
    """One line for a write of the site the machine refused (a full disk, a permission)."""
    return ArchlabError(
        f"cannot write the explorer {out}: {os_reason(exc)}; the previous one there, if any, "
        "is unchanged",
        1,
    )


@contextlib.contextmanager
def staged_site(out: Path) -> Iterator[Path]:
    """A new, empty staging folder to build the site in; swapped in at ``out`` when the
    block succeeds, removed when it fails (``out`` then still holds the previous site).
    The lock is held for the whole block: take it before the work, so that a second
    writer is refused at once rather than after minutes of computing.

    Args:
        out: the site's folder.

    Returns:
        The staging folder (a context manager yielding it).
    """
    out = Path(os.path.abspath(out))
    if out.parent == out:
        raise ArchlabError(f"{out} cannot be the explorer's folder: choose a folder in it", 1)
    check_out(out)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ArchlabError(f"cannot create the folder {out.parent}: {os_reason(exc)}", 1) from exc
    staging = _aside(out, "partial")
    with _lock(out), terminate_as_interrupt():
        try:
            _clean_leftovers(out)
            check_out(out)  # again under the lock: another writer may have been first
            os.mkdir(staging)
        except OSError as exc:
            raise ArchlabError(f"cannot write {out}: {os_reason(exc)}", 1) from exc
        try:
            yield staging
            try:
                _swap_in(staging, out)
            except OSError as exc:
                raise cannot_write_site(out, exc) from exc
        finally:
            if staging.is_dir() and not staging.is_symlink():
                shutil.rmtree(staging, ignore_errors=True)
