"""Receptive fields: hand-computed chains, and the reference for every row of registered and
generated models (the idioms outside a plain chain, random chains and branches): the pixels
each unit depends on in a linearised float64 copy (tests/linear_field.py), and the textbook
fields on the extended image."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import archlab
from archlab.trace.shapes import trace_shapes

from .linear_field import check_every_row, check_extended, supports


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


# -- the reference: the linearised copy (tests/linear_field.py) ----------------------------


@pytest.mark.parametrize("name", archlab.list_models())
def test_registered_models_match_the_linearised_copy(name):
    model = archlab.create_model(name)
    shape = getattr(model, "input_shape", (1, 28, 28))
    rows = len(trace_shapes(model, shape).layers)
    assert check_every_row(model, shape) == rows  # every row has a field, and it is right


# -- every row of generated models against the linearised copy ---------------------------------


class _Fn(nn.Module):
    """An operation in ``forward`` (a functional row), named for the test's ids."""

    def __init__(self, fn, label: str = "") -> None:
        super().__init__()
        self.fn, self.label = fn, label
        self.before = nn.Identity()  # a child: the tracer follows the operations in forward

    def forward(self, x):
        return self.fn(self.before(x))

    def extra_repr(self) -> str:
        return self.label


class _ResidualBlock(nn.Module):
    """The CIFAR-ResNet block: an empty ``nn.Sequential()`` shortcut when the shape stays."""

    def __init__(self, c: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c, c, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c)
        self.conv2 = nn.Conv2d(c, c, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c)
        self.shortcut = nn.Sequential()
        if stride != 1:
            self.shortcut = nn.Sequential(nn.Conv2d(c, c, 1, stride, bias=False), nn.BatchNorm2d(c))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class _GlobalMean(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.pool = nn.MaxPool2d(2)
        self.conv2 = nn.Conv2d(4, 4, 3)
        self.fc = nn.Linear(4, 10)

    def forward(self, x):
        x = self.conv2(self.pool(F.relu(self.conv(x))))
        return self.fc(x.mean(dim=(2, 3)))


class _UNet(nn.Module):
    """Two levels down (conv, max pool), two up (ConvTranspose2d), skips by cat."""

    def __init__(self) -> None:
        super().__init__()
        self.enc1 = nn.Conv2d(1, 2, 3, padding=1)
        self.enc2 = nn.Conv2d(2, 2, 3, padding=1)
        self.pool1, self.pool2 = nn.MaxPool2d(2), nn.MaxPool2d(2)
        self.mid = nn.Conv2d(2, 2, 3, padding=1)
        self.up2 = nn.ConvTranspose2d(2, 2, 2, stride=2)
        self.dec2 = nn.Conv2d(4, 2, 3, padding=1)
        self.up1 = nn.ConvTranspose2d(2, 2, 2, stride=2)
        self.dec1 = nn.Conv2d(4, 1, 3, padding=1)

    def forward(self, x):
        e1 = F.relu(self.enc1(x))
        e2 = F.relu(self.enc2(self.pool1(e1)))
        m = F.relu(self.mid(self.pool2(e2)))
        d2 = F.relu(self.dec2(torch.cat([self.up2(m), e2], 1)))
        return self.dec1(torch.cat([self.up1(d2), e1], 1))


class _Functional(nn.Module):
    """Pools, a conv and a slice called in ``forward``."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(2, 1, 3, 3))

    def forward(self, x):
        x = F.conv2d(x, self.weight, stride=1, padding=2, dilation=2)
        x = F.max_pool2d(x, 3, 2, 1)
        x = x[:, :, 1:-1, ::2]
        x = F.avg_pool2d(x, 2, ceil_mode=True)
        return F.adaptive_max_pool2d(x, (2, 1))


class _ShuffleUnit(nn.Module):
    """ShuffleNet's channel shuffle (view, transpose, view), a chunk, a cat, then
    PixelShuffle and PixelUnshuffle (sub-pixel convolution)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.branch = nn.Conv2d(2, 2, 3, padding=1)
        self.other = nn.Conv2d(2, 2, 3, padding=1)
        self.up = nn.PixelShuffle(2)
        self.down = nn.PixelUnshuffle(2)
        self.post = nn.Conv2d(4, 4, 3, stride=2)

    def forward(self, x):
        x = self.conv(x)  # 3×3
        n, c, h, w = x.shape
        x = x.view(n, 2, c // 2, h, w).transpose(1, 2).reshape(n, c, h, w)
        a, b = x.chunk(2, dim=1)
        x = torch.cat([self.other(a), self.branch(b)], 1)  # every channel sees 5×5
        x = F.pixel_shuffle(x, 2)[:, :, 1:]
        return self.post(self.down(self.up(torch.cat([x, x, x, x], 1))))


def _seq(*layers) -> nn.Module:
    return nn.Sequential(nn.Conv2d(1, 2, 3), *layers)


IDIOMS = {
    "empty Sequential shortcut": (
        nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), _ResidualBlock(4), _ResidualBlock(4, 2)),
        (1, 12, 12),
    ),
    "x.mean(dim=(2, 3))": (_GlobalMean(), (1, 14, 14)),
    "Upsample nearest 1.7": (_seq(nn.Upsample(scale_factor=1.7), nn.Conv2d(2, 1, 3)), (1, 12, 12)),
    "Upsample nearest size": (_seq(nn.Upsample(size=(17, 23))), (1, 12, 12)),
    "Upsample nearest-exact 1.5": (
        _seq(nn.Upsample(scale_factor=1.5, mode="nearest-exact")),
        (1, 12, 12),
    ),
    "Upsample bilinear 2": (
        _seq(nn.Upsample(scale_factor=2, mode="bilinear"), nn.MaxPool2d(3)),
        (1, 12, 12),
    ),
    "Upsample bilinear 1.7": (_seq(nn.Upsample(scale_factor=1.7, mode="bilinear")), (1, 11, 11)),
    "UpsamplingBilinear2d": (_seq(nn.UpsamplingBilinear2d(scale_factor=3)), (1, 9, 9)),
    "F.interpolate bilinear align_corners": (
        _seq(_Fn(lambda x: F.interpolate(x, size=(19, 7), mode="bilinear", align_corners=True))),
        (1, 12, 12),
    ),
    "F.interpolate nearest 1.7": (
        _seq(_Fn(lambda x: F.interpolate(x, scale_factor=1.7))),
        (1, 12, 12),
    ),
    "Upsample bicubic": (nn.Sequential(nn.Upsample(scale_factor=2.5, mode="bicubic")), (1, 9, 9)),
    "ZeroPad2d": (_seq(nn.ZeroPad2d((1, 2, 3, 0)), nn.Conv2d(2, 1, 3, stride=2)), (1, 12, 12)),
    "F.pad": (_seq(_Fn(lambda x: F.pad(x, (2, 0, 1, 3))), nn.MaxPool2d(2)), (1, 12, 12)),
    "F.pad crops": (_seq(_Fn(lambda x: F.pad(x, (-1, 0, 2, -2)))), (1, 12, 12)),
    "ConvTranspose2d U-Net decoder": (_UNet(), (1, 16, 16)),
    "ConvTranspose2d padded": (
        _seq(
            nn.ConvTranspose2d(2, 1, 3, stride=2, padding=1, output_padding=1),
            nn.Conv2d(1, 1, 3, 2),
        ),
        (1, 10, 10),
    ),
    "adaptive pooling, m not dividing n": (
        _seq(nn.AdaptiveAvgPool2d((3, 4)), nn.Conv2d(2, 1, 2)),
        (1, 12, 12),
    ),
    "adaptive max pooling": (_seq(nn.AdaptiveMaxPool2d(5)), (1, 15, 15)),
    "dilation": (_seq(nn.Conv2d(2, 2, 3, dilation=3), nn.MaxPool2d(3, 1, dilation=2)), (1, 20, 20)),
    "operations in forward": (_Functional(), (1, 16, 16)),
    "channel shuffle, chunk, PixelShuffle": (_ShuffleUnit(), (1, 9, 9)),
    "flatten then Linear": (_seq(nn.MaxPool2d(2), nn.Flatten(), nn.Linear(50, 3)), (1, 12, 12)),
}
MIRRORED = {
    "ReflectionPad2d": (_seq(nn.ReflectionPad2d((3, 1, 2, 0)), nn.Conv2d(2, 1, 3)), (1, 10, 10)),
    "F.pad replicate": (
        _seq(_Fn(lambda x: F.pad(x, (2, 2, 1, 3), mode="replicate")), nn.Conv2d(2, 1, 3)),
        (1, 10, 10),
    ),
    "circular conv": (_seq(nn.Conv2d(2, 1, 3, padding=2, padding_mode="circular")), (1, 10, 10)),
    "reflect conv": (_seq(nn.Conv2d(2, 1, 5, padding=2, padding_mode="reflect")), (1, 10, 10)),
}


