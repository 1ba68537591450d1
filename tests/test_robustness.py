"""Robustness under FGSM and PGD, checked against implementations that are not archlab's:
a direct cross-entropy FGSM/PGD written here, and torchattacks (a test-only dependency)."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import archlab
from archlab.analysis import robustness as R
from archlab.errors import ArchlabError
from tests.outside_models import OUTSIDE_MODELS

NORM = (0.2860, 0.3530)  # the careful recipe's (mean, std)


def _net(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(1, 4, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(4 * 13 * 13, 10)
    ).eval()


def _data(n=48, seed=0):
    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, 28, 28), generator=g, dtype=torch.uint8)
    labels = torch.randint(0, 10, (n,), generator=g)
    return images, labels


def _normalised(pixels, norm):
    return (pixels - norm[0]) / norm[1]


def _direct_fgsm(model, pixels, labels, eps, norm):
    """Goodfellow et al.: x' = clip(x + ε·sign(∇ₓ CE(f(x), y)), 0, 1), written out."""
    x = pixels.clone().requires_grad_(True)
    loss = F.cross_entropy(model(_normalised(x, norm)), labels)
    loss.backward()
    return (pixels + eps * x.grad.sign()).clamp(0, 1)


def _direct_pgd(model, pixels, labels, eps, steps, alpha, norm, start=None):
    """Madry et al.: from ``start`` (a point of the ball), ascend the sign of the gradient,
    project onto the ε-ball around the image and onto [0, 1] after each step."""
    x = pixels.clone() if start is None else (pixels + start).clamp(0, 1)
    for _ in range(steps):
        x = x.detach().requires_grad_(True)
        F.cross_entropy(model(_normalised(x, norm)), labels).backward()
        x = x.detach() + alpha * x.grad.sign()
        x = torch.min(torch.max(x, pixels - eps), pixels + eps).clamp(0, 1)
    return x


def _pixels(images):
    return images.unsqueeze(1).float() / 255


def test_fgsm_equals_the_direct_cross_entropy_step():
    model, (images, labels) = _net(), _data()
    x = _pixels(images)
    for eps in (0.02, 0.1, 0.3):
        ours = R.fgsm(model, x, labels, eps, NORM)
        assert torch.equal(ours, _direct_fgsm(model, x, labels, eps, NORM))
        assert float((ours - x).abs().max()) <= eps + 1e-6  # ε in pixel units


def test_pgd_without_random_start_equals_the_direct_loop():
    model, (images, labels) = _net(), _data()
    x = _pixels(images)
    ours = R.pgd(model, x, labels, 0.1, 7, random_start=False, normalize=NORM)
    direct = _direct_pgd(model, x, labels, 0.1, 7, 2.5 * 0.1 / 7, NORM)
    assert torch.allclose(ours, direct, atol=1e-6)
    assert float((ours - x).abs().max()) <= 0.1 + 1e-6
    assert float(ours.min()) >= 0 and float(ours.max()) <= 1


def test_pgd_starts_from_a_uniform_point_of_the_ball():
    model, (images, labels) = _net(), _data()
    x = _pixels(images)
    g = torch.Generator().manual_seed(5)
    start = torch.empty(x.shape).uniform_(-0.1, 0.1, generator=g)
    direct = _direct_pgd(model, x, labels, 0.1, 3, 0.02, NORM, start=start)
    ours = R.pgd(
        model,
        x,
        labels,
        0.1,
        3,
        step_size=0.02,
        generator=torch.Generator().manual_seed(5),
        normalize=NORM,
    )
    assert torch.allclose(ours, direct, atol=1e-6)
    without = R.pgd(model, x, labels, 0.1, 3, step_size=0.02, random_start=False, normalize=NORM)
    assert not torch.equal(ours, without)


class _OnPixels(nn.Module):
    """A model on normalised input, wrapped to take pixels in [0, 1] (torchattacks' way)."""

    def __init__(self, inner, norm):
        super().__init__()
        self.inner, self.norm = inner, norm

    def forward(self, p):
        return self.inner(p if self.norm is None else _normalised(p, self.norm))


@pytest.mark.parametrize("norm", [None, NORM])
def test_attacks_equal_torchattacks_exactly(norm):
    torchattacks = pytest.importorskip("torchattacks")
    model, (images, labels) = _net(), _data()
    x = _pixels(images)
    wrapped = _OnPixels(model, norm)
    for eps in (0.05, 0.2):
        theirs = torchattacks.FGSM(wrapped, eps)(x, labels)
        assert torch.equal(R.fgsm(model, x, labels, eps, norm), theirs)
        alpha = 2.5 * eps / 10
        ours = R.pgd(model, x, labels, eps, 10, random_start=False, normalize=norm)
        pgd = torchattacks.PGD(wrapped, eps=eps, alpha=alpha, steps=10, random_start=False)
        assert torch.equal(ours, pgd(x, labels))
        # with the random start: the same uniform draw (torchattacks uses the global RNG)
        g = torch.Generator().manual_seed(3)
        ours = R.pgd(model, x, labels, eps, 10, generator=g, normalize=norm)
        torch.manual_seed(3)
        pgd = torchattacks.PGD(wrapped, eps=eps, alpha=alpha, steps=10, random_start=True)
        assert torch.equal(ours, pgd(x, labels))


