"""The architecture zoo: every model of group "zoo" is counted, run, trained and traced.

Parametrised over ``archlab.list_models("zoo")``, so a newly registered zoo model is
tested without touching this file.
"""

import re

import pytest
import torch
from torch import nn
from torchinfo import summary

import archlab
from tests.synthetic import learnable_dataset

ZOO = archlab.list_models("zoo")


def test_the_zoo_has_the_five_classic_ideas():
    assert ZOO == ["lenet5", "mobilenet", "nin", "resnet", "vgg"]


@pytest.mark.parametrize("name", ZOO)
def test_card_says_where_the_idea_comes_from(name):
    card = archlab.model_card(name)
    assert card.group == "zoo" and card.input_shape == (1, 28, 28) and card.num_classes == 10
    assert card.description and card.paper and card.idea
    # what benchmarks/zoo.py measured, and what it teaches (benchmarks/README.md)
    assert set(card.measured) == {"accuracy", "train_seconds"}
    assert 80 < card.measured["accuracy"] < 100 and card.measured["train_seconds"] > 0
    accuracy = card.measured["accuracy"]
    assert f"{accuracy:.1f} %" in card.lesson or f"{accuracy:.2f} %" in card.lesson
    assert (archlab.create_model(name).__doc__ or "").count("\n") > 5  # the explanation


@pytest.mark.parametrize("name", ZOO)
def test_parameter_count_equals_torchinfos(name):
    # count_params reads the trace's rows, so torchinfo is an independent check of it
    model = archlab.create_model(name)
    stats = summary(model, input_size=(1, *model.input_shape), verbose=0, device="cpu")
    report = archlab.count_params(name)
    assert report.total_params == stats.total_params
    names = {m: n for n, m in model.named_modules()}
    theirs = {names[i.module]: i.num_params for i in stats.summary_list if i.is_leaf_layer}
    ours = {layer.name: layer.params for layer in report.layers}
    assert ours == theirs  # layer by layer, every leaf layer the forward pass calls


def test_lenet5_parameters_by_hand():
    conv1 = 6 * (1 * 5 * 5) + 6  # 156: padding adds no weights
    conv2 = 16 * (6 * 5 * 5) + 16  # 2,416
    fc1 = 120 * (16 * 5 * 5) + 120  # 48,120: 16 maps of 5×5 after 28 → 14 → 10 → 5
    fc2 = 84 * 120 + 84  # 10,164
    fc3 = 10 * 84 + 10  # 850
    assert archlab.count_params("lenet5").total_params == conv1 + conv2 + fc1 + fc2 + fc3
    assert conv1 + conv2 + fc1 + fc2 + fc3 == 61_706


def _bn(c: int) -> int:
    return 2 * c  # a BatchNorm's weight and bias (its running statistics are buffers)


def test_mobilenet_parameters_by_hand():
    def separable(c_in: int, c_out: int) -> int:
        return 9 * c_in + _bn(c_in) + c_in * c_out + _bn(c_out)  # depthwise, then 1×1

    stem = 16 * 1 * 9 + _bn(16)
    blocks = separable(16, 32) + separable(32, 64) + separable(64, 128) + separable(128, 128)
    head = 128 * 10 + 10
    assert archlab.count_params("mobilenet").total_params == stem + blocks + head == 31_946
    depthwise, pointwise = archlab.create_model("mobilenet").blocks[2][0::3]
    assert depthwise.groups == depthwise.in_channels == 64  # one 3×3 filter per channel
    assert pointwise.kernel_size == (1, 1) and pointwise.out_channels == 128


def test_resnet_parameters_by_hand():
    def block(c_in: int, c_out: int) -> int:
        convs = 9 * c_in * c_out + _bn(c_out) + 9 * c_out * c_out + _bn(c_out)
        # identity when the shape is kept: no parameters; else a 1×1 projection + BN
        shortcut = 0 if c_in == c_out else c_in * c_out + _bn(c_out)
        return convs + shortcut

    stem = 32 * 9 + _bn(32)
    head = 128 * 10 + 10
    total = stem + block(32, 32) + block(32, 64) + block(64, 128) + head
    assert archlab.count_params("resnet").total_params == total == 308_074
    model = archlab.create_model("resnet")
    assert isinstance(model.stage1.shortcut, nn.Identity)
    assert model.stage2.shortcut[0].kernel_size == (1, 1)


def test_nin_has_no_linear_layer():
    model = archlab.create_model("nin")
    assert not any(isinstance(m, nn.Linear) for m in model.modules())


def test_the_zoo_spans_an_order_of_magnitude_in_parameters_and_macs():
    reports = [archlab.count_params(name) for name in ZOO]
    params = [r.total_params for r in reports]
    macs = [r.total_macs for r in reports]
    assert max(params) > 10 * min(params)
    assert max(macs) > 10 * min(macs)


@pytest.mark.parametrize("name", ZOO)
def test_outputs_ten_scores_per_image(name):
    torch.manual_seed(0)
    model = archlab.create_model(name)
    x = torch.randn(4, 1, 28, 28)
    assert model.eval()(x).shape == (4, 10)
    assert model.train()(x).shape == (4, 10)
    channels_last = x.contiguous(memory_format=torch.channels_last)  # as archlab trains
    assert model(channels_last).shape == (4, 10)


@pytest.mark.parametrize("name", ZOO)
def test_a_few_training_steps_reduce_the_loss(name):
    data = learnable_dataset(n_train=32, n_test=1)
    x = (data.train_images.float().unsqueeze(1) / 255 - 0.3) / 0.3
    torch.manual_seed(0)
    model = archlab.create_model(name).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(10):
        loss = nn.functional.cross_entropy(model(x), data.train_labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    # from chance (ln 10 = 2.30) to about half of it in 10 steps: nin is the slowest (0.56×)
    assert losses[-1] < 0.75 * losses[0]


@pytest.mark.parametrize("name", ZOO)
def test_shapes_trace_without_error(name):
    report = archlab.trace_shapes(name)
    assert report.error is None
    assert report.output_shape == (10,)


def test_models_command_lists_the_zoo_with_params_and_macs(capsys):
    from archlab.cli import main

    assert main(["models", "--group", "zoo"]) == 0
    out = capsys.readouterr().out
    for name in ZOO:
        report = archlab.count_params(name)
        line = next(line for line in out.splitlines() if line.startswith(f"{name} "))
        assert f"{report.total_params:,}" in line and f"{report.total_macs:,}" in line
    assert "cnn" not in out


@pytest.mark.parametrize("readme", ["README.md", "benchmarks/README.md"])
def test_the_readme_tables_print_what_count_params_counts(readme):
    from pathlib import Path

    text = (Path(__file__).parent.parent / readme).read_text(encoding="utf-8")
    rows = [line.split("|")[1:4] for line in text.splitlines() if line.startswith("| ")]
    counts = [
        (c[0].strip(), c[1], c[2])
        for c in rows
        if c[0].strip() in archlab.list_models() and re.fullmatch(r"[\d,]+", c[1].strip())
    ]
    assert {name for name, _, _ in counts} >= set(ZOO)
    for name, params, macs in counts:
        report = archlab.count_params(name)
        assert (params.strip(), macs.strip()) == (
            f"{report.total_params:,}",
            f"{report.total_macs:,}",
        ), name
