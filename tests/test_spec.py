"""archlab/models/spec.py: how every command names a model, and how a spec (plus what-ifs)
becomes a module and its name."""

from pathlib import Path

import pytest
import torch
from torch import nn

import archlab
from archlab.models.spec import ModelSpec, create_model, resolve_model

LAB = Path(__file__).parent / "user_lab.py"


def test_a_registered_name():
    spec = ModelSpec.parse("cnn")
    assert spec.registered and spec.base == "cnn" and spec.run_name == "cnn"


def test_what_ifs_name_the_run_folder():
    spec = ModelSpec.parse("cnn", ["layer2.0.padding=1", "fc1.in_features=3136"])
    assert spec.run_name == "cnn+layer2.0.padding=1+fc1.in_features=3136"
    assert spec.label == "cnn with layer2.0.padding=1, fc1.in_features=3136"


def test_a_factory_with_arguments_in_either_spelling_is_one_spec():
    a = ModelSpec.parse("tests.user_lab:small_mlp(hidden=16)")
    b = ModelSpec.parse("tests.user_lab:small_mlp:hidden=16")
    assert a == b and a.run_name == "tests.user_lab.small_mlp-hidden=16"
    assert a.build()[1].out_features == 16


def test_a_file_path_is_normalised(monkeypatch):
    monkeypatch.chdir(LAB.parent)
    assert ModelSpec.parse("./user_lab.py:SmallLeNet") == ModelSpec.parse("user_lab.py:SmallLeNet")


def test_resolve_model_never_changes_the_callers_module():
    net = archlab.create_model("cnn")
    before = {k: v.clone() for k, v in net.state_dict().items()}
    edited, name = resolve_model(net, ["layer2.0.padding=1"])
    assert edited is not net and edited.layer2[0].padding == (1, 1)
    assert net.layer2[0].padding == (0, 0) and name == "FashionCNN"
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())
    same, _ = resolve_model(net)
    assert same is net  # no what-ifs: the module itself


def test_create_model_builds_any_spec_untrained():
    torch.manual_seed(0)
    a = create_model("dnn")
    torch.manual_seed(0)
    b = create_model("dnn")
    assert torch.equal(a.fc1.weight, b.fc1.weight) and a.input_shape == (1, 28, 28)
    assert type(create_model(f"{LAB}:SmallLeNet")).__name__ == "SmallLeNet"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("resnet50", "unknown model 'resnet50'; registered: cnn, dnn"),
        ("nope.py:Net", "nope.py"),
        ("tests.user_lab:small_mlp(hidden=", "small_mlp"),
    ],
)
def test_bad_specs_are_one_line(spec, message):
    with pytest.raises(archlab.ArchlabError, match=message.replace("(", r"\(")) as info:
        create_model(spec)
    assert "\n" not in str(info.value)


def test_a_model_passed_with_what_ifs_is_not_a_spec():
    with pytest.raises(archlab.ArchlabError, match="not list"):
        resolve_model([nn.Linear(1, 1)])
