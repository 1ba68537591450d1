"""archlab/training/whiten.py: the fast recipe's whitening init of the first convolution,
checked against what whitening means, computed here without it (numpy's covariance of
the filters' outputs), and where it must leave a model alone."""

import numpy as np
import pytest
import torch
from torch import nn

import archlab
from archlab.training.whiten import whiten_first_conv, whitening_filters
from tests.synthetic import learnable_dataset

QUIET = {"progress": False, "figures": False}


def _images(n=64, size=12, seed=0):
    """Correlated neighbouring pixels, as in photographs: smoothed noise."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 1, size + 2, size + 2, generator=g)
    return nn.functional.avg_pool2d(x, 3, stride=1)  # (n, 1, size, size)


def _outputs(x, filters):
    """The filters applied to every full patch of x, one column per filter (numpy)."""
    out = nn.functional.conv2d(x.double(), filters.double())  # no padding: whole patches
    return out.permute(0, 2, 3, 1).reshape(-1, filters.shape[0]).numpy()


@pytest.mark.parametrize(("channels", "kernel"), [(1, 3), (3, 2), (2, (3, 1))])
def test_the_filters_whiten_the_patches(channels, kernel):
    """With eps = 0 the filters' outputs over the patches have the identity covariance
    (unit variance, uncorrelated), largest variance first; with eps they are λ/(λ + eps)."""
    x = torch.cat([_images(seed=c) for c in range(channels)], 1)
    conv = nn.Conv2d(channels, 8, kernel)
    d = conv.weight[0].numel()
    filters, mean = whitening_filters(x, conv, d, eps=0.0)
    covariance = np.cov(_outputs(x, filters), rowvar=False, bias=True)
    np.testing.assert_allclose(covariance, np.eye(d), atol=1e-6)
    # the patches' mean, by numpy
    patches = nn.functional.unfold(x.double(), conv.kernel_size).transpose(1, 2).reshape(-1, d)
    np.testing.assert_allclose(mean.numpy(), patches.numpy().mean(0), atol=1e-12)
    # eps damps the faint directions only, the loudest first
    damped, _ = whitening_filters(x, conv, d, eps=1e-3)
    variances = np.var(_outputs(x, damped), axis=0)
    eigen = np.sort(np.linalg.eigvalsh(np.cov(patches.numpy(), rowvar=False, bias=True)))[::-1]
    np.testing.assert_allclose(variances, eigen / (eigen + 1e-3), rtol=1e-6)


def test_the_first_filters_and_their_negatives_the_rest_kept():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.Flatten())
    before = net[0].weight.detach().clone()
    x = _images(size=28)
    line = whiten_first_conv(net, x)
    w = net[0].weight.detach()
    assert torch.equal(w[9:18], -w[:9])  # 9 directions of a 3×3 patch, each both ways
    assert torch.equal(w[18:], before[18:])  # the rest keep their random init
    expected, _ = whitening_filters(x, net[0], 9)
    torch.testing.assert_close(w[:9], expected.float())
    assert "whitening init: 18 of the 32 filters of 0 (Conv2d) start as the 9" in line
    # the bias centres the whitened outputs: mean 0 over the patches
    out = nn.functional.conv2d(x, w[:18], net[0].bias[:18].detach())
    assert out.mean((0, 2, 3)).abs().max() < 1e-4


def test_fewer_filters_than_directions_keep_the_loudest():
    net = nn.Sequential(nn.Conv2d(1, 4, 3))
    x = _images()
    whiten_first_conv(net, x)
    loudest, _ = whitening_filters(x, net[0], 2)
    torch.testing.assert_close(net[0].weight.detach()[:2], loudest.float())
    variances = np.var(_outputs(x, net[0].weight.detach()[:2]), axis=0)
    assert (variances > 0.9).all()  # whitened: unit variance up to eps's damping


def _frozen_bias():
    net = nn.Sequential(nn.Conv2d(1, 8, 3))
    net[0].bias.requires_grad_(False)
    return net


class _WSConv(nn.Conv2d):
    def forward(self, x):
        w = self.weight - self.weight.mean((1, 2, 3), keepdim=True)
        return self._conv_forward(x, w, self.bias)


class _Standardised(nn.Sequential):
    def __init__(self):
        super().__init__(_WSConv(1, 8, 3), nn.Conv2d(8, 8, 3))


class _Noisy(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 8, 3).requires_grad_(False)

    def forward(self, x):
        h = self.conv(x)
        return (h + torch.randn_like(h)).flatten(1)


class _Upsampled(nn.Module):
    def __init__(self):
        super().__init__()
        self.up = nn.Upsample(scale_factor=2)
        self.conv = nn.Conv2d(1, 8, 3)

    def forward(self, x):
        return self.conv(self.up(x)).flatten(1)


@pytest.mark.parametrize(
    ("net", "says"),
    [
        (nn.Sequential(nn.Flatten(), nn.Linear(144, 10)), "no nn.Conv2d reads the image"),
        (_Upsampled(), "does not read the image itself"),
        (nn.Sequential(nn.Conv2d(1, 4, 3), nn.Conv2d(4, 4, 3, groups=2)), None),  # the first
        # a frozen first layer is somebody's choice (pretrained filters?): kept
        (nn.Sequential(nn.Conv2d(1, 8, 3).requires_grad_(False)), "is frozen"),
        # a frozen bias alone keeps the conv as built (outside test: it was overwritten)
        (_frozen_bias(), "is frozen"),
        # a subclass may use its filters otherwise (weight standardisation): left alone,
        # and named as what it is (outside test: the next conv was called the first)
        (_Standardised(), "0 (_WSConv), the first nn.Conv2d, is a subclass of it"),
        # a model that draws noise in eval mode: the probe's draws are its own
        (_Noisy(), "is frozen"),
        (nn.Sequential(nn.Conv2d(1, 1, 3)), "has one filter"),
        # padding lets a kernel wider than the image run; no whole patch to measure
        (nn.Sequential(nn.Conv2d(1, 4, 15, padding=7)), "has no whole patch in the image"),
    ],
)
def test_models_it_cannot_whiten_are_left_alone(net, says):
    torch.manual_seed(0)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    state = torch.get_rng_state()
    line = whiten_first_conv(net, _images())
    assert torch.equal(torch.get_rng_state(), state)  # no random draw: the run's batches stay
    if says is None:  # these it can: only the first conv changes
        assert not torch.equal(net[0].weight, before["0.weight"])
        return
    assert says in line and line.endswith("the model starts as it was built")
    for key, value in net.state_dict().items():
        assert torch.equal(value, before[key]), key


def test_the_fast_recipe_whitens_a_fresh_run_only(tmp_path):
    data = learnable_dataset(n_train=300, n_test=100)
    lines = []
    kw = {"data": data, "recipe": "fast", "epochs": 2, "batch_size": 50, **QUIET}
    run = archlab.train("cnn", runs=tmp_path, max_iterations=7, log=lines.append, **kw)
    said = "cnn: whitening init: 18 of the 32 filters of layer1.0 (Conv2d) start as the 9"
    assert next(x for x in lines if "whitening init" in x).startswith(said)
    # after the run's first line, which names the recipe (outside test: it came before it,
    # unnamed, under the previous model's last line)
    first = next(k for k, x in enumerate(lines) if "recipe fast" in x)
    assert lines[first + 1].startswith(said)
    assert run.history["whitening"].startswith(said.removeprefix("cnn: "))  # kept with it
    lines.clear()
    resumed = archlab.train("cnn", data=data, runs=tmp_path, resume=True, log=lines.append, **QUIET)
    assert lines and not any("whitening init" in x for x in lines)  # the checkpoint has them
    assert resumed.history["whitening"] == run.history["whitening"]
    lines.clear()
    archlab.train("cnn", data=data, runs=tmp_path / "careful", epochs=1, log=lines.append, **QUIET)
    assert lines and not any("whitening init" in x for x in lines)  # the lecture's: at random


def test_a_wide_kernel_sums_its_patches_in_chunks(monkeypatch):
    """Above ONE_PASS_BYTES the covariance is summed over chunks of images (an 11×11
    kernel held 2.4 GB at once: outside test); the filters are the one-pass ones."""
    from archlab.training import whiten

    x = _images(n=40, size=16)
    conv = nn.Conv2d(1, 8, 5)
    whole, whole_mean = whitening_filters(x, conv, 4)
    monkeypatch.setattr(whiten, "ONE_PASS_BYTES", 16 * 16 * 25 * 8 * 3)  # 3 images a chunk
    chunked, chunked_mean = whitening_filters(x, conv, 4)
    torch.testing.assert_close(chunked, whole)
    torch.testing.assert_close(chunked_mean, whole_mean)
