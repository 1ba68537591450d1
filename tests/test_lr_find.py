"""The learning-rate finder: a known toy, torch-lr-finder's range test as the outside
reference, train's checks, and its options."""

from __future__ import annotations

import copy
import inspect
import math

import pytest
import torch
from torch import nn

import archlab
from archlab.errors import ArchlabError
from archlab.training.lr_find import lr_find, suggest, sweep
from tests.synthetic import learnable_dataset


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


@pytest.mark.parametrize(("smooth", "diverge", "end"), [(0.9, 4.0, 10.0), (0.95, 5.0, 1.0)])
def test_the_sweep_is_torch_lr_finders_range_test(smooth, diverge, end, capsys):
    """Same model, same batches, same optimiser: the rates, the smoothed losses and the
    step where the sweep stops equal torch-lr-finder's (exponential mode)."""
    lr_finder = pytest.importorskip("torch_lr_finder")
    torch.manual_seed(0)
    x, y = torch.randn(400, 20), torch.randint(0, 4, (400,))
    net = nn.Sequential(nn.Linear(20, 16), nn.ReLU(), nn.Linear(16, 4))
    twin = copy.deepcopy(net)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=20)

    start, n = 1e-5, 120
    finder = lr_finder.LRFinder(
        net, torch.optim.SGD(net.parameters(), lr=start), nn.CrossEntropyLoss()
    )
    finder.range_test(
        loader, end_lr=end, num_iter=n, step_mode="exp", smooth_f=1 - smooth, diverge_th=diverge
    )
    theirs = finder.history

    opt = torch.optim.SGD(twin.parameters(), lr=start)
    batches = iter([b for _ in range(n // len(loader) + 1) for b in loader])

    def step(lr: float) -> float:
        xb, yb = next(batches)
        for group in opt.param_groups:
            group["lr"] = lr
        twin.train()
        opt.zero_grad()
        loss = nn.functional.cross_entropy(twin(xb), yb)
        loss.backward()
        opt.step()
        return loss.item()

    lrs, _losses, smoothed, diverged = sweep(step, start, end, n, smooth=smooth, diverge=diverge)
    assert lrs == pytest.approx(theirs["lr"], rel=1e-12)
    assert smoothed == pytest.approx(theirs["loss"], rel=1e-6)
    assert (diverged is not None) == (len(lrs) < n)


class _DictOut(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(784, 10)

    def forward(self, x):
        return {"logits": self.fc(x.flatten(1))}


def test_it_refuses_what_train_refuses():
    with pytest.raises(ArchlabError, match="returns"):
        lr_find(_DictOut(), data=learnable_dataset(100, 20), iterations=5)
    with pytest.raises(ArchlabError, match="cannot be trained"):
        lr_find(
            "cnn", overrides=["layer2.0.padding=3"], data=learnable_dataset(100, 20), iterations=5
        )


def test_no_rate_is_suggested_when_the_loss_never_moved():
    data = learnable_dataset(400, 40)
    found = lr_find("dnn", data=data, start=1e-30, end=1e-20, iterations=30, batch_size=20)
    assert not found.moved
    assert math.isnan(found.suggested) and math.isnan(found.min_over_10)
    assert "no rate is suggested" in str(found)
    found.plot()  # draws without the suggestion's lines
    found = lr_find("dnn", data=data, start=1e-4, end=1.0, iterations=60, batch_size=20)
    assert found.moved and 1e-4 <= found.suggested <= 1.0


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("start", 0.0),
        ("start", -1.0),
        ("start", math.nan),
        ("end", math.inf),
        ("end", 1e-8),  # below the start
        ("iterations", 1),
        ("iterations", 2),  # a sweep that short read as 'diverged at once: start lower'
        ("iterations", 10**9),
        ("batch_size", 0),
        ("seed", 10**30),
    ],
)
def test_options_out_of_range_are_refused_before_any_work(option, value):
    with pytest.raises(ArchlabError, match=option):
        lr_find("no-such-model", **{option: value})


@pytest.mark.parametrize(
    "argv", [["--end", "inf"], ["--batch-size", "0"], ["--iterations", "1000000000"]]
)
def test_the_cli_checks_the_options_first(argv, capsys):
    from archlab.cli import main

    code = main(["lr-find", "no-such-model", *argv])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and argv[0] in err[0], err


@pytest.mark.parametrize("overrides", ["layer1.0.padding=2", [3]])
def test_overrides_of_the_wrong_type_are_refused(overrides):
    with pytest.raises(ArchlabError, match="overrides"):
        lr_find("cnn", overrides=overrides)


def test_the_api_is_archlabs():
    # the public door checks the arguments' types, then calls this function
    assert inspect.unwrap(archlab.lr_find) is lr_find
