"""archlab/models/whatif.py: --set rebuilds one layer with one argument changed, or
removes it (LAYER=Identity), and says so in one line when it cannot."""

import pytest
import torch
from torch import nn

import archlab
from archlab.models.whatif import set_hyperparameter


def test_one_argument_changed_the_others_kept():
    net = archlab.create_model("cnn")
    set_hyperparameter(net, "layer2.0.padding=1")
    conv = net.layer2[0]
    assert conv.padding == (1, 1)
    assert (conv.in_channels, conv.out_channels, conv.kernel_size) == (32, 64, (3, 3))
    assert conv.weight.shape == (64, 32, 3, 3)


def test_a_changed_size_rebuilds_the_weights():
    net = archlab.create_model("cnn")
    set_hyperparameter(net, "fc1.in_features=3136")
    assert net.fc1.weight.shape == (600, 3136)


def test_identity_removes_a_layer():
    net = archlab.create_model("cnn")
    set_hyperparameter(net, "layer1.1=Identity")
    assert isinstance(net.layer1[1], nn.Identity)
    assert net(torch.zeros(2, 1, 28, 28)).shape == (2, 10)


@pytest.mark.parametrize(
    ("assignment", "message"),
    [
        ("nope.padding=1", "no layer 'nope'"),
        ("layer2.0.nonsense=1", "nonsense"),
        ("layer2.0.padding", "expected LAYER.ARGUMENT=VALUE"),
    ],
)
def test_bad_what_ifs_are_one_line(assignment, message):
    with pytest.raises(archlab.ArchlabError, match=message) as info:
        set_hyperparameter(archlab.create_model("cnn"), assignment)
    assert "\n" not in str(info.value)
