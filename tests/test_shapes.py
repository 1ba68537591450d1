import json
from pathlib import Path

import pytest
import torch
from torch import nn

import archlab
from archlab.trace.fixes import Fix

HERE = Path(__file__).parent
USER = f"{HERE / 'user_models.py'}"


def _outputs(report):
    return [r.output for r in report.layers]


def test_cnn_trace_is_the_correct_one():
    report = archlab.trace_shapes("cnn")
    assert report.ok
    by_name = {r.name: r.output for r in report.layers}
    assert by_name["layer1.0"] == (32, 28, 28)
    assert by_name["layer1.3"] == (32, 14, 14)
    assert by_name["layer2.0"] == (64, 12, 12)
    assert by_name["layer2.3"] == (64, 6, 6)
    flatten = next(r for r in report.layers if r.type.startswith("flatten"))
    assert flatten.output == (2304,) and flatten.formula == "64·6·6 = 2304"
    assert "64·6·6 = 2304 matches fc1.in_features" in report.notes
    assert all(r.checked for r in report.layers if r.formula)
    assert report.output_shape == (10,)


def test_cnn_trace_matches_expected_file(update_expected):
    expected = HERE / "expected" / "shapes_cnn.txt"
    text = str(archlab.trace_shapes("cnn")) + "\n"
    if update_expected:
        expected.write_text(text, encoding="utf-8")
    assert text == expected.read_text(encoding="utf-8")


def test_teaching_notes_for_the_cnn():
    notes = "\n".join(archlab.trace_shapes("cnn").notes)
    assert "fc1 → fc2 → fc3: no activation between these Linear layers" in notes
    assert "nn.Linear(2304, 10) (23,050 parameters)" in notes
    assert "layer1.0: its bias is cancelled by layer1.1" in notes


def test_dnn_trace_shows_functional_view_and_relu():
    report = archlab.trace_shapes("dnn")
    kinds = [r.type for r in report.layers]
    assert kinds == ["view(-1, 784)", "Linear", "F.relu", "Dropout", "Linear", "F.relu", "Linear"]
    assert not any("no activation" in n for n in report.notes)


def test_wrong_input_size_names_fc1_and_its_source():
    report = archlab.trace_shapes("cnn", (1, 32, 32))
    assert not report.ok and report.error.layer == "fc1"
    assert "expects 2304 input features but receives 3136 = 64×7×7 from layer2.3" in str(
        report.error
    )
    assert "nn.Linear(3136, 600)" in str(report.error.fix)
    assert report.error.fix == Fix("set", "fc1", "in_features", 3136, report.error.fix.text)
    assert report.layers[-1].output == (3136,)  # the trace up to the failure


def test_map_that_shrinks_to_nothing_names_the_layer():
    report = archlab.trace_shapes("cnn", (1, 4, 4))
    assert report.error.layer == "layer2.0"
    assert "shrinks to nothing" in report.error.message
    assert report.layers[-1].name == "layer1.3"


def test_what_if_padding_changes_the_chain():
    report = archlab.trace_shapes("cnn", overrides=["layer2.0.padding=1"])
    by_name = {r.name: r.output for r in report.layers}
    assert by_name["layer2.0"] == (64, 14, 14)
    assert report.error.layer == "fc1" and "3136" in report.error.message
    assert "layer2.0.padding=1" in str(report)


def test_what_if_does_not_touch_the_callers_model():
    model = archlab.create_model("cnn")
    archlab.trace_shapes(model, overrides=["layer2.0.padding=1"])
    assert model.layer2[0].padding == (0, 0)
    assert next(model.parameters()).device.type == "cpu"


@pytest.mark.parametrize(
    ("assignment", "message"),
    [
        ("layer9.padding=1", "no layer 'layer9'"),
        ("layer2.0.paddin=1", "has no argument 'paddin'"),
        ("layer2.0.kernel_size=-3", "kernel_size must be a whole number ≥ 1"),
        ("layer2.0.groups=5", "Conv2d rejects it"),
        ("padding", "expected LAYER.ARGUMENT=VALUE"),
    ],
)
def test_bad_what_ifs(assignment, message):
    with pytest.raises(archlab.ArchlabError, match=message):
        archlab.trace_shapes("cnn", overrides=[assignment])


def test_user_model_from_a_file():
    report = archlab.trace_shapes(f"{USER}:TinyNet")
    assert report.ok and report.input_shape == (1, 12, 12)
    assert [r.output for r in report.layers if r.name in ("conv", "pool")] == [
        (4, 10, 10),
        (4, 5, 5),
    ]
    assert any(r.type == "reshape(N, -1)" for r in report.layers)  # x.size(0) is N


