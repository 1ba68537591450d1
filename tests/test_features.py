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


# where each registered model is shown, as the hooked forward pass found them before the
# points were read off the trace's rows
POINTS = {
    "cnn": ["layer1.3", "layer2.3"],
    "dnn": ["fc2", "fc3"],
    "lenet5": ["features.2", "features.5"],
    "mobilenet": ["stem.2", "blocks.3.5"],
    "nin": ["features.1", "features.3", "classifier.1"],
    "resnet": ["stem.3", "stage1.relu2", "stage2.relu2", "stage3.relu2"],
    "speednet": ["stage1.3", "stage2.3", "stage3.2"],  # each stage's ReLU
    "vgg": ["features.0.6", "features.1.6", "features.2.6"],
}


@pytest.mark.parametrize("name", archlab.list_models())
def test_activation_points_of_every_registered_model(name):
    points = activation_points(archlab.create_model(name))
    assert [p[0] for p in points] == POINTS[name]


def test_activation_points_need_a_model_that_runs():
    broken = nn.Sequential(nn.Conv2d(1, 4, 3), nn.Flatten(), nn.Linear(5, 2))
    with pytest.raises(archlab.ArchlabError, match="expects 5 input features but receives 2704"):
        activation_points(broken)


def test_containers_looped_over_together_are_not_blocks():
    """An nn.ModuleList of convs and one of norms, called in turn: neither is a block
    whose end is a stage of the net (both were shown as blocks, norms first)."""

    class Looped(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.convs = torch.nn.ModuleList(
                [torch.nn.Conv2d(1 if i == 0 else 4, 4, 3, padding=1) for i in range(3)]
            )
            self.norms = torch.nn.ModuleList([torch.nn.BatchNorm2d(4) for _ in range(3)])
            self.pools = torch.nn.ModuleList([torch.nn.MaxPool2d(2) for _ in range(2)])
            self.head = torch.nn.Linear(4 * 7 * 7, 10)

        def forward(self, x):
            for i, (conv, norm) in enumerate(zip(self.convs, self.norms, strict=True)):
                x = torch.relu(norm(conv(x)))
                if i < 2:
                    x = self.pools[i](x)
            return self.head(x.flatten(1))

    points = [name for name, _, _ in activation_points(Looped())]
    assert points == ["pools.0", "pools.1", "norms.2"]
