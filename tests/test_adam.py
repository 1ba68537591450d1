"""archlab's Adam: bit-identical to torch.optim.Adam, without importing torch._dynamo."""

import io
import subprocess
import sys

import pytest
import torch
from torch import nn

from archlab.training._adam import Adam
from archlab.training.recipes import cosine_lr


def _net(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    net = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Dropout(0.25),
        nn.Linear(4 * 4 * 4, 10),
    )
    return net.to(memory_format=torch.channels_last)


def _train(net, opt, steps: int, first: int = 0, total: int | None = None) -> None:
    gen = torch.Generator().manual_seed(1)
    batches = [
        (torch.randn(8, 1, 8, 8, generator=gen), torch.randint(0, 10, (8,), generator=gen))
        for _ in range(first + steps)
    ]
    for it in range(first, first + steps):
        if total is not None:  # the cosine schedule as archlab's loop sets it
            for group in opt.param_groups:
                group["lr"] = cosine_lr(1e-3, it, total)
        torch.manual_seed(100 + it)  # dropout
        x, y = batches[it]
        opt.zero_grad(set_to_none=True)
        nn.functional.cross_entropy(net(x.to(memory_format=torch.channels_last)), y).backward()
        opt.step()


def _same(a: nn.Module, b: nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.mark.parametrize("fused", [True, None])
@pytest.mark.parametrize("total", [None, 25])
def test_bit_identical_to_torch_adam(fused, total):
    a, b = _net(), _net()
    _train(a, torch.optim.Adam(a.parameters(), lr=1e-3, fused=fused), 25, total=total)
    _train(b, Adam(b.parameters(), lr=1e-3, fused=fused), 25, total=total)
    assert _same(a, b)


def _round_trip(state: dict) -> dict:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)


@pytest.mark.parametrize("writer", ["archlab", "torch"])
def test_state_dict_resumes_bit_identically(writer):
    """Stop after 10 steps, save, load into a new optimiser, continue: the same as 20
    uninterrupted steps; a state saved by torch.optim.Adam (older checkpoints) loads too."""
    whole = _net()
    _train(whole, Adam(whole.parameters(), fused=True), 20, total=20)

    part = _net()
    make = Adam if writer == "archlab" else torch.optim.Adam
    first = make(part.parameters(), lr=1e-3, fused=True)
    _train(part, first, 10, total=20)
    state = _round_trip(first.state_dict())
    assert state["state"][0].keys() == {"step", "exp_avg", "exp_avg_sq"}
    second = Adam(part.parameters(), fused=True)
    second.load_state_dict(state)
    _train(part, second, 10, first=10, total=20)
    assert _same(whole, part)


def test_state_dict_has_torch_layout_and_loads_into_torch_adam():
    a, b = _net(), _net()
    ours = Adam(a.parameters(), fused=True)
    _train(a, ours, 3)
    ref = torch.optim.Adam(b.parameters(), lr=1e-3, fused=True)
    _train(b, ref, 3)
    mine, theirs = ours.state_dict(), ref.state_dict()
    assert mine["param_groups"] == theirs["param_groups"]
    assert mine["state"].keys() == theirs["state"].keys()
    for i, s in theirs["state"].items():
        for key, value in s.items():
            assert torch.equal(mine["state"][i][key], value)
            assert mine["state"][i][key].dtype == value.dtype
    ref.load_state_dict(_round_trip(mine))  # and torch reads ours


def test_a_state_for_other_parameters_is_refused():
    opt = Adam(_net().parameters(), fused=True)
    other = Adam(nn.Linear(3, 2).parameters(), fused=True)
    with pytest.raises(ValueError):
        opt.load_state_dict(other.state_dict())


def test_does_not_import_dynamo():
    code = (
        "import sys, torch\n"
        "from archlab.training._adam import Adam\n"
        "net = torch.nn.Linear(4, 2)\n"
        "opt = Adam(net.parameters(), fused=True)\n"
        "net(torch.randn(3, 4)).sum().backward()\n"
        "opt.step()\n"
        "print('torch._dynamo' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
