"""Training dynamics, exact on tiny nets, against autograd and hooks written here."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from archlab.models.whatif import set_hyperparameter
from archlab.training.dynamics import watch


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


def test_activation_statistics_equal_hooks_written_here():
    """The recorded mean, std, dead share and histogram of every watched layer at the
    recorded step equal those computed from that step's outputs, caught by our own hooks."""
    from archlab.training.dynamics import BINS, HIST_MAX

    net = _net()
    x, y = torch.randn(8, 6), torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])
    outputs: list[dict] = []
    names = {m: n for n, m in net.named_modules() if n}

    def keep(module, args, output):
        outputs[-1][names[module]] = output.detach().clone()

    handles = [m.register_forward_hook(keep) for m in names]
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    with watch(net, opt, every=2) as watcher:
        for _ in range(4):
            outputs.append({})
            opt.zero_grad()
            nn.functional.cross_entropy(net(x), y).backward()
            opt.step()
    for h in handles:
        h.remove()
    assert [p["iteration"] for p in watcher.points] == [2, 4]
    for point, seen in zip(watcher.points, (outputs[1], outputs[3]), strict=True):
        for k, layer in enumerate(watcher.layers):
            out = seen[layer]
            never_positive = (out <= 0).all(0).float().mean()
            counts = torch.histogram(out.abs().flatten(), BINS, range=(0.0, HIST_MAX)).hist
            assert point["mean"][k] == pytest.approx(float(out.mean()), rel=1e-6, abs=1e-7)
            assert point["std"][k] == pytest.approx(float(out.std()), rel=1e-6)
            assert point["dead"][k] == pytest.approx(float(never_positive))
            assert point["hist"][k] == pytest.approx((counts / out.numel()).tolist(), abs=1e-7)


@pytest.mark.parametrize("every", [0, -1, 10**9, 2.5, True])
def test_watch_refuses_an_interval_out_of_range(every):
    from archlab.errors import ArchlabError

    net = _net()
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    with pytest.raises(ArchlabError, match="every"), watch(net, opt, every=every):
        pass
    assert "step" not in vars(opt)


def test_set_identity_removes_a_layer():
    net = set_hyperparameter(_net(), "1=Identity")
    assert isinstance(net[1], nn.Identity)


def _record():
    net, x, y = _net(), torch.randn(8, 6), torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])
    _, history, _ = _train(net, 1, 2, x, y)
    return history["dynamics"]


@pytest.mark.parametrize(
    "damage",
    [
        lambda r: r.update(points="x"),
        lambda r: r.update(points=[]),
        lambda r: r.update(every=0),
        lambda r: r.update(hist_max=float("nan")),
        lambda r: r.update(layers=[1, 2, 3]),
        lambda r: r["points"][0].update(mean=["a", None, 1.0]),
        lambda r: r["points"][0].update(dead=[0.0]),
        lambda r: r["points"][-1].update(hist=[[1.0], None, None]),
        lambda r: r["points"][-1].pop("iteration"),
    ],
)
def test_a_damaged_dynamics_record_is_one_clear_error(damage):
    import copy

    from archlab.analysis.dynamics import Dynamics, check_record
    from archlab.errors import ArchlabError

    good = _record()
    assert check_record(good, "r") is good
    str(Dynamics(["r"], [good]))  # the table reads every field checked
    bad = copy.deepcopy(good)
    damage(bad)
    with pytest.raises(ArchlabError, match="damaged"):
        check_record(bad, "r")
