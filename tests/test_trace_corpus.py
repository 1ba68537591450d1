"""The tracer on models nobody at archlab wrote, against torch itself (tests/corpus/)."""

import inspect
from pathlib import Path

import pytest
import torch
from torch import nn

import archlab
from archlab.cli import main
from archlab.trace.fixes import Fix
from tests.corpus import broken, good

CORPUS = Path(__file__).parent / "corpus"
GOOD = [c for n, c in inspect.getmembers(good, inspect.isclass) if hasattr(c, "input_shape")]
BROKEN = [
    c
    for n, c in inspect.getmembers(broken, inspect.isclass)
    if c.__module__ == broken.__name__ and not n.endswith("Fixed") and hasattr(c, "where")
]


def _hook_shapes(model: nn.Module, x: torch.Tensor) -> dict[str, list[tuple]]:
    """What forward hooks see, layer by layer, per sample (batch dim 0 dropped)."""
    seen: dict[str, list[tuple]] = {}
    handles = []
    for name, m in model.named_modules():
        if (name and next(m.children(), None) is None) or isinstance(m, nn.MultiheadAttention):

            def hook(mod, args, out, name=name):
                first = out[0] if isinstance(out, tuple) else out
                seen.setdefault(name, []).append(tuple(first.shape))

            handles.append(m.register_forward_hook(hook))
    try:
        with torch.no_grad():
            out = model.eval()(x)
    finally:
        for h in handles:
            h.remove()
    seen["(output)"] = [tuple(out.shape)]
    return seen


def _input(cls, batch: int = 2) -> torch.Tensor:
    return torch.zeros((batch, *cls.input_shape), dtype=getattr(cls, "dtype", torch.float32))


@pytest.mark.parametrize("cls", GOOD, ids=lambda c: c.__name__)
def test_valid_models_trace_and_agree_with_forward_hooks(cls):
    model = cls()
    report = archlab.trace_shapes(model, cls.input_shape)
    assert report.ok, (report.error, report.mismatches)
    seen = _hook_shapes(model, _input(cls))
    for name, shapes in seen.items():
        if name == "(output)":
            continue
        rows = [r for r in report.layers if r.name == name and not r.functional]
        assert len(rows) == len(shapes), name
        for row, shape in zip(rows, shapes, strict=True):
            batch_first = shape[0] == 2
            assert row.output == (shape[1:] if batch_first else shape[:1] + shape[2:]), name
    assert report.output_shape == seen["(output)"][0][1:]
    for i, row in enumerate(report.layers):  # data flow: only earlier rows or the input
        assert row.inputs and all(-1 <= j < i for j in row.inputs), (i, row)


def test_residual_add_names_both_branches_and_has_two_inputs():
    report = archlab.trace_shapes(good.TinyResNet(), (3, 32, 32))
    adds = [(i, r) for i, r in enumerate(report.layers) if r.type == "add"]
    assert len(adds) == 2
    _, add = adds[1]
    names = [report.layers[j].name for j in add.inputs]
    assert names == ["layer2.bn2", "layer2.shortcut.1"]
    assert add.formula == "layer2.bn2 (32×16×16) + layer2.shortcut.1 (32×16×16)"
    mean = next(r for r in report.layers if r.type.startswith("mean"))
    assert mean.output == (32,)


def test_functional_operations_get_rows_with_formulas():
    report = archlab.trace_shapes(good.LeNet5(), (1, 32, 32))
    pool = next(r for r in report.layers if r.type == "F.max_pool2d")
    assert pool.output == (6, 14, 14) and pool.checked
    assert pool.formula == "H,W: ⌊(28 + 2·0 − 1·(2−1) − 1)/2⌋ + 1 = 14"
    chain = all(r.inputs == [i - 1] for i, r in enumerate(report.layers))
    assert chain  # a plain chain: archlab draw may draw it as one column


def test_unet_rows_for_cat_interpolate_and_pad_and_output_size():
    report = archlab.trace_shapes(good.UNetDecoder(), (3, 32, 32))
    by_type = {r.type.split("(")[0]: r for r in report.layers}
    assert by_type["torch.cat"].output == (16, 32, 32)
    assert len(by_type["torch.cat"].inputs) == 2
    assert by_type["F.interpolate"].output == (8, 16, 16) and by_type["F.interpolate"].checked
    assert by_type["F.pad"].output == (8, 18, 18)
    assert next(r for r in report.layers if r.name == "up").checked  # output_size= honoured


def test_tuple_outputs_show_their_parts_and_rnn_hidden_state():
    report = archlab.trace_shapes(good.LSTMTagger(), (12,), dtype="long")
    lstm = next(r for r in report.layers if r.name == "lstm")
    assert lstm.parts == [(12, 32), (1, 32), (1, 32)]
    assert "✗" not in str(report)
    assert report.output_shape == (5,)


def test_attention_module_has_its_row():
    report = archlab.trace_shapes(good.TinyAttention(), (10, 32))
    attn = report.layers[0]
    assert attn.name == "attn" and attn.type == "MultiheadAttention"
    assert attn.output == (10, 32)