def _every_row_has_a_field(model, shape) -> None:
    report = trace_shapes(model, shape)
    missing = [f"{r.name} ({r.type})" for r in report.layers if r.receptive is None]
    assert not missing


@pytest.mark.parametrize("idiom", list(IDIOMS))
def test_idioms_match_the_linearised_copy(idiom):
    model, shape = IDIOMS[idiom]
    _every_row_has_a_field(model, shape)
    # margin 4: wider than the gaps dilation and strided slices open between read pixels
    assert check_every_row(model, shape, margin=4) == len(trace_shapes(model, shape).layers)


@pytest.mark.parametrize("idiom", list(MIRRORED))
def test_pads_that_mirror_match_the_linearised_copy(idiom):
    model, shape = MIRRORED[idiom]
    _every_row_has_a_field(model, shape)
    assert check_every_row(model, shape, zero_padding=False) == len(
        trace_shapes(model, shape).layers
    )


EQUIVARIANT = [  # the same at every shift: the extended image's check applies
    "empty Sequential shortcut",
    "Upsample nearest 1.7",
    "Upsample nearest-exact 1.5",
    "Upsample bilinear 2",
    "Upsample bilinear 1.7",
    "Upsample bicubic",
    "ZeroPad2d",
    "F.pad",
    "ConvTranspose2d U-Net decoder",
    "ConvTranspose2d padded",
    "dilation",
    "channel shuffle, chunk, PixelShuffle",
]


