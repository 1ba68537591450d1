"""The CUDA path's guarantees (archlab/training/_cuda.py, _graph.py): run wherever CUDA
exists (``benchmarks/gpu_check.sh`` runs them on a lent GPU), skipped with the reason
elsewhere."""

import os
import subprocess
import sys

import pytest
import torch

from archlab.training import checkpoint as C
from archlab.training.train import train

from .synthetic import learnable_dataset

pytestmark = pytest.mark.skipif(
    not torch.cuda.is_available(),
    reason="no CUDA GPU here; benchmarks/gpu_check.sh runs these on one",
)

QUIET = {"log": lambda line: None, "progress": False}
KW = {"epochs": 2, "batch_size": 50, "log_every": 5, "device": "cuda", **QUIET}


@pytest.fixture(scope="module")
def tiny():
    return learnable_dataset()  # 600 training images: batch 50 divides them, so graphed


def _ckpt(result):
    return C.load_checkpoint(result.folder / "checkpoint.pt")


def _same_weights(a, b) -> bool:
    a, b = a["state_dict"], b["state_dict"]
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("model", ["dnn", "cnn"])
def test_resume_equals_an_uninterrupted_run_in_the_deterministic_mode(tiny, tmp_path, model):
    whole = train(model, data=tiny, runs=tmp_path / "whole", **KW)
    part = train(model, data=tiny, runs=tmp_path / "part", max_iterations=7, **KW)
    assert not _ckpt(part)["finished"]
    resumed = train(model, data=tiny, runs=tmp_path / "part", resume=True, **QUIET)
    a, b = _ckpt(whole), _ckpt(resumed)
    assert a["config"]["deterministic"] is True
    assert _same_weights(a, b)
    assert [p["loss"] for p in a["history"]["train"]] == [p["loss"] for p in b["history"]["train"]]


@pytest.mark.parametrize("model", ["dnn", "cnn", "lenet5", "resnet"])
def test_same_seed_same_weights(tiny, tmp_path, model):
    a = train(model, data=tiny, runs=tmp_path / "a", **KW)
    b = train(model, data=tiny, runs=tmp_path / "b", **KW)
    assert _same_weights(_ckpt(a), _ckpt(b))
    assert a.test_accuracy == b.test_accuracy


@pytest.mark.parametrize("model", ["dnn", "cnn", "resnet"])
def test_the_graphed_step_equals_the_eager_step(tiny, tmp_path, monkeypatch, model):
    graphed = _ckpt(train(model, data=tiny, runs=tmp_path / "graph", **KW))
    monkeypatch.setenv("ARCHLAB_CUDA_GRAPH", "0")
    eager = _ckpt(train(model, data=tiny, runs=tmp_path / "eager", **KW))
    assert graphed["history"]["cuda"]["step"] == "CUDA graph"
    assert eager["history"]["cuda"]["step"] == "eager: ARCHLAB_CUDA_GRAPH=0"
    assert _same_weights(graphed, eager)
    assert graphed["history"]["train"] == eager["history"]["train"]


_SYNCS = """
from torch import nn


class Syncs(nn.Module):  # reads a value on the host in its forward: not capturable
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(784, 10)

    def forward(self, x):
        if x.sum().item() > float("inf"):
            x = x * 2
        return self.fc(x.flatten(1))
"""


def test_a_model_that_cannot_be_captured_trains_eagerly_and_says_why(tiny, tmp_path):
    (tmp_path / "syncs.py").write_text(_SYNCS)
    lines = []
    spec = f"{tmp_path / 'syncs.py'}:Syncs"
    result = train(spec, data=tiny, runs=tmp_path / "runs", **{**KW, "log": lines.append})
    step = _ckpt(result)["history"]["cuda"]["step"]
    assert step.startswith("eager: capture failed"), step
    assert any("eager steps on CUDA: capture failed" in line for line in lines)
    assert result.iteration == 24


def test_the_batch_that_does_not_divide_the_data_is_eager(tiny, tmp_path):
    result = train("dnn", data=tiny, runs=tmp_path, **{**KW, "batch_size": 70})
    assert "does not divide the 600 training images" in _ckpt(result)["history"]["cuda"]["step"]


def test_the_fast_mode_is_recorded(tiny, tmp_path):
    result = train("cnn", data=tiny, runs=tmp_path, deterministic=False, **KW)
    payload = _ckpt(result)
    assert payload["config"]["deterministic"] is False
    assert payload["history"]["cuda"]["mode"] == "fast"
    assert not torch.backends.cudnn.benchmark  # the caller's settings are restored


def test_a_cuda_checkpoint_loads_with_no_gpu(tiny, tmp_path):
    train("cnn", data=tiny, runs=tmp_path, **KW)
    code = (
        "import sys, torch, archlab; assert not torch.cuda.is_available(); "
        f"net = archlab.load_run('cnn', runs={str(tmp_path)!r}).model; "
        "x = torch.zeros(2, 1, 28, 28); assert net(x).shape == (2, 10); "
        "print(next(net.parameters()).device)"
    )
    env = {"CUDA_VISIBLE_DEVICES": "", "PATH": "/usr/bin:/bin"}
    env["PYTHONPATH"] = os.pathsep.join(sys.path)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "cpu"


def test_the_analyses_run_on_cuda_and_agree_with_the_cpu(tiny, tmp_path):
    from archlab.analysis.evaluation import evaluate
    from archlab.analysis.explain import explain
    from archlab.analysis.features import activation_maps
    from archlab.training.run import load_run

    train("cnn", data=tiny, runs=tmp_path, **KW)
    cpu = load_run("cnn", runs=tmp_path)
    gpu = load_run("cnn", runs=tmp_path)
    gpu.model.cuda()
    a, b = evaluate(cpu, data=tiny), evaluate(gpu, data=tiny)
    assert b.probs.device.type == "cpu"
    torch.testing.assert_close(a.probs, b.probs, atol=1e-4, rtol=1e-4)
    acts = activation_maps(gpu.model, tiny.test_images[0], gpu.normalize)
    assert all(t.device.type == "cpu" for t in acts.values())
    e = explain(gpu, image=tiny.test_images[0], label=int(tiny.test_labels[0]))
    assert all(at.map.device.type == "cpu" for at in e.attributions)