def test_parallel_heads_do_not_compose_and_bias_note_follows_data_flow():
    report = archlab.trace_shapes(good.TwoHeads(), (20,))
    assert not any("compose" in n for n in report.notes)
    assert not any("bias is cancelled" in n for n in report.notes)


def test_keyword_tensors_view_dtype_squeeze_and_return_indices():
    report = archlab.trace_shapes(good.Unusual(), (1, 8, 8))
    assert report.ok
    assert report.layers[1].parts == [(1, 4, 4), (1, 4, 4)]
    assert any(r.type == "squeeze(1)" and r.output == (16,) for r in report.layers)


@pytest.mark.parametrize("cls", BROKEN, ids=lambda c: c.__name__)
def test_broken_models_exit_1_naming_the_operation_and_the_fix(cls, capsys):
    spec = f"{CORPUS / 'broken.py'}:{cls.__name__}"
    shape = ",".join(map(str, cls.input_shape))
    assert main(["shapes", spec, "--input", shape]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "Traceback" not in err[0]
    assert err[0].startswith(f"archlab: error: {cls.where}")
    # a fix archlab tried ("; fix: "), or advice in words where no one change works
    tail = err[0].partition("; fix: ")[2] or err[0].partition("; hint: ")[2]
    assert cls.fix in tail
    fixed = getattr(broken, f"{cls.__name__}Fixed", None)
    if fixed is not None:  # the fix, applied, makes the model run
        shape = ",".join(map(str, getattr(fixed, "fixed_input", fixed.input_shape)))
        assert main(["shapes", f"{CORPUS / 'broken.py'}:{fixed.__name__}", "--input", shape]) == 0
    elif hasattr(cls, "fixed_input"):
        shape = ",".join(map(str, cls.fixed_input))
        assert main(["shapes", spec, "--input", shape]) == 0


def test_first_layer_rank_is_refused_with_the_expected_form(capsys):
    assert main(["shapes", "cnn", "--input", "28,28"]) == 1
    err = capsys.readouterr().err
    assert "takes one C,H,W image" in err and "fix: --input 1,28,28" in err


def test_the_lectures_dnn_on_three_channels_is_the_classic_bug(capsys):
    assert main(["shapes", "dnn", "--input", "3,28,28"]) == 1
    err = capsys.readouterr().err
    assert "view(-1, 784)" in err and "fix: x.view(x.size(0), -1)" in err


@pytest.mark.parametrize(
    "assignment",
    [
        "layer1.0.padding=-5",
        "layer1.0.padding=1.5",
        "layer1.0.dilation=0",
        "layer1.3.kernel_size=-2",
    ],
)
def test_invalid_what_if_values_are_the_users_mistake(assignment, capsys):
    assert main(["shapes", "cnn", "--set", assignment]) == 2  # out of range: usage
    err = capsys.readouterr().err
    assert "must be a whole number" in err and "BUG" not in err


def test_an_input_too_big_for_memory_is_refused_up_front(capsys):
    assert main(["shapes", "cnn", "--input", "1,2000000,2000000"]) == 1
    assert "too much for this machine" in capsys.readouterr().err


def test_embedding_needs_integer_input():
    class Tagger(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(4, 4)
            self.embed = nn.Embedding(10, 4)

        def forward(self, x):
            return self.fc(self.embed(x))

    report = archlab.trace_shapes(Tagger(), (6,), dtype="float")
    assert report.error.layer == "embed" and report.error.fix == Fix("dtype", value="long")
    assert "fix: --dtype long" in report.error.render(flags=True)
    assert archlab.trace_shapes(Tagger(), (6,), dtype=torch.long).output_shape == (6, 4)


def test_torchvision_factory_with_arguments_and_depth(capsys):
    spec = "torchvision.models:resnet18:num_classes=10"
    report = archlab.trace_shapes(spec, (3, 224, 224), depth=1)
    assert report.ok and report.output_shape == (10,)
    layer2 = next(r for r in report.layers if r.name == "layer2")
    assert (layer2.input, layer2.output) == ((64, 56, 56), (128, 28, 28))
    assert all(r.inputs == [i - 1] for i, r in enumerate(report.layers))
    full = archlab.trace_shapes(spec, (3, 224, 224))
    adds = [r for r in full.layers if r.type == "add"]
    assert len(adds) == 8 and all(len(r.inputs) == 2 for r in adds)
    assert '"inputs"' in full.to_json() and "layer2" in report._repr_html_()


@pytest.mark.slow
@pytest.mark.parametrize("name", ["mobilenet_v2", "densenet121", "vit_b_16", "swin_t"])
def test_larger_torchvision_models(name):
    import torchvision

    model = getattr(torchvision.models, name)()
    report = archlab.trace_shapes(model, (3, 224, 224))
    assert report.ok, (report.error, report.mismatches)
    assert report.output_shape == (1000,)
    seen = _hook_shapes(model, torch.zeros(2, 3, 224, 224))
    for name_, shapes in seen.items():
        rows = [r.output for r in report.layers if r.name == name_ and not r.functional]
        if name_ != "(output)" and shapes[0][0] == 2:
            assert rows == [s[1:] for s in shapes], name_
