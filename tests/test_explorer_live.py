"""The explorer's live model (issue 30, item 1): each run's model exported to ONNX with
every trace row's output as a graph output ``row-I``, run by onnxruntime (not archlab's
code) and compared with PyTorch itself: the logits with the model's own forward, each
module's row with a forward hook on that module, and every row with the trace record."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import torch

import archlab
from archlab.explorer.onnx import LOGITS, export_live, match_rows
from archlab.trace.record import row_outputs

from .live_models import ResidualNet

onnxruntime = pytest.importorskip("onnxruntime")

NORMALIZE = (0.2860, 0.3530)
MODELS = [*archlab.list_models(), "residual"]


def _model(name: str) -> torch.nn.Module:
    torch.manual_seed(0)
    model = ResidualNet() if name == "residual" else archlab.create_model(name)
    model.eval()
    for module in model.modules():  # BatchNorm with statistics of its own, not 0 and 1
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
    return model


def _module_outputs(model, x) -> dict[str, torch.Tensor]:
    """Each leaf module's output on ``x`` by a plain forward hook (its last call)."""
    seen: dict[str, torch.Tensor] = {}
    handles = [
        m.register_forward_hook(lambda _m, _i, out, n=n: seen.__setitem__(n, out.detach()))
        for n, m in model.named_modules()
        if n and next(m.children(), None) is None
    ]
    try:
        with torch.no_grad():
            logits = model(x)
    finally:
        for h in handles:
            h.remove()
    return seen, logits


@pytest.mark.parametrize("name", MODELS)
def test_every_row_is_a_graph_output_that_agrees_with_pytorch(name):
    model = _model(name)
    report = archlab.trace_shapes(model)
    pixels = torch.rand(7, 1, 28, 28, generator=torch.Generator().manual_seed(1))
    x = (pixels - NORMALIZE[0]) / NORMALIZE[1]
    rows, _ = row_outputs(model, x, len(report.layers))
    hooked, logits = _module_outputs(model, x)
    live = export_live(
        model, NORMALIZE, pixels[:5], [r[:5] if r is not None else None for r in rows], logits[:5]
    )
    assert live.onnx is not None, live.why
    assert live.why == "" and live.error < 1e-4
    traced = [i for i, r in enumerate(rows) if r is not None]
    assert traced and [live.outputs[i] for i in traced] == [f"row-{i}" for i in traced]
    # on two images the export never saw
    session = onnxruntime.InferenceSession(live.onnx, providers=["CPUExecutionProvider"])
    names = [LOGITS, *(f"row-{i}" for i in traced)]
    got = dict(zip(names, session.run(names, {"image": pixels.numpy()}), strict=True))
    assert abs(torch.from_numpy(got[LOGITS]) - logits).max() < 1e-4
    modules_checked = 0
    for i in traced:
        value = torch.from_numpy(got[f"row-{i}"])
        assert abs(value - rows[i]).max() < 1e-4 * max(1.0, float(rows[i].abs().max())), i
        layer = report.layers[i]
        if not layer.functional and layer.name in hooked:
            want = hooked[layer.name]
            if want.shape == value.shape:
                assert abs(value - want).max() < 1e-4 * max(1.0, float(want.abs().max())), i
                modules_checked += 1
    assert modules_checked >= 1


def test_the_user_model_has_functional_rows_and_a_residual_add():
    report = archlab.trace_shapes(ResidualNet())
    types = [layer.type for layer in report.layers if layer.functional]
    assert types == ["F.relu", "add", "F.relu", "F.avg_pool2d(4)", "flatten(1)"]


def test_rows_match_the_value_of_their_own_layer_not_an_equal_earlier_one():
    a = torch.tensor([[1.0, 2.0]])
    values = {"v0": a, "v1": a.clone(), "v2": a * 2}
    # the second row is found at or after the first row's match, the third anywhere
    assert match_rows(values, ["v0", "v1", "v2"], [a, a, a * 2, None]) == ["v0", "v0", "v2", None]
    assert match_rows(values, ["v0", "v1", "v2"], [a * 2, a]) == ["v2", "v0"]
    assert match_rows(values, ["v0"], [torch.zeros(1, 3)]) == [None]