def _accuracy(model, pixels, labels, norm):
    with torch.no_grad():
        return float((model(_normalised(pixels, norm)).argmax(1) == labels).float().mean())


def test_robustness_of_model_counts_the_direct_attacks():
    model, (images, _) = _net(1), _data(60)
    x = _pixels(images)
    with torch.no_grad():
        labels = model(_normalised(x, NORM)).argmax(1)
    labels[::4] = (labels[::4] + 1) % 10  # a quarter wrong when clean
    eps = [0.0, 0.03, 0.1]
    result = R.robustness_of_model(
        model, images, labels, normalize=NORM, eps=eps, pgd_steps=5, random_start=False, flips=1
    )
    for e, fg, pg in zip(eps, result.fgsm, result.pgd, strict=True):
        assert fg == _accuracy(model, _direct_fgsm(model, x, labels, e, NORM), labels, NORM)
        adv = _direct_pgd(model, x, labels, e, 5, 2.5 * e / 5, NORM)
        assert pg == _accuracy(model, adv, labels, NORM)
    assert result.fgsm[0] == result.pgd[0] == 0.75
    flip = result.flips[0]
    assert flip.before != flip.after and flip.eps in eps[1:]  # exactly an ε given
    assert float(flip.image.max()) <= 1 and float(flip.image.min()) >= 0  # pixel units
    assert float((flip.adversarial - flip.image).abs().max()) <= flip.eps + 1e-6


def test_eps_is_in_pixel_units_whatever_the_normalisation():
    """The same function of the pixels, once as a model on normalised input and once as a
    model on raw pixels, is exactly as robust: ε does not depend on the recipe."""
    model, (images, labels) = _net(2), _data(40)

    kwargs = {"eps": [0.05, 0.2], "pgd_steps": 3, "flips": 0}
    a = R.robustness_of_model(model, images, labels, normalize=NORM, **kwargs)
    b = R.robustness_of_model(_OnPixels(model, NORM), images, labels, normalize=None, **kwargs)
    assert (a.fgsm, a.pgd) == (b.fgsm, b.pgd)


def test_pgd_with_enough_steps_is_at_least_as_strong_as_fgsm():
    model, (images, _) = _net(3), _data(200, seed=1)
    x = _pixels(images)
    with torch.no_grad():
        labels = model(_normalised(x, NORM)).argmax(1)  # all right when clean
    result = R.robustness_of_model(
        model, images, labels, normalize=NORM, eps=[0.01, 0.03, 0.1], pgd_steps=20, flips=0
    )
    assert all(p <= f for p, f in zip(result.pgd, result.fgsm, strict=True)), result
    assert result.fgsm[-1] < 1  # the attack does something


def test_an_image_wrong_from_the_start_is_never_a_flip():
    model, (images, _) = _net(1), _data(30)
    x = _pixels(images)
    with torch.no_grad():
        labels = model(_normalised(x, NORM)).argmax(1)
    labels[:10] = (labels[:10] + 1) % 10  # wrong when clean
    result = R.robustness_of_model(
        model, images, labels, normalize=NORM, eps=[0.3], pgd_steps=1, flips=30
    )
    assert result.flips and all(f.index >= 10 for f in result.flips)
    assert all(f.eps == 0.3 for f in result.flips)


def test_the_attack_ascends_the_cross_entropy():
    model, (images, labels) = _net(), _data(32)
    before, after = R.loss_rises(model, _pixels(images), labels, 0.05, NORM)
    assert after > before


