"""Start-up work that is skipped must not change what a command does: the same curves.png,
a changed data file still caught; and the imports that cost seconds stay out of training."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from archlab.errors import ArchlabError
from archlab.training import data as D

from .synthetic import write_idx_set

ROOT = Path(__file__).resolve().parents[1]


def _history() -> dict:
    train = [{"iteration": i, "loss": 1.0 / i} for i in range(50, 601, 50)]
    evals = [
        {"iteration": i, "test_loss": 0.5, "test_accuracy": 0.8 + i / 10_000} for i in (500, 600)
    ]
    return {"model": "dnn", "train": train, "eval": evals}


def test_curves_png_is_the_picture_pyplot_draws(tmp_path):
    from archlab import viz
    from archlab.training.runs import write_run_files

    payload = {"history": _history(), "format": 1}
    files = write_run_files(tmp_path / "run", payload)
    ours = (tmp_path / "run" / "curves.png").read_bytes()
    viz.save_figure(viz.plot_curves(_history()), tmp_path / "pyplot.png")
    assert tmp_path / "run" / "curves.png" in files
    assert ours == (tmp_path / "pyplot.png").read_bytes()


def test_training_imports_neither_dynamo_nor_pyplot(tmp_path):
    """torch._dynamo (torch.optim's constructors) and matplotlib.pyplot cost 1-2 s each."""
    code = f"""
import sys
sys.path.insert(0, {str(ROOT)!r})
from tests.synthetic import learnable_dataset
from archlab.training.train import train
r = train("cnn", data=learnable_dataset(), runs={str(tmp_path)!r}, epochs=1, batch_size=50,
          log_every=5, log=lambda line: None, progress=False)
assert (r.checkpoint.parent / "curves.png").is_file()
cuda_only = ("archlab.training._graph", "archlab.training._cuda")  # off the CPU path
print(sorted(m for m in ("torch._dynamo", "matplotlib.pyplot", "sympy", *cuda_only)
             if m in sys.modules))
"""
    env = {**os.environ, "MPLBACKEND": "Agg"}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


@pytest.fixture(autouse=True)
def cache_home(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path / "cache" / "archlab" / D._MD5_CACHE


@pytest.fixture
def cached(monkeypatch):
    """Cache even files written a moment ago, and count the MD5s computed."""
    monkeypatch.setattr(D, "_RACY_SECONDS", -1.0)
    computed = []
    real = D.md5_of
    monkeypatch.setattr(D, "md5_of", lambda path: computed.append(path.name) or real(path))
    return computed


def _prepare(tmp_path, sums):
    return D.prepare(tmp_path / "data", system_dir=tmp_path / "sys", download=False, checksums=sums)


def test_verification_is_cached_until_a_file_changes(tmp_path, cached, cache_home):
    sums = write_idx_set(tmp_path / "sys")
    assert _prepare(tmp_path, sums).md5 == sums
    assert len(cached) == 4
    assert cache_home.is_file()  # with the user's caches
    assert not list(D.raw_dir(tmp_path / "data").glob(".*"))  # nothing in the data folder
    assert _prepare(tmp_path, sums).md5 == sums
    assert len(cached) == 4  # nothing read again
    victim = D.raw_dir(tmp_path / "data") / "t10k-images-idx3-ubyte"
    before = victim.stat()
    blob = bytearray(victim.read_bytes())
    blob[100] ^= 0xFF  # same size; and the same mtime set back
    victim.write_bytes(bytes(blob))
    os.utime(victim, ns=(before.st_atime_ns, before.st_mtime_ns))
    with pytest.raises(ArchlabError, match="t10k-images-idx3-ubyte is corrupt"):
        _prepare(tmp_path, sums)
    assert cached[4:] == ["t10k-images-idx3-ubyte"]


def test_fresh_files_and_a_damaged_cache_are_verified_in_full(tmp_path, monkeypatch, cache_home):
    sums = write_idx_set(tmp_path / "sys")
    _prepare(tmp_path, sums)  # the files were just written: not cached
    assert not cache_home.exists() or json.loads(cache_home.read_text()) == {}
    monkeypatch.setattr(D, "_RACY_SECONDS", -1.0)
    _prepare(tmp_path, sums)
    assert len(json.loads(cache_home.read_text())) == 4
    cache_home.write_text("{not json")
    assert _prepare(tmp_path, sums).md5 == sums
