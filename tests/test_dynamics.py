"""Training dynamics (exact on tiny nets) and the learning-rate finder (a known toy)."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from archlab.models.whatif import set_hyperparameter
from archlab.training.dynamics import watch
from archlab.training.lr_find import suggest, sweep
from archlab.training.recipes import onecycle_lr


def _net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 3))


def _train(net, every, steps, x, y):
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    history: dict = {}
    with watch(net, opt, every=every, history=history) as watcher:
        for _ in range(steps):
            opt.zero_grad()
            nn.functional.cross_entropy(net(x), y).backward()
            opt.step()
    return watcher, history, opt


def test_gradient_norm_and_update_ratio_equal_autograd():
    net, x, y = _net(), torch.randn(8, 6), torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])
    twin = _net()
    params = list(twin[0].parameters())
    for _ in range(2):  # the state before the third step, the one recorded with every=3
        loss = nn.functional.cross_entropy(twin(x), y)
        grads = torch.autograd.grad(loss, list(twin.parameters()))
        with torch.no_grad():
            for p, g in zip(twin.parameters(), grads, strict=True):
                p -= 0.1 * g
    loss = nn.functional.cross_entropy(twin(x), y)
    grads = torch.autograd.grad(loss, params)
    expected = math.sqrt(sum(float((g**2).sum()) for g in grads))
    ratio = 0.1 * expected / math.sqrt(sum(float((p.detach() ** 2).sum()) for p in params))
    watcher, history, opt = _train(net, 3, 3, x, y)
    point = watcher.points[0]
    assert point["iteration"] == 3 and len(watcher.points) == 1
    assert point["grad_norm"][0] == pytest.approx(expected, rel=1e-5)
    assert point["update_ratio"][0] == pytest.approx(ratio, rel=1e-5)
    assert point["grad_norm"][1] is None  # the ReLU has no parameters
    assert history["dynamics"]["layers"] == ["0", "1", "2"]
    assert "step" not in vars(opt)  # the wrapper is gone


def test_dead_fraction_of_a_layer_forced_dead():
    net, x, y = _net(), torch.randn(8, 6), torch.zeros(8, dtype=torch.long)
    with torch.no_grad():
        net[0].bias[:2] = -1e6  # 2 of 5 units can never fire
    watcher, _, _ = _train(net, 1, 1, x, y)
    assert watcher.points[0]["dead"][1] == pytest.approx(2 / 5)
    with torch.no_grad():
        net[0].bias[:] = -1e6
    watcher, _, _ = _train(net, 1, 1, x, y)
    assert watcher.points[0]["dead"][1] == 1.0
    assert watcher.points[0]["mean"][1] == 0.0


def test_hooks_removed_on_error():
    net = _net()
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    with pytest.raises(RuntimeError), watch(net, opt, every=1):
        raise RuntimeError
    assert not net[1]._forward_hooks and "step" not in vars(opt)


def test_finder_on_a_quadratic_toy_finds_its_best_rate():
    # one SGD step from w = 1 on L(w) = a·w²/2 leaves L = a(1 − a·lr)²/2: best at lr = 1/a,
    # and beyond 2/a the loss grows past its start
    a = 40.0

    def step(lr: float) -> float:
        return a * (1 - a * lr) ** 2 / 2

    lrs, _losses, smoothed, diverged = sweep(step, 1e-4, 1.0, 401, smooth=0.0)
    best = min(range(len(smoothed)), key=smoothed.__getitem__)
    assert lrs[best] == pytest.approx(1 / a, rel=0.012)  # the grid's step is 10^(4/400)
    assert diverged is not None and 1 / a < diverged < 3 / a  # stopped early
    steepest, min10 = suggest(lrs, smoothed)
    assert min10 == pytest.approx(lrs[best] / 10)
    # dL/dlog(lr) = −a² lr (1 − a·lr)·ln 10 is steepest where a·lr = 1/2
    assert steepest == pytest.approx(0.5 / a, rel=0.012)


def test_onecycle_shape():
    assert onecycle_lr(1.0, 0, 100) == pytest.approx(0.04)
    assert onecycle_lr(1.0, 25, 100) == 1.0
    assert onecycle_lr(1.0, 100, 100) == pytest.approx(1e-4)


def test_set_identity_removes_a_layer():
    net = set_hyperparameter(_net(), "1=Identity")
    assert isinstance(net[1], nn.Identity)
