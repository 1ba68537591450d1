"""Robustness under FGSM and PGD: checks whose answer is known."""

import pytest
import torch

import archlab
from archlab.analysis import robustness as R
from archlab.training.predict import to_input


def _model_and_data(n=64):
    g = torch.Generator().manual_seed(0)
    model = archlab.create_model("cnn").eval()
    images = torch.randint(0, 256, (n, 28, 28), generator=g, dtype=torch.uint8)
    with torch.no_grad():
        labels = model(to_input(images)).argmax(1)
    return model, images, labels


def test_eps_zero_leaves_accuracy_unchanged():
    model, images, labels = _model_and_data()
    labels[::3] = (labels[::3] + 1) % 10  # a third wrong: accuracy 2/3, not 1
    with torch.no_grad():
        clean = float((model(to_input(images)).argmax(1) == labels).float().mean())
    result = R.robustness_of_model(model, images, labels, eps=[0.0], pgd_steps=2, flips=0)
    assert result.fgsm == [clean] and result.pgd == [clean]


def test_an_fgsm_step_raises_the_loss():
    model, images, labels = _model_and_data(32)
    x = to_input(images)
    before, after = R.loss_rises(model, x, labels, 0.05)
    assert after > before
    # and stays in the range of real pixels
    adv = R.fgsm(model, x, labels, 0.5, (0.0, 1.0))
    assert float(adv.min()) >= 0.0 and float(adv.max()) <= 1.0


@pytest.mark.realdata
def test_accuracy_falls_monotonically_in_eps_on_the_real_cnn(real_data, tmp_path):
    run = archlab.train(
        "cnn", runs=tmp_path, data=real_data, max_iterations=150, progress=False, log=lambda s: None
    )
    report = R.attack([run], eps=[0, 0.05, 0.1, 0.2], images=200, pgd_steps=3, data=real_data)
    res = report.results[0]
    assert res.fgsm[0] > 0.6
    assert all(a >= b for a, b in zip(res.fgsm, res.fgsm[1:], strict=False))
    assert all(a >= b for a, b in zip(res.pgd, res.pgd[1:], strict=False))
    assert all(p <= f for p, f in zip(res.pgd, res.fgsm, strict=True))  # PGD is stronger
    assert res.flips and res.flips[0].before != res.flips[0].after
    assert "PGD-3" in str(report)
