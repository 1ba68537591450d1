import pytest
import torch

import archlab


def test_cnn_counts_are_exact():
    report = archlab.count_params("cnn")
    by_name = {layer.name: layer for layer in report.layers}
    assert report.total_params == report.trainable_params == 1_475_338
    assert [by_name[n].params for n in ("layer1.0", "layer1.1", "layer2.0", "layer2.1")] == [
        320,
        64,
        18_496,
        128,
    ]
    assert [by_name[n].params for n in ("fc1", "fc2", "fc3")] == [1_383_000, 72_120, 1_210]
    assert by_name["layer1.0"].macs == 32 * 9 * 28 * 28 + 32 * 28 * 28 == 250_880
    assert by_name["layer2.0"].macs == 2_663_424
    assert by_name["fc1"].macs == 1_383_000
    assert by_name["fc1"].weight == (600, 2304) and by_name["fc1"].bias == (600,)
    assert report.total_macs == 4_370_826


def test_dnn_counts_are_exact():
    report = archlab.count_params("dnn")
    assert report.total_params == 235_146
    assert [layer.params for layer in report.layers if layer.params] == [200_960, 32_896, 1_290]
    assert report.total_macs == 235_146


def _macs_by_hand(model: torch.nn.Module, input_shape) -> int:
    """Multiply-accumulates per image counted from the layers' own sizes, independently of
    torchinfo: a convolution's weight is used once per output position, and torchinfo's
    convention adds one per bias per output position too; a norm layer counts its
    parameters once (REFERENCE: the CNN's BN layers add 64 + 128)."""
    total = 0

    def count(module, args, output):
        nonlocal total
        is_conv = isinstance(module, torch.nn.Conv2d)
        positions = output[0, 0].numel() if is_conv else 1
        own = sum(p.numel() for p in module.parameters(recurse=False))
        total += own * positions

    handles = [
        m.register_forward_hook(count)
        for m in model.modules()
        if isinstance(m, torch.nn.Conv2d | torch.nn.Linear | torch.nn.modules.batchnorm._NormBase)
    ]
    with torch.no_grad():
        model.eval()(torch.zeros(1, *input_shape))
    for h in handles:
        h.remove()
    return total


@pytest.mark.parametrize("name", archlab.list_models())
def test_totals_equal_an_independent_count_and_the_sum_of_layers(name):
    report = archlab.count_params(name)
    model = archlab.create_model(name)
    assert report.total_params == sum(p.numel() for p in model.parameters())
    assert report.total_params == sum(x.params for x in report.layers)
    if all(
        isinstance(m, torch.nn.Conv2d | torch.nn.Linear | torch.nn.modules.batchnorm._NormBase)
        for m in model.modules()
        if any(True for _ in m.parameters(recurse=False))
    ):
        assert report.total_macs == _macs_by_hand(model, model.input_shape)
    assert report.total_macs == sum(x.macs for x in report.layers)


def test_frozen_layers_are_counted_as_not_trainable():
    model = archlab.create_model("dnn")
    model.fc1.requires_grad_(False)
    report = archlab.count_params(model)
    assert report.trainable_params == 235_146 - 200_960
    assert "no" in str(report)


def test_comparison_puts_totals_side_by_side():
    from archlab.trace.params import compare_params

    text = str(compare_params([archlab.count_params("dnn"), archlab.count_params("cnn")]))
    assert "235,146" in text and "1,475,338" in text
    assert "cnn has 6.27× the parameters of dnn" in text


def test_report_renders_as_html_and_json():
    report = archlab.count_params("dnn")
    assert "<table>" in report._repr_html_()
    assert '"total_params": 235146' in report.to_json()
