"""Faithfulness metrics on cases whose answer is known by construction."""

import pytest
import torch
from torch import nn

import archlab
from archlab.analysis import faithfulness as FA
from archlab.errors import ArchlabError
from archlab.training.predict import to_input
from tests.outside_models import OUTSIDE_MODELS


class Linear(nn.Module):
    """logits = W·x + b: the exact attribution of class c is W_c × (x − black)."""

    def __init__(self, weight=None):
        super().__init__()
        self.fc = nn.Linear(784, 10)
        if weight is not None:
            with torch.no_grad():
                self.fc.weight.copy_(weight)
                self.fc.bias.zero_()

    def forward(self, x):
        return self.fc(x.flatten(1))


class LeftHalf(nn.Module):
    """Looks only at the left 14 columns."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(1)
        self.fc = nn.Linear(28 * 14, 10)

    def forward(self, x):
        return self.fc(x[..., :14].flatten(1))


def _images(n, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, 28, 28), generator=g, dtype=torch.uint8)


def _linear():
    g = torch.Generator().manual_seed(0)
    return Linear(torch.randn(10, 784, generator=g) * 0.05).eval()


def test_saliency_and_ig_beat_the_random_map_on_a_linear_model():
    report = FA.faithfulness_of_model(
        _linear(), _images(40), methods="saliency,ig", detail=0, controls=("random",)
    )
    rnd = report.row("random")
    for name in ("saliency", "ig"):
        row = report.row(name)
        # a wide margin: the intervals are far apart
        assert row.morf[0] + row.morf[1] < rnd.morf[0] - rnd.morf[1] - 0.05, name
        assert row.gap > rnd.gap + 0.1, name
    # IG is W × x exactly here: the oracle order, so its MoRF is the lowest
    assert report.row("ig").morf[0] <= report.row("saliency").morf[0]
    assert report.beats_random()["ig"][:2] == ["MoRF", "LeRF"]


def test_pixels_the_model_ignores_do_not_move_the_curve():
    model = LeftHalf().eval()
    x = to_input(_images(5))
    with torch.no_grad():
        targets = model(x).argmax(1)
    columns = torch.arange(784) % 28
    right_first = torch.cat([(columns >= 14).nonzero(), (columns < 14).nonzero()]).flatten()
    order = right_first.expand(5, -1)
    for fill in FA.FILLS:
        morf, lerf = FA.deletion_curves(model, x, targets, order, fill=fill)
        # 392 right-half pixels = 14 steps of 28: the first 15 points are the image's own
        assert torch.equal(morf[:, :15], morf[:, :1].expand(-1, 15)), fill
        # LeRF removes the left half first, then the right half: with a fixed fill the
        # last 15 points are equal; ROAD imputes the left half from the right one, so
        # removing right-half pixels there does move the (imputed) left half
        if fill != "road":
            assert torch.equal(lerf[:, -15:], lerf[:, -1:].expand(-1, 15)), fill
        assert not torch.equal(morf[:, 15], morf[:, 0])


def test_the_constant_map_is_a_random_order_in_expectation():
    report = FA.faithfulness_of_model(_linear(), _images(300, seed=3), methods="saliency", detail=0)
    const, rnd = report.row("constant"), report.row("random")
    for a, b in ((const.morf, rnd.morf), (const.lerf, rnd.lerf)):
        assert abs(a[0] - b[0]) < 3 * (a[1] ** 2 + b[1] ** 2) ** 0.5
    # and the constant map's ties are not broken by position (that would be a raster scan)
    order = FA.rank_pixels(torch.ones(2, 28, 28), torch.Generator().manual_seed(0))
    assert not torch.equal(order[0], torch.arange(784))
    assert sorted(order[0].tolist()) == list(range(784))


def test_all_pixels_inserted_is_the_original_probability():
    model = _linear()
    x = to_input(_images(4))
    with torch.no_grad():
        probs = torch.softmax(model(x), 1)
    targets = probs.argmax(1)
    order = FA.rank_pixels(torch.rand(4, 28, 28), torch.Generator().manual_seed(0))
    for fill in FA.FILLS:
        morf, lerf = FA.deletion_curves(model, x, targets, order, fill=fill)
        original = probs.gather(1, targets[:, None])[:, 0]
        # insertion of all the pixels = LeRF with nothing removed: the image itself
        torch.testing.assert_close(lerf[:, 0], original, rtol=0, atol=1e-6)
        torch.testing.assert_close(morf[:, 0], original, rtol=0, atol=1e-6)
        assert morf.shape == (4, 29)  # 28 pixels a step: 29 points


def test_road_imputation_is_the_weighted_mean_of_the_neighbours():
    x = torch.rand(1, 1, 28, 28)
    removed = torch.zeros_like(x, dtype=torch.bool)
    removed[0, 0, 10, 10] = True
    out = FA.road_impute(x, removed, black=0.0, noise=0.0)
    patch = x[0, 0, 9:12, 9:12]
    expected = (patch * FA._ROAD_KERNEL[0, 0]).sum()
    torch.testing.assert_close(out[0, 0, 10, 10], expected)
    assert torch.equal(out[~removed], x[~removed])
    # a hole in a constant image is filled with that constant; everything removed: black
    flat = torch.full((1, 1, 28, 28), 0.7)
    hole = torch.zeros_like(flat, dtype=torch.bool)
    hole[..., 5:15, 3:20] = True
    torch.testing.assert_close(FA.road_impute(flat, hole, 0.0, noise=0.0), flat)
    everything = torch.ones_like(hole)
    torch.testing.assert_close(FA.road_impute(flat, everything, -0.4, noise=0.0), flat * 0 - 0.4)


def test_stratified_images_and_table():
    labels = torch.arange(10).repeat(50)
    chosen = FA.stratified_indices(labels, 23)
    counts = torch.bincount(labels[chosen], minlength=10)
    assert counts.sum() == 23 and counts.max() - counts.min() == 1
    assert torch.equal(chosen, FA.stratified_indices(labels, 23))  # a fixed seed
    report = FA.faithfulness_of_model(
        archlab.create_model("cnn"), _images(3), methods="saliency,gradcam", detail=2
    )
    names = [r.name for r in report.rows]
    assert names == ["saliency", "gradcam", "gradcam@layer2.0", "random", "sobel", "constant"]
    assert report.row("constant").sensitivity == 0.0
    assert report.row("saliency").sanity_rho is not None
    text = str(report)
    assert "MoRF AUC" in text and "random (control)" in text and "layer2.2" in text
    assert report.to_dict()["rows"][0]["name"] == "saliency"
    with pytest.raises(ArchlabError, match="fill="):
        FA.faithfulness_of_model(archlab.create_model("cnn"), _images(1), fill="gray")


def test_gradcam_layer_is_the_last_block_on_the_main_path():
    from archlab.analysis.explain import gradcam_layer, last_conv_layer

    assert gradcam_layer(archlab.create_model("cnn"))[0] == "layer2.2"
    # the resnet's last registered convolution is the 1×1 projection shortcut
    resnet = archlab.create_model("resnet")
    assert last_conv_layer(resnet)[0] == "stage3.shortcut.0"
    assert gradcam_layer(resnet)[0] == "stage3"
    assert gradcam_layer(archlab.create_model("dnn")) is None


def _direct_deletion(model, x, target, order, counts, black):
    """The deletion loop written out: remove the first k pixels of ``order``, one forward
    pass per point, the explained class's probability."""
    probs = []
    for k in counts:
        img = x.clone().flatten()
        img[order[:k]] = black
        with torch.no_grad():
            probs.append(float(torch.softmax(model(img.view(1, 1, 28, 28)), 1)[0, target]))
    return probs


