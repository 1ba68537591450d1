"""Every fix archlab prints has been tried: applied as a student would apply it, the
model runs and outputs 10 scores per image (tests/corpus/fixable.py), also on random
branching models with one mistake injected."""

import inspect
import re
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

import archlab
from archlab.cli import main
from archlab.models.whatif import set_argument
from archlab.trace.fixes import Fix
from tests.corpus import fixable

CORPUS = Path(__file__).parent / "corpus" / "fixable.py"
CASES = [
    c
    for n, c in inspect.getmembers(fixable, inspect.isclass)
    if c.__module__ == fixable.__name__ and not n.endswith("Fixed") and hasattr(c, "fix")
]


@pytest.mark.parametrize("cls", CASES, ids=lambda c: c.__name__)
def test_the_printed_fix_applied_by_hand_makes_the_model_run(cls, capsys):
    shape = ",".join(map(str, cls.input_shape))
    assert main(["shapes", f"{CORPUS}:{cls.__name__}", "--input", shape]) == 1
    err = capsys.readouterr().err.strip()
    assert "; fix: " in err
    assert not re.search(r"\b11\b", err.partition("; fix: ")[0])  # the trace's batch: never shown
    fix = err.partition("; fix: ")[2]
    assert cls.fix in fix
    fixed = getattr(fixable, f"{cls.__name__}Fixed", cls)  # the code change, made by hand
    flags = [a for s in re.findall(r"--set (\S+?)\)?(?:,|$| )", fix) for a in ("--set", s)]
    assert fixed is not cls or flags  # a fix that is no code change is a --set
    spec = f"{CORPUS}:{fixed.__name__}"
    assert main(["shapes", spec, "--input", shape, *flags]) == 0
    report = archlab.trace_shapes(fixed(), cls.input_shape, [f for f in flags if f != "--set"])
    assert report.ok and report.output_shape == (10,)


def test_a_fix_that_cannot_be_built_is_not_printed():
    report = archlab.trace_shapes(fixable.DepthwiseAfterNarrowConv(), (1, 28, 28))
    assert report.error.fix == Fix("set", "conv1", "out_channels", 32)
    assert "dw.in_channels=16 would not help" in report.error.tried[0]


def test_the_batch_is_tracked_through_stack_unbind_einsum_and_an_rnn_state():
    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a, self.b = nn.Conv2d(1, 16, 3, padding=1), nn.Conv2d(1, 16, 3, padding=1)
            self.gru = nn.GRU(28, 16, num_layers=2, batch_first=True)
            self.w = nn.Parameter(torch.zeros(48, 10))

        def forward(self, x):
            maps = torch.stack([self.a(x), self.b(x)]).sum(0).mean((2, 3))  # (N, 16)
            first, _ = torch.stack([maps, maps], 1).unbind(1)
            _, h = self.gru(x.squeeze(1))
            state = h[-2:].transpose(0, 1).flatten(1)  # (2, N, 16) → (N, 32)
            return torch.einsum("bi,ik->bk", torch.cat([first, state], 1), self.w)

    report = archlab.trace_shapes(Net(), (1, 28, 28))
    assert report.ok and report.output_shape == (10,)
    rows = {r.type: r for r in report.layers}
    assert (rows["torch.stack"].output, rows["sum(0)"].output) == ((2, 16, 28, 28), (16, 28, 28))
    assert rows["transpose(0, 1)"].input == (2, 16)  # a row although 2×16 stays 2×16


def test_forward_returning_none_is_a_diagnosis(capsys):
    class NoReturn(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(4, 10)

        def forward(self, x):
            self.fc(x)

    report = archlab.trace_shapes(NoReturn(), (4,))
    assert not report.ok and "returns None" in str(report.error)


# -- random branching models with one mistake -------------------------------------------------
class Branchy(nn.Module):
    """stem → two conv branches → cat → tokens → LayerNorm → mean → Linear."""

    def __init__(self, c1, c2, c3, cat_dim=1, pair=(1, 2), lin_in=None, ch_in=None) -> None:
        super().__init__()
        self.cat_dim, self.pair = cat_dim, pair
        self.stem = nn.Conv2d(1, c1, 3, padding=1)
        self.left = nn.Conv2d(c1 if ch_in is None else ch_in, c2, 3, padding=1)
        self.right = nn.Conv2d(c1, c3, 1)
        self.ln = nn.LayerNorm(c2 + c3)
        self.fc = nn.Linear(c2 + c3 if lin_in is None else lin_in, 10)

    def forward(self, x):
        x = torch.relu(self.stem(x))
        x = torch.cat([self.left(x), self.right(x)], self.cat_dim)
        tokens = x.flatten(2).transpose(*self.pair)
        return self.fc(self.ln(tokens).mean(1))


@st.composite
def mistakes(draw):
    c1, c2, c3 = (draw(st.integers(2, 6)) for _ in range(3))
    kind = draw(st.sampled_from(["cat", "transpose", "linear", "channels"]))
    wrong = {
        "cat": {"cat_dim": draw(st.sampled_from([0, 2, 3]))},
        "transpose": {"pair": draw(st.sampled_from([(0, 1), (0, 2)]))},
        "linear": {"lin_in": c2 + c3 + draw(st.integers(1, 5))},
        "channels": {"ch_in": c1 + draw(st.integers(1, 3))},
    }[kind]
    return (c1, c2, c3), wrong


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mistakes())
def test_random_mistakes_any_printed_fix_makes_the_model_run(case):
    sizes, wrong = case
    model = Branchy(*sizes, **wrong)
    report = archlab.trace_shapes(model, (1, 8, 8), expect=(10,))
    fix = report.error.fix if report.error is not None else None
    if fix is None:
        return  # a diagnosis with no fix is allowed; a wrong fix is not
    settings_ = dict(wrong)
    edits = []
    for step in fix.steps():  # the student's edit: the model's own arguments, or a --set
        if step.kind == "set":
            continue
        elif step.edit and step.edit[2][0] == "dim":
            settings_["cat_dim"] = step.edit[2][1]
        elif step.edit and step.edit[2][0] == "dims":
            settings_["pair"] = step.edit[2][1]
        else:
            edits.append(step)
    assert not edits, fix  # in this family every fix is a cat dim, a transpose or a --set
    rebuilt = Branchy(*sizes, **settings_)
    for step in fix.steps():
        if step.kind == "set":
            set_argument(rebuilt, step.layer, step.argument, step.value)
    out = rebuilt.eval()(torch.zeros(3, 1, 8, 8))
    assert tuple(out.shape) == (3, 10)


