"""archlab.channels (archlab/analysis/channels.py): dataset examples against a direct search
with forward hooks, a hand-set vertical-edge detector, dead channels, the effective field,
relevance, the options, the command."""

import json

import pytest
import torch
from torch import nn

import archlab
from archlab.analysis import channels as CH
from archlab.errors import ArchlabError


def _images(n: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, 28, 28), generator=g, dtype=torch.uint8)


def _small_cnn() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(4, 6, 3),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(6 * 12 * 12, 10),
    ).eval()


def _direct_means(model: nn.Module, x: torch.Tensor, name: str) -> torch.Tensor:
    """The test's own search: a forward hook, the mean over positions, (N, C)."""
    got = []
    handle = dict(model.named_modules())[name].register_forward_hook(
        lambda _m, _a, out: got.append(out.detach())
    )
    try:
        with torch.no_grad():
            model(x)
    finally:
        handle.remove()
    return got[0].mean((2, 3))


def test_top_and_bottom_images_equal_a_direct_search_with_forward_hooks():
    model = _small_cnn()
    images = _images(60)
    report = CH.channels_of_model(model, images, steps=0, erf_images=0, relevant=False)
    x = images.unsqueeze(1).float() / 255
    assert [lay.layer for lay in report.layers] == ["0", "3"]
    for lay in report.layers:
        means = _direct_means(model, x, lay.layer)
        assert len(lay.channels) == means.shape[1]
        for ch in lay.channels:
            column = means[:, ch.index]
            order = sorted(range(len(column)), key=lambda i: -float(column[i]))
            assert ch.top == order[:9]
            assert ch.bottom == order[::-1][:9]
            assert ch.top_values == pytest.approx([float(column[i]) for i in order[:9]], abs=1e-5)


def test_the_argmax_box_is_the_strongest_units_field():
    model = _small_cnn()
    images = _images(20, seed=1)
    report = CH.channels_of_model(model, images, "3", steps=0, erf_images=0, relevant=False)
    got = []
    handle = model[3].register_forward_hook(lambda _m, _a, out: got.append(out.detach()))
    with torch.no_grad():
        model(images.unsqueeze(1).float() / 255)
    handle.remove()
    for ch in report.layers[0].channels:
        i = ch.top[0]
        r, c = divmod(int(got[0][i, ch.index].flatten().argmax()), 12)
        # conv 3×3 pad 1 → pool 2 → conv 3×3: unit (r, c) sees rows 2r-1 .. 2r+6 (8 pixels)
        expected = (max(2 * r - 1, 0), max(2 * c - 1, 0), min(2 * r + 6, 27), min(2 * c + 6, 27))
        assert ch.top_boxes[0] == expected


def _edge_model() -> nn.Module:
    """One channel, a hand-set vertical edge: 7×7 kernels, dark on the left three columns,
    bright on the right three, stepping 7 pixels (a 4×4 map of edge detectors)."""
    conv = nn.Conv2d(1, 1, 7, stride=7, bias=False)
    with torch.no_grad():
        conv.weight.zero_()
        conv.weight[0, 0, :, :3] = -1.0
        conv.weight[0, 0, :, 4:] = 1.0
    return nn.Sequential(conv, nn.Flatten(), nn.Linear(16, 2)).eval()