@pytest.mark.parametrize("idiom", EQUIVARIANT)
def test_start_is_the_extended_images(idiom):
    model, shape = IDIOMS[idiom]
    assert check_extended(model, shape)


def _first_to_see_everything(model, shape) -> int | None:
    """The first row one unit of which depends on every pixel (the linearised copy's)."""
    for i, support in enumerate(supports(model, shape)):
        if support is not None and support.reshape(len(support), -1).all(0).any():
            return i
    return None


@pytest.mark.parametrize(
    "idiom", ["x.mean(dim=(2, 3))", "flatten then Linear", "empty Sequential shortcut"]
)
def test_the_note_names_the_first_layer_that_sees_the_whole_image(idiom):
    model, shape = IDIOMS[idiom]
    report = trace_shapes(model, shape)
    first = _first_to_see_everything(model, shape)
    note = next(n for n in report.notes if n.startswith("receptive field:"))
    if first is None:
        assert "no unit sees the whole" in note
        return
    row = report.layers[first]
    label = f"{row.type} in forward" if row.functional else f"{row.name} ({row.type})"
    assert note.startswith(f"receptive field: {label} is the first layer"), note


def test_a_global_mean_sees_the_whole_image():
    report = trace_shapes(_GlobalMean(), (1, 14, 14))
    mean = next(r for r in report.layers if r.type.startswith("mean"))
    assert mean.receptive.units == (1, 1)
    assert mean.receptive.seen == ((0, 13), (0, 13))
    assert "mean(dim=(2, 3)) in forward is the first layer" in " ".join(report.notes)


def test_nearest_upsampling_reads_floor_of_o_over_the_factor():
    from archlab.trace.receptive import field_states

    report = trace_shapes(nn.Sequential(nn.Upsample(scale_factor=1.7)), (1, 28, 28))
    axis = field_states(report)[0].axes[0]
    assert len(axis) == 47
    # torch: ⌊o/1.7⌋; in/out would give ⌊37·28/47⌋ = 22 for unit 37
    assert [axis.seen[o][0] for o in (17, 37, 46)] == [10, 21, 27]
    assert report.layers[0].receptive.jump == (10 / 17, 10 / 17)


def test_adaptive_pooling_reads_torchs_bins():
    report = trace_shapes(nn.Sequential(nn.AdaptiveAvgPool2d((3, 4))), (1, 10, 10))
    field = report.layers[0].receptive
    # H: bins [0, 4), [3, 7), [6, 10); W: [0, 3), [2, 5), [5, 8), [7, 10)
    assert field.size == (4, 3) and field.start == (0, 0)
    assert field.jump == (3, 7 / 3)  # W's starts 0, 2, 5, 7: 7/3 apart on average
    report = trace_shapes(nn.Sequential(nn.AdaptiveAvgPool2d(4)), (1, 7, 7))
    assert report.layers[0].receptive.uniform is False  # bins [0, 2), [1, 4), [3, 6), [5, 7)


# -- generated models ------------------------------------------------------------------------

_layer = st.one_of(
    st.tuples(
        st.just("conv"),
        st.integers(1, 4),
        st.integers(1, 3),
        st.integers(0, 2),
        st.integers(1, 3),
    ),
    st.tuples(
        st.just("max"), st.integers(1, 3), st.integers(1, 3), st.integers(0, 1), st.integers(1, 2)
    ),
    st.tuples(st.just("avg"), st.integers(1, 3), st.integers(1, 3), st.integers(0, 1)),
    st.tuples(st.just("tconv"), st.integers(1, 3), st.integers(1, 3), st.integers(0, 1)),
    st.tuples(
        st.just("up"), st.sampled_from([1.5, 1.7, 2.0]), st.sampled_from(["nearest", "bilinear"])
    ),
    st.tuples(st.just("pad"), st.integers(0, 3), st.integers(0, 2)),
    st.tuples(st.just("fpad"), st.integers(-1, 2), st.integers(0, 3)),
    st.tuples(st.just("bn")),
    st.tuples(st.just("shortcut")),
)


