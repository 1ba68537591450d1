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
        # a yes/no argument takes True or False (any case), nothing else: 'no' and 2 once
        # built bias=True under a run named bias=no (outside test)
        ("fc1.bias=no", r"fc1.bias=no: Linear's bias is True or False"),
        ("fc1.bias=2", r"fc1.bias=2: Linear's bias is True or False"),
        ("layer1.3.ceil_mode=yes", "MaxPool2d's ceil_mode is True or False"),
        # a layer swapped for another: one built without arguments (outside test: the
        # message listed no arguments at all)
        ("layer1.2=Conv2d", r"'Conv2d' is no torch.nn activation, dropout or Identity"),
        ("layer1.2=Linear", r"nn.Linear needs arguments; a layer is replaced only by one"),
        ("layer1.2=Gelu", r"'Gelu' is no torch.nn activation, dropout or Identity"),
        ("layer1.2=ModuleList", r"'ModuleList' is no torch.nn activation"),  # no container
        ("layer1.2=CrossEntropyLoss", r"'CrossEntropyLoss' is no torch.nn activation"),
    ],
)
def test_bad_what_ifs_are_one_line(assignment, message):
    with pytest.raises(archlab.ArchlabError, match=message) as info:
        set_hyperparameter(archlab.create_model("cnn"), assignment)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("text", ["false", "False", "FALSE"])
def test_a_yes_no_argument_reads_true_and_false_in_any_case(text):
    net = set_hyperparameter(archlab.create_model("cnn"), f"fc1.bias={text}")
    assert net.fc1.bias is None
    by_hand = nn.Linear(2304, 600, bias=False)
    assert sum(p.numel() for p in net.fc1.parameters()) == by_hand.weight.numel()
    pooled = set_hyperparameter(archlab.create_model("cnn"), "layer1.3.ceil_mode=true")
    assert pooled.layer1[3].ceil_mode is True


def test_a_layer_swapped_for_an_activation():
    net = set_hyperparameter(archlab.create_model("cnn"), "layer1.2=GELU")
    assert isinstance(net.layer1[2], nn.GELU)
    assert net(torch.zeros(2, 1, 28, 28)).shape == (2, 10)
    gone = set_hyperparameter(archlab.create_model("cnn"), "fc1=Identity")
    with pytest.raises(archlab.ArchlabError, match="it takes no argument archlab can change"):
        set_hyperparameter(gone, "fc1.in_features=3136")


@pytest.mark.parametrize(
    ("assignment", "code"),
    [
        ("fc1.out_features=0", 2),  # out of range: usage, as --help's exit codes say
        ("layer2.0.groups=5", 2),  # torch's constructor refuses it: the value is wrong
    ],
)
def test_a_value_out_of_range_exits_2(assignment, code):
    with pytest.raises(archlab.ArchlabError) as info:
        set_hyperparameter(archlab.create_model("cnn"), assignment)
    assert info.value.exit_code == code


def test_weights_too_big_for_memory_are_the_machines_refusal(monkeypatch):
    # outside test: 'Linear rejects it: [enforce fail at alloc_cpu.cpp:127] ...' (exit 1,
    # as if the value were illegal)
    def refuse(self, in_features, out_features, bias=True, device=None, dtype=None):
        raise RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate")

    net = archlab.create_model("cnn")
    monkeypatch.setattr(nn.Linear, "__init__", refuse)
    with pytest.raises(archlab.ArchlabError, match="would need more memory than") as info:
        set_hyperparameter(net, "fc1.out_features=100000000")
    assert info.value.exit_code == 1 and "alloc_cpu" not in str(info.value)
