import pytest
from torchinfo import summary

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


@pytest.mark.parametrize("name", archlab.list_models())
def test_totals_equal_torchinfo_and_the_sum_of_layers(name):
    report = archlab.count_params(name)
    model = archlab.create_model(name)
    stats = summary(model, input_size=(1, *model.input_shape), verbose=0)
    assert report.total_params == stats.total_params == sum(x.params for x in report.layers)
    assert report.total_macs == stats.total_mult_adds == sum(x.macs for x in report.layers)


def test_frozen_layers_are_counted_as_not_trainable():
    model = archlab.create_model("dnn")
    model.fc1.requires_grad_(False)
    report = archlab.count_params(model)
    assert report.trainable_params == 235_146 - 200_960
    assert "no" in str(report)


def test_comparison_puts_totals_side_by_side():
    text = str(archlab.compare_params([archlab.count_params("dnn"), archlab.count_params("cnn")]))
    assert "235,146" in text and "1,475,338" in text
    assert "cnn has 6.27× the parameters of dnn" in text


def test_report_renders_as_html_and_json():
    report = archlab.count_params("dnn")
    assert "<table>" in report._repr_html_()
    assert '"total_params": 235146' in report.to_json()