def test_sys_exit_in_forward_is_a_diagnosis_not_a_silent_exit(capsys):
    class Exits(nn.Module):
        def forward(self, x):
            import sys

            sys.exit(0)

    report = archlab.trace_shapes(Exits(), (4,))
    assert not report.ok and "sys.exit(0)" in str(report.error)


def test_params_shares_the_traces_batch_check(capsys):
    assert main(["params", "dnn", "--input", "3,28,28"]) == 1
    err = capsys.readouterr().err
    assert "view(-1, 784)" in err and "x.view(x.size(0), -1)" in err


@pytest.mark.parametrize("returns", ["dict", "tuple", "none"])
def test_train_refuses_a_forward_that_returns_no_tensor(returns):
    from archlab.errors import ArchlabError
    from archlab.models.spec import ModelSpec
    from archlab.training.check import check_trainable

    class Odd(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(784, 10)

        def forward(self, x):
            out = self.fc(x.flatten(1))
            return {"dict": {"logits": out}, "tuple": (out, x), "none": None}[returns]

    spec = ModelSpec.parse("cnn")  # only its label is used in the message
    with pytest.raises(ArchlabError) as caught:
        check_trainable(spec, Odd())
    assert caught.value.exit_code == 1
    assert {"dict": "a dict", "tuple": "a tuple of 2", "none": "returns None"}[returns] in str(
        caught.value
    )


def _depthwise(model: nn.Module) -> set[str]:
    return {
        n
        for n, m in model.named_modules()
        if isinstance(m, nn.Conv2d) and m.groups > 1 and m.groups == m.in_channels == m.out_channels
    }


@pytest.mark.parametrize(
    "breakage",
    [
        "blocks.0.3.out_channels=64",
        "blocks.1.3.out_channels=32",
        "blocks.2.3.out_channels=64",
        "stem.0.out_channels=8",
        "blocks.1.0.in_channels=64",  # the fix, made by hand: a grouped conv now
    ],
)
def test_a_tried_fix_keeps_every_depthwise_conv_depthwise(breakage):
    report = archlab.trace_shapes("mobilenet", overrides=[breakage], expect=(10,))
    assert report.error is not None and report.error.fix is not None, report.error
    model = archlab.create_model("mobilenet")
    layer, _, value = breakage.partition("=")
    set_argument(model, *layer.rsplit(".", 1), int(value))
    before = _depthwise(model)
    for step in report.error.fix.steps():
        set_argument(model, step.layer, step.argument, step.value)
    assert _depthwise(model) >= before  # groups = in = out, read from the layers themselves
    if breakage.startswith("blocks.1.0"):  # the grouped conv made depthwise again
        assert _depthwise(model) == _depthwise(archlab.create_model("mobilenet"))
    with torch.no_grad():
        assert model.eval()(torch.zeros(2, 1, 28, 28)).shape == (2, 10)


def test_a_conv_row_says_its_groups_as_its_weights_have_them():
    grouped = nn.Conv2d(32, 64, 3, groups=4)
    model = nn.Sequential(nn.Conv2d(1, 32, 3), nn.Conv2d(32, 32, 3, groups=32), grouped)
    rows = archlab.trace_shapes(model, (1, 28, 28)).layers
    assert "groups" not in rows[0].formula
    assert rows[1].formula.endswith("; groups 32 = in = out (depthwise)")
    per_filter = grouped.weight.shape[1]  # torch's weights: (out, in / groups, k, k)
    assert rows[2].formula.endswith(f"; groups 4 (each filter sees {per_filter} channels)")
    assert per_filter == 8
