"""Shared helpers of the fault suites (``test_faults.py``, ``test_kill.py``): a tiny
synthetic world of data and runs, and the real CLI run in a subprocess."""

from __future__ import annotations

import atexit
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from functools import cache
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


@cache
def hooks_dir() -> Path:
    """A folder holding only a ``sitecustomize.py`` that imports ``tests.fault_hooks``: on a
    subprocess's ``PYTHONPATH`` it installs the hooks at start-up. Written once per test
    process into a temporary folder, so that no file in the tree is named
    ``sitecustomize.py`` (pytest would collect it, and clash with the system's)."""
    folder = Path(tempfile.mkdtemp(prefix="archlab-fault-hooks-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    (folder / "sitecustomize.py").write_text("import tests.fault_hooks  # noqa: F401\n")
    return folder


def make_data(folder: Path) -> Path:
    """Synthetic IDX files (600 train, 100 test: 6 iterations an epoch at batch 100) and
    the JSON of their checksums that the hooks install in the CLI; returns that JSON."""
    from tests.synthetic import write_idx_set

    md5 = write_idx_set(folder, n_train=600, n_test=100, gz=False)
    path = folder.parent / f"{folder.name}.md5.json"
    path.write_text(json.dumps(md5))
    return path


def train_in_process(model: str, data: Path, md5: Path, runs: Path, **settings) -> Path:
    """Train quickly without a subprocess; the checkpoint records the synthetic checksums
    exactly as the CLI would."""
    import archlab
    from archlab.training.data import load_fashion_mnist

    checksums = json.loads(md5.read_text())
    dataset = load_fashion_mnist(data, checksums=checksums, download=False)
    settings = {"epochs": 1, "batch_size": 100, "log": lambda line: None, **settings}
    return archlab.train(model, data=dataset, runs=runs, progress=False, **settings).checkpoint


def env(md5: Path | None = None, home: Path | None = None, **extra: str) -> dict[str, str]:
    """The environment of a CLI subprocess: this tree and the hooks on PYTHONPATH, no
    data folder or cache outside the test's own, Agg unless a test says otherwise."""
    base = {
        k: v
        for k, v in os.environ.items()
        if k not in ("ARCHLAB_DATA", "MPLBACKEND", "PYTHONIOENCODING", "ARCHLAB_TRACEBACK")
        and not k.startswith("ARCHLAB_TEST_")
    }
    # this tree's archlab (src/) and its tests package, then the hooks
    paths = (REPO / "src", REPO, hooks_dir())
    base.update(PYTHONPATH=os.pathsep.join(map(str, paths)), MPLBACKEND="Agg")
    if md5 is not None:
        base["ARCHLAB_TEST_MD5"] = str(md5)
    if home is not None:
        base.update(HOME=str(home), XDG_CACHE_HOME=str(home / ".cache"))
    base.update(extra)
    return base


def cli(args, *, environ, cwd, timeout=300, prefix=(), **kwargs) -> subprocess.CompletedProcess:
    """``python -m archlab ARGS`` in a subprocess; returns the completed process (text)."""
    kwargs.setdefault("stdout", subprocess.PIPE)
    kwargs.setdefault("stderr", subprocess.PIPE)
    kwargs.setdefault("encoding", environ.get("PYTHONIOENCODING") or "utf-8")
    return subprocess.run(
        [*prefix, sys.executable, "-m", "archlab", *map(str, args)],
        env=environ,
        cwd=cwd,
        timeout=timeout,
        **kwargs,
    )


def digest(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` with the SHA-256 of its bytes (the lock file aside: it
    holds no result)."""
    found = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file() and path.name != ".lock":
            found[str(path.relative_to(folder))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


def copy_run(source: Path, target: Path) -> Path:
    shutil.copytree(source, target)
    return target


def drop_file_permission_override() -> list[str] | None:
    """A command prefix under which root obeys file permissions (root reads everything
    otherwise): ``setpriv`` dropping CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH. ``[]``
    for a user who is not root; None where neither works."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        return None
    prefix = [setpriv, "--bounding-set=-dac_override,-dac_read_search"]
    try:
        subprocess.run([*prefix, "true"], check=True, capture_output=True, timeout=30)
    except (subprocess.SubprocessError, OSError):
        return None
    return prefix