def _bars(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Images of random vertical and horizontal bars, and each one's vertical-edge strength
    computed directly: per 7×7 tile, right three columns minus left three, mean of tiles."""
    g = torch.Generator().manual_seed(3)
    images = torch.zeros(n, 28, 28, dtype=torch.uint8)
    for i in range(n):
        for _ in range(int(torch.randint(1, 6, (1,), generator=g))):
            at = int(torch.randint(0, 25, (1,), generator=g))
            width = int(torch.randint(1, 4, (1,), generator=g))
            value = int(torch.randint(60, 256, (1,), generator=g))
            if i % 2:
                images[i, :, at : at + width] = value  # a vertical bar: vertical edges
            else:
                images[i, at : at + width, :] = value
    x = images.double() / 255
    strength = torch.zeros(n, dtype=torch.float64)
    for r in range(0, 28, 7):
        for c in range(0, 28, 7):
            tile = x[:, r : r + 7, c : c + 7]
            strength += tile[:, :, 4:].sum((1, 2)) - tile[:, :, :3].sum((1, 2))
    return images, strength / 16


def test_a_vertical_edge_detector_synthesises_a_vertical_edge_and_finds_vertical_bars():
    model = _edge_model()
    images, strength = _bars(40)
    report = CH.channels_of_model(model, images, "0", steps=64, erf_images=0, relevant=False)
    ch = report.layers[0].channels[0]
    expected = sorted(range(40), key=lambda i: -float(strength[i]))[:9]
    assert ch.top_values == pytest.approx(strength[expected].tolist(), abs=1e-4)
    edges = [i for i in expected if strength[i] > 1e-6]  # horizontal bars tie at 0
    assert len(edges) >= 5 and ch.top[: len(edges)] == edges
    image = ch.synthesised.double()
    across = (image[:, 1:] - image[:, :-1]).abs().mean()  # left-right steps: vertical edges
    down = (image[1:, :] - image[:-1, :]).abs().mean()
    assert across > 2 * down
    columns = image.mean(0)
    for c in range(0, 28, 7):  # darker on the left, brighter on the right, in every tile
        assert columns[c + 4 : c + 7].mean() - columns[c : c + 3].mean() > 0.5
    assert ch.synthesised_value >= ch.best_value


def test_a_dead_channel_is_found():
    conv = nn.Conv2d(1, 2, 3, padding=1)
    with torch.no_grad():
        conv.weight.zero_()
        conv.weight[0].fill_(0.1)
        conv.bias.copy_(torch.tensor([0.5, -1.0]))  # channel 1 is -1 everywhere
    model = nn.Sequential(conv, nn.ReLU(), nn.Flatten(), nn.Linear(2 * 784, 3)).eval()
    report = CH.channels_of_model(model, _images(12), steps=0, erf_images=0, relevant=False)
    layer = report.layers[0]
    assert layer.dead == [1]
    assert {c.index: c.fires for c in layer.channels} == {0: 1.0, 1: 0.0}
    assert "dead: 1" in str(report)


def test_the_effective_field_of_a_positive_net_is_its_theoretical_field():
    conv1, conv2 = nn.Conv2d(1, 2, 3, padding=1), nn.Conv2d(2, 3, 5)
    with torch.no_grad():
        for conv in (conv1, conv2):
            conv.weight.fill_(1.0)
            conv.bias.zero_()
    model = nn.Sequential(conv1, conv2, nn.Flatten(), nn.Linear(3 * 24 * 24, 2)).eval()
    images = _images(10, seed=2)
    report = CH.channels_of_model(model, images, "1", steps=0, erf_images=4, relevant=False)
    layer = report.layers[0]
    assert layer.field_size == (7, 7)
    assert layer.field_box == (11, 11, 17, 17)
    # centre unit (12, 12) of the 24×24 map sees input rows 12-1 .. 12-1+6 = 11 .. 17
    x = (images[:4].unsqueeze(1).float() / 255).requires_grad_(True)
    model(x)  # the test's own gradient
    out = model[1](model[0](x))
    (grad,) = torch.autograd.grad(out[:, 0, 12, 12].sum(), x)
    torch.testing.assert_close(layer.channels[0].erf, grad.abs().mean(0)[0])
    nonzero = layer.channels[0].erf.nonzero()
    assert (int(nonzero[:, 0].min()), int(nonzero[:, 0].max())) == (11, 17)
    assert layer.channels[0].erf_width[0] <= 7


def _shortest(line: list[float], mass: float) -> int:
    total = sum(line)
    best = len(line)
    for a in range(len(line)):
        for b in range(a, len(line)):
            if sum(line[a : b + 1]) >= mass * total - 1e-9:
                best = min(best, b - a + 1)
                break
    return best


@pytest.mark.parametrize("seed", range(5))
def test_mass_width_is_the_shortest_run_holding_95_percent(seed):
    g = torch.Generator().manual_seed(seed)
    grad = torch.rand(28, 28, generator=g) ** 6
    rows = grad.double().sum(1).tolist()
    cols = grad.double().sum(0).tolist()
    assert CH.mass_width(grad) == (_shortest(rows, 0.95), _shortest(cols, 0.95))


def test_relevance_sums_to_the_class_score_where_the_rest_is_linear_without_bias():
    torch.manual_seed(4)
    model = nn.Sequential(
        nn.Conv2d(1, 3, 3), nn.ReLU(), nn.Flatten(), nn.Linear(3 * 26 * 26, 4, bias=False)
    ).eval()
    x = _images(8).unsqueeze(1).float() / 255
    rel = CH.relevance(model, x, ["1"])["1"]
    with torch.no_grad():
        logits = model(x)
    torch.testing.assert_close(rel.sum(1), logits.max(1).values, rtol=1e-4, atol=1e-4)


def test_the_report_prints_plots_and_exports():
    report = CH.channels_of_model(_small_cnn(), _images(30), "0", steps=8, erf_images=4)
    assert "0 (4×28×28)" in str(report)
    data = report.to_dict()
    assert data["layers"][0]["channels"][0]["top"] == report.layers[0].channels[0].top
    assert "test_images" not in data and 0 <= data["beats_best_fraction"] <= 1
    assert repr(report).startswith("<archlab.Channels model='Sequential'")
    fig = report.plot()
    assert len(fig.axes) >= 6


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"channels": [0], "top": 2}, "channels="),
        ({"top": 0}, "top=0"),
        ({"steps": -1}, "steps=-1"),
        ({"channels": [99]}, "channels=[99]"),
        ({"layer": "nope"}, "layer='nope'"),
        ({"layer": "5"}, "layer='5'"),  # Flatten: no feature maps
    ],
)
def test_bad_options_are_one_error_naming_the_argument(kwargs, named):
    with pytest.raises(ArchlabError) as caught:
        CH.channels_of_model(_small_cnn(), _images(10), **{"steps": 0, "erf_images": 0, **kwargs})
    assert str(caught.value).startswith(named) and "\n" not in str(caught.value)


def test_a_model_without_convolutions_is_refused():
    model = nn.Sequential(nn.Flatten(), nn.Linear(784, 10))
    with pytest.raises(ArchlabError, match="no convolution"):
        CH.channels_of_model(model, _images(10), steps=0)


def test_the_command_on_a_trained_run(tmp_path, monkeypatch, capsys):
    import archlab.training.data as data_module
    from archlab.cli import main
    from tests.synthetic import learnable_dataset

    data = learnable_dataset(200, 40)
    archlab.train(
        "cnn", runs=tmp_path, data=data, max_iterations=2, progress=False, log=lambda s: None
    )
    monkeypatch.setattr(data_module, "load_fashion_mnist", lambda *a, **k: data)
    argv = ["channels", "cnn", "--runs", str(tmp_path), "--layer", "layer2.0", "--top", "3"]
    assert main([*argv, "--steps", "4", "--erf-images", "2", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [c["layer"] for c in out["layers"][0]["channels"]] == ["layer2.0"] * 3
    assert len(out["layers"][0]["channels"][0]["relevant"]) == 9
    assert out["layers"][0]["field_size"] == [8, 8]  # the lecture's layer2 conv: 8×8
    assert all(1 <= w <= 8 for w in out["layers"][0]["erf_width"])
    assert main([*argv, "--steps", "2", "--erf-images", "0", "--diverse", "2", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert len(out["layers"][0]["channels"][0]["diverse_values"]) == 2
    out_file = tmp_path / "c.png"
    assert main([*argv, "--steps", "2", "--no-relevance", "--out", str(out_file)]) == 0
    assert out_file.stat().st_size > 0 and "wrote" in capsys.readouterr().out
    assert main(["channels", "cnn", "--runs", str(tmp_path), "--channels", "0", "--top", "1"]) == 2
    assert main(["channels", "cnn", "--runs", str(tmp_path), "--steps", "-1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("archlab: error: --steps -1")
    assert main([*argv[:6], "--channels", "64"]) == 2  # layer2.0 has 64: refused at once
    assert "layer2.0 has 64 channels (0-63)" in capsys.readouterr().err


@pytest.mark.realdata
def test_the_lecture_cnn_on_real_images(real_data):
    """An untrained CNN on the real test images: the top images equal the direct search."""
    torch.manual_seed(0)
    model = archlab.create_model("cnn").eval()
    images = real_data.test_images[:500]
    report = CH.channels_of_model(model, images, "layer2.0", top=3, steps=16, erf_images=8)
    means = _direct_means(model, images.unsqueeze(1).float() / 255, "layer2.0")
    for ch in report.layers[0].channels:
        assert ch.top[0] == int(means[:, ch.index].argmax())
    assert report.layers[0].field_size == (8, 8)


def test_a_users_module_through_the_public_door():
    from tests.synthetic import learnable_dataset

    data = learnable_dataset(20, 30)
    report = archlab.channels(_small_cnn(), "3", top=2, steps=4, erf_images=2, data=data)
    assert report.model == "Sequential" and report.images == 30
    fires = [c.fires for c in report.layers[0].channels]
    assert len(fires) == 2 and fires == sorted(fires, reverse=True)


def test_relevance_is_the_same_behind_an_in_place_activation():
    def build(inplace: bool) -> nn.Module:
        torch.manual_seed(5)
        return nn.Sequential(
            nn.Conv2d(1, 3, 3),
            nn.Hardtanh(-0.1, 0.1, inplace=inplace),  # not homogeneous, unlike ReLU
            nn.Flatten(),
            nn.Linear(3 * 26 * 26, 4),
        ).eval()

    x = _images(6).unsqueeze(1).float() / 255
    plain = CH.relevance(build(False), x, ["0"])["0"]
    torch.testing.assert_close(CH.relevance(build(True), x, ["0"])["0"], plain)


def test_a_first_layer_channel_reaches_its_box_corner_optimum():
    """A conv channel is affine in the pixels: the direct optimum is black where the
    channel's weight on a pixel is negative, white where positive. With a mostly negative
    kernel (as most of the lecture CNN's layer1.0 channels that failed), that is a nearly
    black image; the regularised synthesis must reach it within 1 %."""
    conv = nn.Conv2d(1, 1, 3, padding=1)
    with torch.no_grad():
        conv.weight.copy_(
            torch.tensor([[[[-0.3, 0.2, -0.1], [0.1, -0.4, 0.2], [-0.2, 0.1, -0.1]]]])
        )
        conv.bias.fill_(0.05)
    model = nn.Sequential(conv, nn.ReLU(), nn.Flatten(), nn.Linear(784, 2)).eval()
    mean, std = 0.2860, 0.3530
    # the test's own optimum: d(mean activation)/d(pixel) by a transposed convolution
    w = conv.weight.detach().double()
    slope = (
        torch.nn.functional.conv_transpose2d(
            torch.full((1, 1, 28, 28), 1 / 784, dtype=torch.float64), w, padding=1
        )
        / std
    )
    best = (slope > 0).double()
    optimum = float(
        torch.nn.functional.conv2d((best - mean) / std, w, padding=1).mean()
        + conv.bias.detach().double()
    )
    image, value = CH.synthesise(model, "0", [0], normalize=(mean, std))
    assert float(value[0]) >= optimum - 0.01 * abs(optimum)
    assert float(value[0]) <= optimum + 1e-5  # nothing beats the box corner
    assert float((image[0].double() - best[0, 0]).abs().mean()) < 0.02


def _spread(images: torch.Tensor) -> float:
    """The test's own measure: mean 1 − cosine of every pair of one channel's images
    (each centred), over the channels; ``images`` ``(K, copies, 28, 28)``."""
    total, pairs = 0.0, 0
    for group in images.double():
        flat = group.flatten(1)
        flat = flat - flat.mean(1, keepdim=True)
        for i in range(len(flat)):
            for j in range(i + 1, len(flat)):
                cos = float(flat[i] @ flat[j] / (flat[i].norm() * flat[j].norm() + 1e-12))
                total, pairs = total + 1 - cos, pairs + 1
    return total / pairs


def test_the_diversity_term_makes_one_channels_images_differ_more():
    model = _small_cnn()
    kwargs = dict(steps=96, seed=3)
    alike, _ = CH.synthesise_diverse(model, "3", [0, 2, 5], 3, weight=0.0, **kwargs)
    apart, values = CH.synthesise_diverse(model, "3", [0, 2, 5], 3, **kwargs)
    assert apart.shape == (3, 3, 28, 28) and values.shape == (3, 3)
    assert _spread(apart) > _spread(alike) + 0.05
    # the penalty as lucid defines it, computed here: Gram cosines of every ordered pair / K
    out = torch.randn(3, 4, 5, 5, generator=torch.Generator().manual_seed(0))
    grams = [(o.flatten(1) @ o.flatten(1).T).flatten() for o in out]
    direct = sum(
        float(grams[i] @ grams[j] / (grams[i].norm() * grams[j].norm()))
        for i in range(3)
        for j in range(3)
        if i != j
    )
    assert float(CH.diversity_penalty(out)) == pytest.approx(direct / 3, rel=1e-5)


def test_the_report_carries_diverse_optima_when_asked():
    report = CH.channels_of_model(
        _small_cnn(), _images(12), "3", top=2, steps=8, erf_images=0, relevant=False, diverse=2
    )
    for ch in report.layers[0].channels:
        assert ch.diverse.shape == (2, 28, 28) and len(ch.diverse_values) == 2
    assert "diverse optima: 2 per channel" in str(report)
    assert len(report.to_dict()["layers"][0]["channels"][0]["diverse_values"]) == 2
    with pytest.raises(ArchlabError, match="diverse=1"):
        CH.check_channels_options(diverse=1)


def test_timings_name_every_step_and_add_up_to_the_call():
    import time

    timings: dict[str, float] = {}
    start = time.perf_counter()
    CH.channels_of_model(_small_cnn(), _images(12), top=2, steps=4, erf_images=2, timings=timings)
    wall = time.perf_counter() - start
    steps = ["dataset search", "relevance", "synthesis", "diverse synthesis", "effective field"]
    assert set(timings) == {*steps, "report"}
    assert all(v >= 0 for v in timings.values()) and sum(timings.values()) <= wall


class _Residual(nn.Module):
    """relu(conv2(relu(conv1(x))) + shortcut(x)), all weights positive: the merge's field
    is the union of its two branches' fields (5×5 and 1×1 around the same pixel)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.conv2 = nn.Conv2d(1, 2, 3, padding=1), nn.Conv2d(2, 2, 3, padding=1)
        self.shortcut, self.out = nn.Conv2d(1, 2, 1), nn.ReLU()
        self.head = nn.Linear(2 * 28 * 28, 3)
        with torch.no_grad():
            for conv in (self.conv1, self.conv2, self.shortcut):
                conv.weight.uniform_(0.5, 1.0)
                conv.bias.zero_()

    def forward(self, x):
        y = self.out(self.conv2(torch.relu(self.conv1(x))) + self.shortcut(x))
        return self.head(y.flatten(1))


def test_the_effective_field_after_a_residual_add_is_the_direct_gradient():
    model = _Residual().eval()
    images = _images(12, seed=4)
    report = CH.channels_of_model(model, images, "out", steps=0, erf_images=6, relevant=False)
    layer = report.layers[0]
    x = (images[:6].unsqueeze(1).float() / 255).requires_grad_(True)
    y = model.out(model.conv2(torch.relu(model.conv1(x))) + model.shortcut(x))
    for c in range(2):  # the test's own gradient of the centre unit (14, 14)
        (grad,) = torch.autograd.grad(y[:, c, 14, 14].sum(), x, retain_graph=True)
        torch.testing.assert_close(layer.channels[c].erf, grad.abs().mean(0)[0])
    nonzero = layer.erf.nonzero()
    assert layer.field_size == (5, 5)
    assert (int(nonzero[:, 0].min()), int(nonzero[:, 0].max())) == (12, 16)
    assert layer.erf_width[0] <= 5
