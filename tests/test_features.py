"""archlab/analysis/features.py: a model's kernels and the activations one image makes,
on untrained models (the trained-run versions are in test_explain.py)."""

import pytest
import torch
from torch import nn

import archlab
from archlab.analysis.features import activation_points, capture


def test_filters_are_the_layers_own_weights():
    net = archlab.create_model("cnn")
    report = archlab.filters(net, "layer2.0")
    assert torch.equal(report.weights, net.layer2[0].weight)
    assert report.weights is not net.layer2[0].weight  # a copy: the report cannot change it
    assert report.layers == ["layer1.0", "layer2.0"]


def test_activations_of_an_image_are_the_blocks_outputs():
    net = archlab.create_model("cnn").eval()
    image = torch.randint(0, 256, (28, 28), dtype=torch.uint8)
    report = archlab.activations(net, image=image)
    x = image.float().div(255).view(1, 1, 28, 28)
    with torch.no_grad():
        expected = net.layer2(net.layer1(x))[0]
    assert torch.allclose(report.maps["layer2"], expected)
    assert report.index is None and "the image" in report.title


def test_an_mlps_points_are_its_hidden_layers():
    points = activation_points(archlab.create_model("dnn"))
    assert [p[2] for p in points] == ["into fc2", "into fc3"]  # after each hidden ReLU


def test_capture_removes_its_hooks_even_when_forward_fails():
    net = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(5, 2))
    with pytest.raises(RuntimeError), capture(net, [("0", "output", "a")]):
        net(torch.zeros(1, 4))
    assert not any(m._forward_hooks for m in net.modules())
