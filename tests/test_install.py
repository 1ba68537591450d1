"""The install a notebook meets: an editable install wins over the clone's own folder.

A notebook beside the clone (``~/archlab/`` cloned, the notebook in ``~``) imports
``archlab`` from the working folder first. With the package at the clone's top level,
that folder was a namespace package with nothing in it, ahead of setuptools' import hook
(``module 'archlab' has no attribute 'trace_shapes'``). The package lives in ``src/``,
so the editable install is a plain path entry and the clone's folder has no ``archlab``
package to shadow it.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_an_editable_install_wins_over_a_folder_named_archlab(tmp_path):
    pytest.importorskip("setuptools")
    clone = tmp_path / "archlab"  # the usual layout: the clone's folder named as the package
    shutil.copytree(
        ROOT,
        clone,
        ignore=shutil.ignore_patterns(
            ".git", ".venv", "docs", "runs", "explorer", "*.egg-info", "__pycache__", ".*cache*"
        ),
    )
    prefix = tmp_path / "prefix"
    done = subprocess.run(
        # --ignore-installed: pip would otherwise uninstall the archlab of the environment
        # running the tests before installing into --prefix
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
         "--no-index", "--ignore-installed", "-e", str(clone), "--prefix", str(prefix)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    if done.returncode != 0:
        pytest.skip(f"pip cannot install here: {done.stderr.strip().splitlines()[-1:]}")
    scheme = sysconfig.get_paths(vars={"base": str(prefix), "platbase": str(prefix)})
    site = scheme["purelib"]
    code = (
        f"import site; site.addsitedir({site!r}); import archlab; "
        "print(archlab.__file__); print(archlab.__version__)"
    )
    # from the clone's parent folder, where `archlab/` is the clone itself (first on the
    # path, as in a notebook); -E -S: no PYTHONPATH and no other installed archlab, only
    # the install under test (a folder on the path that shadowed it gave __file__ None)
    shown = subprocess.run(
        [sys.executable, "-E", "-S", "-c", code],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert shown.returncode == 0, shown.stderr
    path, version = shown.stdout.split()
    assert Path(path) == clone / "src" / "archlab" / "__init__.py"
    assert version