class _Argmax(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(784, 10)

    def forward(self, x):
        return F.one_hot(self.fc(x.flatten(1)).argmax(1), 10).float()


class _Flat(nn.Module):
    """Constant logits that still depend on the input in the graph: gradient zero."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(784, 10)

    def forward(self, x):
        return self.fc(x.flatten(1)) * 0 + torch.arange(10.0)


def test_a_model_without_gradient_is_one_clear_error():
    images, labels = _data(8)
    with pytest.raises(ArchlabError, match="no gradient"):
        R.robustness_of_model(_Argmax(), images, labels, eps=[0.1], pgd_steps=2, model_name="am")


def test_zero_input_gradients_are_reported_as_gradient_masking():
    images, labels = _data(8)
    with pytest.warns(RuntimeWarning, match="gradient masking"):
        result = R.robustness_of_model(_Flat(), images, labels, eps=[0, 0.3], pgd_steps=2)
    assert result.masked
    report = R.Robustness([0, 0.3], 8, 2, [result])
    assert "gradient masking" in str(report)


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("eps", [math.nan]),
        ("eps", [math.inf]),
        ("eps", [-0.1]),
        ("eps", [1.5]),
        ("eps", []),
        ("eps", "0.1"),
        ("pgd_steps", 0),
        ("pgd_steps", -1),
        ("pgd_steps", 10**9),
        ("images", 0),
        ("images", 10**9),
        ("seed", 10**30),
        ("seed", -1),
        ("step_size", 0.0),
        ("step_size", math.nan),
    ],
)
def test_options_out_of_range_are_refused_by_the_library(option, value):
    kwargs = {"eps": [0.1], option: value}
    with pytest.raises(ArchlabError, match=option):
        R.check_attack_options(**kwargs)
    with pytest.raises(ArchlabError, match=option):  # before any run is loaded
        archlab.attack(["no-such-run"], runs="/nonexistent", **kwargs)


@pytest.mark.parametrize(
    "argv",
    [
        ["--eps", "nan"],
        ["--eps", "inf"],
        ["--eps", "0,-1"],
        ["--eps", "x"],
        ["--pgd-steps", "0"],
        ["--pgd-steps", "1000000000"],
        ["--seed", str(10**30)],
        ["--device", "tpu"],
    ],
)
def test_the_cli_checks_the_options_before_any_work(argv, capsys, tmp_path):
    from archlab.cli import main

    code = main(["attack", "nothing-here", "--runs", str(tmp_path), *argv])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and argv[0] in err[0], err


def test_the_cli_attacks_on_the_device_asked(tmp_path, capsys, monkeypatch):
    """--device moves each run's model there before the attack (the CPU here)."""
    import archlab
    from archlab.cli import main
    from tests.synthetic import learnable_dataset

    data = learnable_dataset()
    archlab.train("dnn", data=data, runs=tmp_path, epochs=1, log=lambda s: None, progress=False)
    seen = []
    real = R.attack

    def spy(models, **kwargs):
        seen.extend(str(next(r.model.parameters()).device) for r in models)
        return real(models, **kwargs)

    monkeypatch.setattr(R, "attack", spy)
    monkeypatch.setattr("archlab.training.data.load_fashion_mnist", lambda *a, **k: data)
    argv = ["attack", "dnn", "--runs", str(tmp_path), "--images", "20", "--eps", "0,0.1"]
    assert main([*argv, "--device", "cpu", "--json"]) == 0
    assert seen == ["cpu"]


@pytest.mark.realdata
def test_accuracy_falls_monotonically_in_eps_on_the_real_cnn(real_data, tmp_path):
    run = archlab.train(
        "cnn", runs=tmp_path, data=real_data, max_iterations=150, progress=False, log=lambda s: None
    )
    report = R.attack([run], eps=[0, 0.02, 0.05, 0.1], images=200, pgd_steps=10, data=real_data)
    res = report.results[0]
    assert res.fgsm[0] > 0.6
    assert all(a >= b for a, b in zip(res.fgsm, res.fgsm[1:], strict=False))
    assert all(a >= b for a, b in zip(res.pgd, res.pgd[1:], strict=False))
    assert all(p <= f for p, f in zip(res.pgd, res.fgsm, strict=True))  # PGD is stronger
    assert res.flips and res.flips[0].before != res.flips[0].after
    assert "PGD-10" in str(report) and "pixel units" in str(report)


@pytest.mark.parametrize(
    "call",
    [
        lambda: archlab.attack(5, runs="runs"),
        lambda: archlab.attack([None], runs="runs"),
        lambda: archlab.attack(["dnn"], runs=5),
        lambda: archlab.faithfulness(5),
        lambda: archlab.dynamics(5),
        lambda: archlab.attack(["dnn"], images="10"),
        lambda: archlab.attack(["dnn"], eps=[0.1], pgd_steps=2.5),
    ],
)
def test_wrong_types_are_one_clear_error(call):
    with pytest.raises(ArchlabError):
        call()


@pytest.mark.parametrize("build", OUTSIDE_MODELS)
def test_attacks_equal_the_direct_ones_on_models_beyond_the_registry(build):
    torch.manual_seed(0)
    model = build().eval()
    images, labels = _data(24, seed=4)
    x = _pixels(images)
    assert torch.equal(
        R.fgsm(model, x, labels, 0.1, NORM), _direct_fgsm(model, x, labels, 0.1, NORM)
    )
    ours = R.pgd(model, x, labels, 0.1, 4, random_start=False, normalize=NORM)
    torch.testing.assert_close(ours, _direct_pgd(model, x, labels, 0.1, 4, 0.0625, NORM))
