"""The analytic rules against torch itself, over many random hyper-parameters."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from archlab.trace.formulas import ShapeError, flatten_shape, infer_step, reshape_shape

small = st.integers(1, 4)


def _torch_shape(layer: nn.Module, shape: tuple[int, ...]):
    """The real output shape on the CPU, or None where torch raises.

    An empty output counts as a failure too: torch raises "Output size is too small" for a
    size-0 transposed convolution on most code paths, but one (dilated kernels) returns an
    empty tensor instead; archlab treats both as a map that shrank to nothing.
    """
    try:
        with torch.no_grad():
            out = tuple(layer(torch.zeros(shape)).shape)
    except RuntimeError:
        return None
    return None if 0 in out else out


def _archlab_shape(layer: nn.Module, shape: tuple[int, ...]):
    try:
        return infer_step(layer, shape).output
    except ShapeError:
        return None


def _agree(layer: nn.Module, shape: tuple[int, ...]) -> None:
    assert _archlab_shape(layer, shape) == _torch_shape(layer, shape), (layer, shape)


@settings(max_examples=300, deadline=None)
@given(
    h=st.integers(1, 16),
    w=st.integers(1, 16),
    k=st.integers(1, 5),
    s=small,
    p=st.integers(0, 3),
    d=st.integers(1, 3),
)
def test_conv2d_matches_torch(h, w, k, s, p, d):
    _agree(nn.Conv2d(2, 3, k, stride=s, padding=p, dilation=d), (1, 2, h, w))


@settings(max_examples=300, deadline=None)
@given(
    h=st.integers(1, 16),
    w=st.integers(1, 16),
    k=st.integers(1, 5),
    s=st.integers(0, 4),
    p=st.integers(0, 3),
    d=st.integers(1, 3),
    ceil=st.booleans(),
)
def test_maxpool2d_matches_torch(h, w, k, s, p, d, ceil):
    stride = None if s == 0 else s  # 0 stands for "default: the kernel size"
    _agree(nn.MaxPool2d(k, stride=stride, padding=p, dilation=d, ceil_mode=ceil), (1, 2, h, w))


@settings(max_examples=300, deadline=None)
@given(
    h=st.integers(1, 16),
    w=st.integers(1, 16),
    k=st.integers(1, 5),
    s=st.integers(0, 4),
    p=st.integers(0, 3),
    ceil=st.booleans(),
)
def test_avgpool2d_matches_torch(h, w, k, s, p, ceil):
    stride = None if s == 0 else s
    _agree(nn.AvgPool2d(k, stride=stride, padding=p, ceil_mode=ceil), (1, 2, h, w))


@settings(max_examples=300, deadline=None)
@given(
    h=st.integers(1, 10),
    w=st.integers(1, 10),
    k=st.integers(1, 5),
    s=small,
    p=st.integers(0, 4),
    d=st.integers(1, 3),
    op=st.integers(0, 3),
)
def test_convtranspose2d_matches_torch(h, w, k, s, p, d, op):
    try:
        layer = nn.ConvTranspose2d(2, 3, k, stride=s, padding=p, dilation=d, output_padding=op)
    except ValueError:
        return  # rejected at construction; nothing to trace
    _agree(layer, (1, 2, h, w))


@settings(max_examples=150, deadline=None)
@given(
    n=st.integers(1, 20),
    k=st.integers(1, 5),
    s=small,
    p=st.integers(0, 3),
    ceil=st.booleans(),
    kind=st.sampled_from(["conv", "max", "avg"]),
)
def test_1d_layers_match_torch(n, k, s, p, ceil, kind):
    layer = {
        "conv": lambda: nn.Conv1d(2, 3, k, stride=s, padding=p),
        "max": lambda: nn.MaxPool1d(k, stride=s, padding=p, ceil_mode=ceil),
        "avg": lambda: nn.AvgPool1d(k, stride=s, padding=p, ceil_mode=ceil),
    }[kind]()
    _agree(layer, (1, 2, n))


@pytest.mark.parametrize(
    "layer",
    [
        nn.AdaptiveAvgPool2d((3, None)),
        nn.AdaptiveMaxPool2d(2),
        nn.AdaptiveAvgPool1d(4),
        nn.BatchNorm2d(2),
        nn.ReLU(),
        nn.Dropout(0.5),
        nn.Flatten(),
        nn.Flatten(2),
        nn.Conv2d(2, 4, 3, padding="same"),
        nn.Conv2d(2, 4, 3, padding="valid"),
        nn.GroupNorm(1, 2),
    ],
    ids=repr,
)
def test_other_layers_match_torch(layer):
    shape = (1, 2, 9, 7) if "1d" not in type(layer).__name__ else (1, 2, 9)
    _agree(layer, shape)


def test_channel_and_feature_mismatches_are_errors():
    with pytest.raises(ShapeError, match="expects 3 input channels but receives 2"):
        infer_step(nn.Conv2d(3, 4, 3), (1, 2, 8, 8))
    with pytest.raises(ShapeError, match="expects 2304 input features but receives 3136"):
        infer_step(nn.Linear(2304, 600), (1, 3136))
    with pytest.raises(ShapeError, match="expects 64 channels but receives 32"):
        infer_step(nn.BatchNorm2d(64), (1, 32, 4, 4))


def test_conv_formula_is_written_out():
    step = infer_step(nn.Conv2d(1, 32, 3, padding=1), (1, 1, 28, 28))
    assert step.output == (1, 32, 28, 28)
    assert step.formula == "H,W: ⌊(28 + 2·1 − 1·(3−1) − 1)/1⌋ + 1 = 28"
    step = infer_step(nn.Conv2d(1, 1, (3, 1)), (1, 1, 5, 4))
    assert (
        step.formula
        == "H: ⌊(5 + 2·0 − 1·(3−1) − 1)/1⌋ + 1 = 3; W: ⌊(4 + 2·0 − 1·(1−1) − 1)/1⌋ + 1 = 4"
    )


def test_ceil_mode_drops_a_window_that_starts_in_the_padding():
    # 5 + 2·1 − 2 = 5, ⌈5/2⌉ + 1 = 4, but the 4th window would start at 6 ≥ 5 + 1
    layer = nn.MaxPool2d(2, stride=2, padding=1, ceil_mode=True)
    step = infer_step(layer, (1, 1, 5, 5))
    assert step.output == _torch_shape(layer, (1, 1, 5, 5)) == (1, 1, 3, 3)
    assert "the last window would start in the padding" in step.formula


def test_reshape_and_flatten():
    assert flatten_shape((1, 64, 6, 6), 1).output == (1, 2304)
    assert flatten_shape((1, 64, 6, 6), 1).formula == "64·6·6 = 2304"
    assert reshape_shape((1, 1, 28, 28), (-1, 784)).output == (1, 784)
    with pytest.raises(ShapeError, match="1024 values per image"):
        reshape_shape((1, 1, 32, 32), (-1, 784))
