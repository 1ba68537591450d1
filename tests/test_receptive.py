"""Receptive fields: hand-computed chains, and the truth by construction (the input pixels
whose gradient is non-zero for one unit of a net with all-positive weights)."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import archlab
from archlab.trace.receptive import receptive_fields, unit_box
from archlab.trace.shapes import trace_shapes


def _field(report, name):
    return next(r.receptive for r in report.layers if r.name == name)


def test_lecture_cnn_by_hand():
    report = trace_shapes("cnn")
    got = {n: (_field(report, n).size, _field(report, n).jump) for n in ("layer1.0", "layer1.3")}
    assert got == {"layer1.0": ((3, 3), (1, 1)), "layer1.3": ((4, 4), (2, 2))}
    assert _field(report, "layer2.0").size == (8, 8)
    assert _field(report, "layer2.3").size == (10, 10)
    assert _field(report, "layer2.3").jump == (4, 4)
    assert _field(report, "layer2.3").start == (-1, -1)  # layer1.0's padding of 1
    assert _field(report, "fc1").size == (30, 30)  # 10 + (6 − 1)·4: the whole image and padding
    assert any("fc1 (Linear) is the first layer" in n for n in report.notes)
    assert report.to_dict()["layers"][7]["receptive"]["size"] == (10, 10)


def test_dilated_strided_transposed_by_hand():
    model = nn.Sequential(
        nn.Conv2d(1, 1, 3, dilation=2),  # k_eff 5: r 5
        nn.Conv2d(1, 1, 3, stride=2),  # r 5 + 2·1 = 7, j 2
        nn.Conv2d(1, 1, (3, 1), dilation=(3, 1)),  # H: r 7 + 6·2 = 19; W unchanged
        nn.ConvTranspose2d(1, 1, 2, stride=2),  # j 2 → 1, each unit reads one input
    )
    report = trace_shapes(model, (1, 40, 40))
    sizes = [(r.receptive.size, r.receptive.jump) for r in report.layers]
    assert sizes[:3] == [((5, 5), (1, 1)), ((7, 7), (2, 2)), ((19, 7), (2, 2))]
    assert sizes[3] == ((19, 7), (1, 1))
    assert report.layers[0].receptive.start == (0, 0)


def test_merge_reports_the_hull_of_unequal_branches():
    class Cross(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Conv2d(1, 1, (3, 1), padding=(1, 0))
            self.b = nn.Conv2d(1, 1, (1, 5), padding=(0, 2))

        def forward(self, x):
            return self.a(x) + self.b(x)

    report = trace_shapes(Cross(), (1, 9, 9))
    add = report.layers[-1]
    assert add.type == "add" and add.receptive.size == (3, 5)
    assert add.receptive.seen == ((3, 5), (2, 6))  # the middle unit (4, 4)


# -- the truth by construction ---------------------------------------------------------------


def _positive(model: nn.Module) -> nn.Module:
    """All weights and biases positive, max-pooling made average (a max passes the gradient
    to one pixel of its window; its field is the window), normalisation as identity."""
    for _name, module in list(model.named_modules()):
        for child_name, child in list(module.named_children()):
            if isinstance(child, nn.MaxPool2d):
                swap = nn.AvgPool2d(
                    child.kernel_size, child.stride, child.padding, ceil_mode=child.ceil_mode
                )
                if child.dilation not in (1, (1, 1)):
                    continue
                setattr(module, child_name, swap)
            elif isinstance(child, nn.modules.batchnorm._BatchNorm):
                setattr(module, child_name, nn.Identity())
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.rand_like(p) * 0.9 + 0.1)
    return model.double().eval()


def _empirical(model: nn.Module, shape, name: str, unit) -> tuple[tuple[int, int], ...]:
    """The bounding box, per axis, of the pixels whose gradient is non-zero for the units
    at ``unit`` (all channels) of the output of module ``name``."""
    seen = {}
    hook = model.get_submodule(name).register_forward_hook(lambda m, a, out: seen.update(y=out))
    x = torch.ones((1, *shape), dtype=torch.double, requires_grad=True)
    try:
        model(x)
    finally:
        hook.remove()
    y = seen["y"]
    # every channel at that unit: a cat's channels each see their own branch's field
    target = y[(0, slice(None), *unit)].sum() if y.dim() > 2 else y[0].sum()
    (grad,) = torch.autograd.grad(target, x)
    nz = grad[0].abs().sum(0).nonzero()
    if not len(nz):
        return tuple((0, -1) for _ in shape[1:])  # a unit that reads only zeros it inserted
    return tuple((int(nz[:, a].min()), int(nz[:, a].max())) for a in range(nz.shape[1]))


def _check_all(model: nn.Module, shape):
    report = trace_shapes(model, shape)
    assert report.ok
    model = _positive(model)
    _, states = receptive_fields(report.layers, model, shape)
    checked = 0
    for row, state in zip(report.layers, states, strict=True):
        if (
            row.functional
            or state is None
            or isinstance(model.get_submodule(row.name), nn.Identity)
        ):
            continue
        if not isinstance(
            model.get_submodule(row.name),
            (nn.Conv2d, nn.ConvTranspose2d, nn.AvgPool2d, nn.ReLU, nn.Linear, nn.AdaptiveAvgPool2d),
        ):
            continue
        unit = [len(a) // 2 for a in state.axes] if not state.flat else [0, 0]
        if len(row.output) > 1:
            assert _empirical(model, shape, row.name, unit) == unit_box(state, unit), row.name
        else:
            box = unit_box(state, [0] * len(state.axes))
            assert _empirical(model, shape, row.name, ()) == box, row.name
        checked += 1
    assert checked


@pytest.mark.parametrize("name", archlab.list_models())
def test_registered_models_match_their_gradients(name):
    model = archlab.create_model(name)
    _check_all(model, getattr(model, "input_shape", (1, 28, 28)))


_layer = st.one_of(
    st.tuples(
        st.just("conv"),
        st.integers(1, 4),
        st.integers(1, 3),
        st.integers(0, 2),
        st.integers(1, 3),
    ),
    st.tuples(st.just("pool"), st.integers(1, 3), st.integers(1, 3), st.integers(0, 1)),
    st.tuples(st.just("tconv"), st.integers(1, 3), st.integers(1, 3)),
)


def _build(spec) -> nn.Module | None:
    layers = []
    for kind, *a in spec:
        if kind == "conv":
            k, s, p, d = a
            layers += [
                nn.Conv2d(1, 1, k, stride=s, padding=min(p, (d * (k - 1)) // 2), dilation=d),
                nn.ReLU(),
            ]
        elif kind == "pool":
            k, s, p = a
            layers.append(nn.AvgPool2d(k, s, padding=min(p, k // 2)))
        else:
            k, s = a
            layers.append(nn.ConvTranspose2d(1, 1, k, stride=s))
    return nn.Sequential(*layers)


@settings(max_examples=40, deadline=None)
@given(st.lists(_layer, min_size=1, max_size=5), st.integers(12, 24))
def test_random_chains_match_their_gradients(spec, side):
    model = _build(spec)
    report = trace_shapes(model, (1, side, side))
    if not report.ok or any(r.output is None or min(r.output[1:]) < 1 for r in report.layers):
        return
    _check_all(model, (1, side, side))


class _Branch(nn.Module):
    def __init__(self, a: nn.Module, b: nn.Module, cat: bool) -> None:
        super().__init__()
        self.a, self.b, self.cat, self.out = a, b, cat, nn.ReLU()

    def forward(self, x):
        y = torch.cat([self.a(x), self.b(x)], 1) if self.cat else self.a(x) + self.b(x)
        return self.out(y)


@settings(max_examples=30, deadline=None)
@given(
    st.integers(1, 3),
    st.integers(1, 3),
    st.integers(1, 3),
    st.integers(1, 2),
    st.booleans(),
    st.integers(10, 20),
)
def test_random_branches_match_their_gradients(ka, kb, da, s, cat, side):
    pa, pb = da * (ka - 1) // 2, (kb - 1) // 2
    a = nn.Conv2d(1, 1, ka, stride=s, padding=pa, dilation=da)
    b = nn.Sequential(nn.Conv2d(1, 1, kb, padding=pb), nn.AvgPool2d(s, s, ceil_mode=False))
    model = nn.Sequential(_Branch(a, b, cat), nn.Conv2d(2 if cat else 1, 1, 3))
    report = trace_shapes(model, (1, side, side))
    if not report.ok:
        return
    _check_all(model, (1, side, side))


def test_draw_field_puts_one_units_field_on_the_image(tmp_path):
    from archlab.drawing.field import draw_field

    middle = draw_field("cnn", "layer2.3")
    # 6×6 units, jump 4, field 10 starting at -1: unit 3 sees pixels 11-20
    assert middle.grid == (6, 6) and middle.unit == (3, 3)
    assert middle.seen == middle.full == ((11, 20), (11, 20))
    corner = draw_field("cnn", "layer2.3", unit=(0, 5))
    assert corner.full == ((-1, 8), (19, 28))  # the textbook field reaches into the padding
    assert corner.seen == ((0, 8), (19, 27))  # inside the 28×28 image
    assert "sees 9×9 pixels" in str(corner)
    fig = corner.plot()
    assert "sees 9×9 pixels" in fig.axes[0].get_title()
    assert corner.save(tmp_path / "f.png").stat().st_size > 0


def test_draw_field_of_flat_layers_and_bad_choices():
    from archlab.drawing.field import draw_field

    whole = draw_field("cnn", "fc1")  # after the flatten: one unit sees everything
    assert whole.grid == (1, 1) and whole.seen == ((0, 27), (0, 27))
    with pytest.raises(archlab.ArchlabError, match=r"drawn on an image \(C, H, W\)"):
        draw_field("dnn", "fc1", input_shape=(784,))
    with pytest.raises(archlab.ArchlabError, match=r"no such layer; .* \(layer1, layer2, "):
        draw_field("cnn", "layer9")
    assert draw_field("cnn", "layer2").seen == draw_field("cnn", "layer2.3").seen  # a block
    with pytest.raises(archlab.ArchlabError, match="has 6×6 units"):
        draw_field("cnn", "layer2.3", unit=(6, 0))


def test_archlab_draw_field_writes_the_picture(tmp_path, capsys):
    from archlab.cli import main

    out = tmp_path / "field.png"
    assert main(["draw", "cnn", "--field", "layer2.0", "--unit", "0,0", "--out", str(out)]) == 0
    assert out.stat().st_size > 0
    assert "unit (0,0) of layer2.0 (12×12 units) sees 7×7 pixels" in capsys.readouterr().out
    assert main(["draw", "cnn", "--field", "layer2.0", "--unit", "x"]) == 2
    assert "--unit 'x'" in capsys.readouterr().err
