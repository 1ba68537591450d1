import pytest
import torch

import archlab
from archlab.models import GROUPS

EXPECTED_PARAMS = {"dnn": 235_146, "cnn": 1_475_338}


def test_registry_lists_the_lecture_models():
    assert archlab.list_models("lecture") == ["cnn", "dnn"]


def test_every_model_belongs_to_one_group():
    groups = [archlab.list_models(group) for group in GROUPS]
    assert sorted(name for group in groups for name in group) == archlab.list_models()


@pytest.mark.parametrize("name", archlab.list_models())
def test_every_model_builds_and_classifies_a_batch(name):
    model = archlab.create_model(name).eval()
    assert model(torch.zeros(3, *model.input_shape)).shape == (3, 10)
    assert archlab.models.model_description(name)


@pytest.mark.parametrize("name", archlab.list_models("lecture"))
def test_parameter_counts_are_exact(name):
    model = archlab.create_model(name)
    assert sum(p.numel() for p in model.parameters()) == EXPECTED_PARAMS[name]


def test_cnn_layers_are_the_lectures():
    cnn = archlab.create_model("cnn")
    assert cnn.fc1.in_features == 2304 == 64 * 6 * 6
    assert type(cnn.drop).__name__ == "Dropout"  # not Dropout2d on a flat tensor
    assert cnn.layer1[0].padding == (1, 1) and cnn.layer2[0].padding == (0, 0)


def test_unknown_model_lists_the_known_ones():
    with pytest.raises(
        archlab.ArchlabError, match="unknown model 'resnet50'; registered: cnn, dnn, lenet5"
    ):
        archlab.create_model("resnet50")