def _build(spec) -> nn.Module:
    layers = []
    for kind, *a in spec:
        if kind == "conv":
            k, s, p, d = a
            layers += [
                nn.Conv2d(1, 1, k, stride=s, padding=min(p, (d * (k - 1)) // 2), dilation=d),
                nn.ReLU(),
            ]
        elif kind == "max":
            k, s, p, d = a
            layers.append(nn.MaxPool2d(k, s, padding=min(p, k // 2), dilation=d))
        elif kind == "avg":
            k, s, p = a
            layers.append(nn.AvgPool2d(k, s, padding=min(p, k // 2)))
        elif kind == "tconv":
            k, s, p = a
            layers.append(nn.ConvTranspose2d(1, 1, k, stride=s, padding=min(p, (k - 1) // 2)))
        elif kind == "up":
            factor, mode = a
            layers.append(nn.Upsample(scale_factor=factor, mode=mode))
        elif kind == "pad":
            layers.append(nn.ZeroPad2d((a[0], a[1], a[1], a[0])))
        elif kind == "fpad":
            layers.append(_Fn(lambda x, a=a: F.pad(x, (a[0], a[1], a[1], 0))))
        elif kind == "bn":
            layers.append(nn.BatchNorm2d(1))
        else:
            layers.append(nn.Sequential())  # the identity
    return nn.Sequential(*layers)


def _fits(report) -> bool:
    return report.ok and all(
        r.output is not None and min(r.output[1:]) >= 1 and max(r.output[1:]) <= 48
        for r in report.layers
    )


@settings(max_examples=25, deadline=None)
@given(st.lists(_layer, min_size=1, max_size=5), st.integers(8, 14))
def test_random_chains_match_the_linearised_copy(spec, side):
    model = _build(spec)
    report = trace_shapes(model, (1, side, side))
    if not _fits(report):
        return
    rows = len(report.layers)
    assert check_every_row(model, (1, side, side), margin=None) == rows
    check_extended(model, (1, side, side))  # the textbook intervals, exactly


class _Branch(nn.Module):
    def __init__(self, a: nn.Module, b: nn.Module, cat: bool) -> None:
        super().__init__()
        self.a, self.b, self.cat, self.out = a, b, cat, nn.ReLU()

    def forward(self, x):
        y = torch.cat([self.a(x), self.b(x)], 1) if self.cat else self.a(x) + self.b(x)
        return self.out(y)


@settings(max_examples=20, deadline=None)
@given(
    st.integers(1, 3),
    st.integers(1, 3),
    st.integers(1, 3),
    st.integers(1, 2),
    st.booleans(),
    st.booleans(),
    st.integers(8, 14),
)
def test_random_branches_match_the_linearised_copy(ka, kb, da, s, cat, empty, side):
    pa, pb = da * (ka - 1) // 2, (kb - 1) // 2
    a = nn.Conv2d(1, 1, ka, stride=s, padding=pa, dilation=da)
    if empty and s == 1 and 2 * pa == da * (ka - 1):
        b = nn.Sequential()  # the CIFAR-ResNet shortcut
    else:
        b = nn.Sequential(nn.Conv2d(1, 1, kb, padding=pb), nn.AvgPool2d(s, s))
    head = nn.Sequential(nn.Conv2d(2 if cat else 1, 1, 3), nn.AdaptiveMaxPool2d(3))
    model = nn.Sequential(_Branch(a, b, cat), head)
    report = trace_shapes(model, (1, side, side))
    if not report.ok:
        return
    assert check_every_row(model, (1, side, side), margin=4) == len(report.layers)


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


def test_a_deep_padded_chain_has_its_field():
    """400 padded 3×3 convolutions: each unit reaches 400 pixels into the padding (the
    extended image followed back 400 rows deep, as densenet121 needs)."""
    model = nn.Sequential(*[nn.Conv2d(1, 1, 3, padding=1) for _ in range(400)])
    field = trace_shapes(model, (1, 6, 6)).layers[-1].receptive
    assert field.size == (801, 801) and field.start == (-400, -400)


def test_start_after_a_transposed_convolution_by_hand():
    """dec2 reads the cat's units −1…1; the cat's unit −1 is up2's, which is mid's unit
    ⌊−1/2⌋ = −1, whose field starts one jump (4) before mid's unit 0 at −7: −11 (the
    previous code said −7, as if the padding after up2 reached no further)."""
    report = trace_shapes(_UNet(), (1, 16, 16))
    start = {r.name: r.receptive.start for r in report.layers if not r.functional}
    assert start["mid"] == (-7, -7) and start["up2"] == (-7, -7)
    assert start["dec2"] == (-11, -11) and start["dec1"] == (-11, -11)
