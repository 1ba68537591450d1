"""predict_logits: the same numbers as the model's own forward pass, and the model as it was."""

import pytest
import torch

import archlab
from archlab.training.predict import predict_logits, to_input


@pytest.mark.parametrize("name", ["cnn", "resnet", "dnn"])
@pytest.mark.parametrize("batch_size", [7, 250])
def test_logits_equal_a_plain_forward_pass_and_the_model_is_restored(name, batch_size):
    torch.manual_seed(0)
    model = archlab.create_model(name).train()
    images = torch.randint(0, 256, (19, 28, 28), dtype=torch.uint8)
    normalize = (0.29, 0.35)
    before = {k: (v.clone(), v.stride()) for k, v in model.state_dict().items()}
    logits = predict_logits(model, images, normalize, batch_size=batch_size)
    model.eval()
    with torch.no_grad():
        expected = model(to_input(images, normalize))
    model.train()
    assert logits.shape == (19, 10)
    torch.testing.assert_close(logits, expected, rtol=1e-4, atol=1e-5)
    assert model.training  # the mode it came in
    for key, value in model.state_dict().items():  # the values and the NCHW layout
        assert torch.equal(value, before[key][0]) and value.stride() == before[key][1], key


def test_a_channels_last_model_stays_channels_last():
    model = archlab.create_model("cnn").to(memory_format=torch.channels_last)
    predict_logits(model, torch.zeros(3, 28, 28, dtype=torch.uint8))
    assert model.layer1[0].weight.is_contiguous(memory_format=torch.channels_last)


def test_no_images_no_logits():
    assert predict_logits(archlab.create_model("dnn"), torch.zeros(0, 28, 28)).numel() == 0


def test_the_pass_runs_with_nhwc_weights_even_with_one_input_channel():
    # a 32×1×3×3 kernel counts as contiguous in both layouts; only NHWC strides make the
    # first convolution take oneDNN's fast path (tested here by the strides it sees)
    model = archlab.create_model("cnn")
    conv = model.layer1[0]
    nhwc = conv.weight.to(memory_format=torch.channels_last).stride()
    assert nhwc != conv.weight.stride()
    seen = []
    conv.register_forward_pre_hook(lambda m, args: seen.append(m.weight.stride()))
    predict_logits(model, torch.zeros(3, 28, 28, dtype=torch.uint8))
    assert seen and all(strides == nhwc for strides in seen)  # the layout check and the pass
    assert conv.weight.stride() != nhwc  # and back as it was


def test_a_model_that_fails_in_both_layouts_is_not_blamed_on_the_layout():
    class Broken(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(1, 2, 3)

        def forward(self, x):
            raise ValueError("broken either way")

    from archlab.training.predict import nhwc_runs

    assert nhwc_runs(Broken(), torch.zeros(2, 1, 28, 28))  # NHWC is not what breaks it