def _trapezoids(xs, ys):
    return sum((xs[i + 1] - xs[i]) * (ys[i] + ys[i + 1]) / 2 for i in range(len(xs) - 1))


def test_curves_and_auc_equal_a_direct_deletion_loop_with_an_uneven_last_step():
    """step 100 at 784 pixels: the last step removes 84, so the points are not evenly
    spaced; the area is integrated on the real share removed."""
    model, images = _linear(), _images(3, seed=7)
    report = FA.faithfulness_of_model(
        model, images, methods="saliency", controls=(), detail=0, step=100
    )
    counts = [0, 100, 200, 300, 400, 500, 600, 700, 784]
    xs = [c / 784 for c in counts]
    assert report.fractions.tolist() == pytest.approx(xs)
    x = to_input(images)
    morfs, lerfs = [], []
    for i in range(3):
        with torch.no_grad():
            target = int(model(x[i : i + 1]).argmax())
        # saliency of a linear model is |W_target|: the order, most relevant first
        order = model.fc.weight[target].detach().abs().argsort(descending=True)
        morfs.append(_trapezoids(xs, _direct_deletion(model, x[i], target, order, counts, 0.0)))
        least_first = order.flip(0)
        lerfs.append(
            _trapezoids(xs, _direct_deletion(model, x[i], target, least_first, counts, 0.0))
        )
    row = report.row("saliency")
    assert row.morf[0] == pytest.approx(sum(morfs) / 3, abs=1e-6)
    assert row.lerf[0] == pytest.approx(sum(lerfs) / 3, abs=1e-6)