def test_a_model_the_exporter_refuses_is_not_live_and_says_why():
    class Numpy(torch.nn.Module):
        def forward(self, x):
            return torch.from_numpy(x.flatten(1)[:, :10].numpy().copy()) * 2

    pixels = torch.rand(3, 1, 28, 28)
    live = export_live(Numpy(), None, pixels, [None], Numpy()(pixels))
    assert live.onnx is None
    assert live.why


def test_a_refused_export_prints_nothing_but_its_reason(capfd):
    """torch.onnx prints the whole TorchScript graph (to stdout, from C++) before it
    raises on attention's fused kernel; explore says why in one line and nothing else."""

    class Attention(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.attn = torch.nn.MultiheadAttention(28, 2, batch_first=True)
            self.head = torch.nn.Linear(28, 10)

        def forward(self, x):
            t = x[:, 0]
            return self.head(self.attn(t, t, t)[0].mean(1))

    model = Attention().eval()
    pixels = torch.rand(3, 1, 28, 28)
    with torch.no_grad():
        live = export_live(model, None, pixels, [None], model(pixels))
    out, err = capfd.readouterr()
    assert live.onnx is None and "torch.onnx could not export it" in live.why
    assert (out, err) == ("", "")


def test_an_input_that_is_not_a_drawing_is_not_live():
    live = export_live(torch.nn.Flatten(), None, torch.rand(2, 3, 32, 32), [], torch.rand(2, 10))
    assert live.onnx is None and "3×32×32" in live.why


@pytest.mark.skipif(shutil.which("node") is None, reason="needs Node.js (apt-get install nodejs)")
def test_the_live_panels_javascript_unit_tests_pass():
    test_file = Path(__file__).parent / "js" / "live.test.js"
    result = subprocess.run(["node", "--test", str(test_file)], capture_output=True, text=True,
                            timeout=120)  # fmt: skip
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "# fail 0" in result.stdout and "# pass 6" in result.stdout


def test_explore_warns_once_for_a_run_that_is_not_live_and_writes_its_reason(tmp_path):
    import dataclasses
    import json

    from .synthetic import learnable_dataset

    class Wide(torch.nn.Module):  # reads 1×28×28, answers through numpy: not exportable
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, x):
            return self.inner(torch.from_numpy(x.detach().numpy().copy()))

    data = learnable_dataset(n_train=100, n_test=40)
    quiet = {"progress": False, "log": lambda _line: None, "figures": False}
    dnn = archlab.train("dnn", runs=tmp_path / "runs", data=data, max_iterations=2,
                        batch_size=50, **quiet)  # fmt: skip
    odd = dataclasses.replace(dnn, name="odd", model=Wide(dnn.model))
    lines: list[str] = []
    page = archlab.explore([dnn, odd], images=4, out=tmp_path / "site", data=data,
                           methods=["occlusion"], log=lines.append)  # fmt: skip
    warned = [line for line in lines if "not live" in line]
    assert len(warned) == 1 and warned[0].startswith("warning: odd: not live in the page: ")
    text = (page.parent / "data" / "run-1" / "run.js").read_text(encoding="utf-8")
    live = json.loads(text[len("ARCHLAB.add(") : -3])["live"]
    assert live["model"] is None and live["outputs"] == [] and live["why"] in warned[0]
    assert not (page.parent / "data" / "run-1" / "model.js").exists()
    assert (page.parent / "data" / "run-0" / "model.js").is_file()
    assert (page.parent / "vendor" / "ort-wasm-simd.wasm.js").is_file()
    # no run live: no runtime either (3.7 MB the page would never load)
    alone = archlab.explore([odd], images=2, out=tmp_path / "alone", data=data,
                            methods=["occlusion"])  # fmt: skip
    assert not (alone.parent / "vendor" / "ort-wasm-simd.wasm.js").exists()