def test_user_model_notes_dropout2d_on_a_flat_tensor():
    notes = archlab.trace_shapes(f"{USER}:DropoutOnFlat").notes
    assert any("Dropout2d is meant for feature maps; on a flat 32 tensor" in n for n in notes)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (f"{USER}:NeedsArgs", r"NeedsArgs needs the arguments width; give them in the spec"),
        (f"{USER}:NeedsArgs(depth=2)", "needs the arguments width"),
        (f"{USER}:Nope", "has no 'Nope'; it defines: DropoutOnFlat, NeedsArgs, TinyNet"),
        ("missing/file.py:Net", "no such file"),
        ("no_such_package_xyz:Net", "cannot import module"),
        ("torch:Tensor", "is a class but not an nn.Module"),
        ("math:pi", "neither an nn.Module class nor a function"),
        ("random:random", "returned a float, not an nn.Module"),
        ("cnn(width=3)", "cnn is registered and takes no constructor arguments"),
        ("torchvision.models:resnet18(num_classes=)", "constructor arguments must be"),
    ],
)
def test_bad_model_specs(spec, message):
    with pytest.raises(archlab.ArchlabError, match=message):
        archlab.trace_shapes(spec)


def test_no_hooks_are_left_behind_even_on_failure():
    model = archlab.create_model("cnn")
    archlab.trace_shapes(model, (1, 4, 4))
    for module in model.modules():
        assert not module._forward_hooks and not module._forward_pre_hooks


def test_json_round_trips():
    data = json.loads(archlab.trace_shapes("cnn").to_json())
    assert data["ok"] is True
    assert data["layers"][8]["output"] == [2304]


def test_html_for_notebooks():
    html = archlab.trace_shapes("cnn")._repr_html_()
    assert html.startswith("<table>") and "64×6×6" in html


def test_an_unanalysed_layer_still_gets_its_shape_from_the_forward_pass():
    class Custom(nn.Module):
        def forward(self, x):
            return x[..., ::2]

    model = nn.Sequential(Custom(), nn.Flatten(), nn.Linear(14 * 28, 3))
    report = archlab.trace_shapes(model, (1, 28, 28))
    assert report.ok
    assert report.layers[0].output == (1, 28, 14) and not report.layers[0].checked


def test_a_wrong_rule_is_reported_as_a_bug(monkeypatch):
    from archlab.trace import formulas

    real = formulas._conv

    def off_by_one(m, shape):
        step = real(m, shape)
        return formulas.Step((*step.output[:-1], step.output[-1] + 1), step.formula)

    monkeypatch.setattr(formulas, "_conv", off_by_one)
    report = archlab.trace_shapes("cnn")
    assert not report.ok
    assert any("layer1.0" in m for m in report.mismatches)
    assert "archlab BUG" in str(report)


@pytest.mark.parametrize("name", archlab.list_models())
def test_every_traced_layer_agrees_with_forward_hooks_on_a_real_forward(name):
    """The reference is torch itself: hooks written here record what each layer outputs in
    a plain forward pass of three images; the trace's rows must say the same, layer by
    layer and call by call, and its output the model's."""
    report = archlab.trace_shapes(name)
    model = archlab.create_model(name).eval()
    seen: dict[str, list[tuple]] = {}
    handles = [
        m.register_forward_hook(
            lambda mod, args, out, n=n: seen.setdefault(n, []).append(tuple(out.shape[1:]))
        )
        for n, m in model.named_modules()
        if n and next(m.children(), None) is None
    ]
    try:
        with torch.no_grad():
            out = model(torch.rand(3, 1, 28, 28))
    finally:
        for handle in handles:
            handle.remove()
    traced: dict[str, list[tuple]] = {}
    for row in report.layers:
        if not row.functional:
            traced.setdefault(row.name, []).append(row.output)
    assert traced == seen
    assert report.ok and report.output_shape == tuple(out.shape[1:]) == (10,)


def test_a_model_without_forward_is_named_in_its_error():
    """The model itself failing printed 'error:  (NoFwd) raised ...' (outside test)."""

    class NoForward(torch.nn.Module):
        pass

    report = archlab.trace_shapes(NoForward())
    assert str(report.error).startswith("NoForward raised NotImplementedError: ")


@pytest.mark.parametrize(
    ("forward", "said"),
    [
        (lambda fc, x: fc(x.flatten(1)).sum(), "in forward, sum reduces or indexes over the batch "
         "dimension: the model's output (one number) no longer has one row per image"),
        (lambda fc, x: fc(x.flatten(1))[0], "in forward, [0] reduces or indexes over the batch "
         "dimension: the model's output (10 in all) no longer has one row per image"),
    ],
)  # fmt: skip
def test_an_output_without_its_batch_is_said_once(forward, said):
    """It said 'in forward, sum sum reduces ... (  in all)' (outside test)."""

    class Lost(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = torch.nn.Linear(784, 10)

        def forward(self, x):
            return forward(self.fc, x)

    report = archlab.trace_shapes(Lost())
    assert str(report.error).startswith(said)


def test_a_layer_traced_as_the_model_gets_the_fix_that_works():
    """nn.Linear(784, 10) on 1×28×28: flattening first was said to 'not help' (its trial
    never reached the layer, which is the model itself); outside test."""
    report = archlab.trace_shapes(nn.Linear(784, 10), (1, 28, 28))
    text = str(report.error)
    assert "fix: flatten first" in text and "would not help" not in text