class _Columns(nn.Module):
    """Reads the image column by column (a transposed view, as an RNN over the columns
    does): its input gradient is not contiguous."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.rnn = nn.GRU(28, 8, batch_first=True)
        self.fc = nn.Linear(8, 10)

    def forward(self, x):
        out, _ = self.rnn(x[:, 0].transpose(1, 2))
        return self.fc(out[:, -1])


def test_a_model_with_a_non_contiguous_gradient_is_scored():
    from archlab.analysis._attribution import attribute_batch

    x = to_input(_images(2)).requires_grad_(True)
    assert attribute_batch(_Columns(), x, 0, "saliency", 0.0).map.is_contiguous()
    report = FA.faithfulness_of_model(
        _Columns().eval(), _images(3), methods="saliency", controls=("random",), detail=2
    )
    assert report.row("saliency").sensitivity is not None


class _Argmax(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(784, 10)

    def forward(self, x):
        return nn.functional.one_hot(self.fc(x.flatten(1)).argmax(1), 10).float()


def test_a_model_without_gradient_is_one_clear_error():
    with pytest.raises(ArchlabError, match="no gradient"):
        FA.faithfulness_of_model(_Argmax(), _images(2), methods="saliency", detail=0)
    # occlusion needs no gradient
    report = FA.faithfulness_of_model(
        _Argmax(), _images(2), methods="occlusion", controls=(), detail=0
    )
    assert [r.name for r in report.rows] == ["occlusion"]


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("images", 0),
        ("images", 10**9),
        ("step", 0),
        ("step", -3),
        ("step", 785),
        ("detail", -5),
        ("seed", 10**30),
        ("seed", -1),
        ("fill", "gray"),
        ("methods", "nope"),
        ("methods", ""),  # it used to mean all
        ("methods", 5),
        ("methods", [None]),
    ],
)
def test_options_out_of_range_are_refused_by_the_library(option, value):
    with pytest.raises(ArchlabError):
        FA.check_faithfulness_options(**{option: value})
    with pytest.raises(ArchlabError):  # before any run is loaded
        FA.faithfulness("no-such-run", runs="/nonexistent", **{option: value})
    if option != "images":
        with pytest.raises(ArchlabError):
            FA.faithfulness_of_model(_linear(), _images(2), **{option: value})


@pytest.mark.parametrize("controls", ["random", ["random", "noise"], [None]])
def test_control_maps_of_the_wrong_kind_are_refused(controls):
    with pytest.raises(ArchlabError, match="controls"):
        FA.faithfulness_of_model(_linear(), _images(2), controls=controls, detail=0)


def test_one_run_failing_keeps_the_other_runs_tables(tmp_path, monkeypatch, capsys):
    import json

    import archlab.training.data as data_module
    from archlab.cli import main
    from tests.synthetic import learnable_dataset

    data = learnable_dataset(200, 40)
    archlab.train(
        "dnn", runs=tmp_path, data=data, max_iterations=2, progress=False, log=lambda s: None
    )
    monkeypatch.setattr(data_module, "load_fashion_mnist", lambda *a, **k: data)
    argv = ["faithfulness", "no-such-run", "dnn", "--runs", str(tmp_path)]
    argv += ["--images", "4", "--detail", "0", "--methods", "saliency", "--json"]
    code = main(argv)
    out, err = capsys.readouterr()
    assert code == 2 and "no-such-run" in err
    assert [r["model"] for r in json.loads(out)] == ["dnn"]


@pytest.mark.parametrize(
    "argv",
    [["--step", "0"], ["--detail", "-1"], ["--seed", str(10**30)], ["--methods", ""]],
)
def test_the_cli_checks_the_options_before_any_work(argv, capsys, tmp_path):
    from archlab.cli import main

    code = main(["faithfulness", "nothing-here", "--runs", str(tmp_path), *argv])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and argv[0] in err[0], err


@pytest.mark.parametrize("build", OUTSIDE_MODELS)
def test_curves_equal_the_direct_loop_on_models_beyond_the_registry(build):
    torch.manual_seed(0)
    model = build().eval()
    x = to_input(_images(2, seed=5))
    with torch.no_grad():
        targets = model(x).argmax(1)
    order = torch.stack(
        [torch.randperm(784, generator=torch.Generator().manual_seed(i)) for i in range(2)]
    )
    morf, lerf = FA.deletion_curves(model, x, targets, order, fill="zero", step=100)
    counts = [0, 100, 200, 300, 400, 500, 600, 700, 784]
    for i in range(2):
        t = int(targets[i])
        direct = _direct_deletion(model, x[i], t, order[i], counts, 0.0)
        assert morf[i].tolist() == pytest.approx(direct, abs=1e-6)
        direct = _direct_deletion(model, x[i], t, order[i].flip(0), counts, 0.0)
        assert lerf[i].tolist() == pytest.approx(direct, abs=1e-6)
