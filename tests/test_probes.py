"""Linear probes, checked against references that are not archlab's: forward hooks written
here, pooling written out by reshaping, scikit-learn's LogisticRegression, and a model
built so that one row is linearly separable and the row before it is not."""

import dataclasses

import pytest
import torch
from torch import nn

import archlab
from archlab.analysis import probes as P
from archlab.errors import ArchlabError
from archlab.training.data import FashionMNIST
from tests.outside_models import OUTSIDE_MODELS


def _net(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(1, 4, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(4 * 13 * 13, 10)
    ).eval()


def test_the_features_equal_a_forward_hooks_outputs():
    model = _net()
    images = torch.randint(0, 256, (P.CHUNK + 7, 28, 28), dtype=torch.uint8)  # two chunks
    seen: dict[str, list] = {}
    hooks = [
        m.register_forward_hook(lambda m, a, out, n=n: seen.setdefault(n, []).append(out))
        for n, m in model.named_children()
    ]
    with torch.no_grad():
        model(images.unsqueeze(1).float() / 255)
    for h in hooks:
        h.remove()
    rows, features = P.row_features(model, images, most=10**6)  # no pooling
    assert [r.name for r in rows] == ["0", "1", "2", "3", "4"]
    for row, got in zip(rows, features, strict=True):
        want = seen[row.name][0].reshape(len(images), -1)
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def test_maps_are_average_pooled_to_at_most_the_limit():
    x = torch.randn(3, 2, 8, 8)
    got = P.pool_features(x, most=32)  # 2·4·4 = 32: 2×2 blocks averaged
    want = x.reshape(3, 2, 4, 2, 4, 2).mean((3, 5)).reshape(3, -1)
    torch.testing.assert_close(got, want)
    assert P.pool_features(torch.randn(2, 32, 28, 28)).shape == (2, 2048)
    assert P.pool_features(torch.randn(2, 5000, 3, 3)).shape == (2, 2048)  # 1×1, then 1-D
    flat = torch.randn(2, 12)
    torch.testing.assert_close(P.pool_features(flat, most=6), flat.reshape(2, 6, 2).mean(2))
    assert torch.equal(P.pool_features(flat), flat)


def test_a_probe_is_scikit_learns_logistic_regression():
    linear_model = pytest.importorskip("sklearn.linear_model")
    g = torch.Generator().manual_seed(0)
    x = torch.randn(300, 20, generator=g)
    y = (x[:, :3] @ torch.tensor([1.0, -2.0, 0.5]) + 0.5 * torch.randn(300, generator=g) > 0).long()
    y += (x[:, 3] > 1).long()  # three classes
    l2 = 1e-2
    weight, bias, mean, std = P.fit_probe(x, y, l2=l2, steps=500)
    z = ((x - mean) / std).double().numpy()
    ref = linear_model.LogisticRegression(C=1 / (l2 * len(x)), tol=1e-10, max_iter=10_000)
    ref.fit(z, y.numpy())
    torch.testing.assert_close(weight.T.double(), torch.from_numpy(ref.coef_), atol=1e-3, rtol=1e-3)
    torch.testing.assert_close(
        (bias - bias.mean()).double(), torch.from_numpy(ref.intercept_), atol=1e-3, rtol=1e-3
    )


class _Xor(nn.Module):
    """Row ``lin`` outputs (a, b, a + b − 1) for the brightness a, b of two patches: linear
    in (a, b), so a XOR b is not separable there; the ReLU after it makes the third unit
    a AND b, and a XOR b = a + b − 2·(a AND b) is."""

    def __init__(self):
        super().__init__()
        self.flat = nn.Flatten()
        self.lin = nn.Linear(784, 3)
        self.act = nn.ReLU()
        self.out = nn.Linear(3, 2)
        with torch.no_grad():
            w = torch.zeros(2, 28, 28)
            w[0, 2:8, 2:8] = 1 / 36
            w[1, 2:8, 20:26] = 1 / 36
            self.lin.weight.copy_(torch.stack([w[0], w[1], w[0] + w[1]]).reshape(3, 784))
            self.lin.bias.copy_(torch.tensor([0.0, 0.0, -1.0]))
            self.out.weight.copy_(torch.tensor([[-1.0, -1.0, 2.0], [1.0, 1.0, -2.0]]))
            self.out.bias.copy_(torch.tensor([0.5, -0.5]))

    def forward(self, x):
        return self.out(self.act(self.lin(self.flat(x))))


def _xor_data(n, g):
    a, b = torch.randint(0, 2, (n,), generator=g), torch.randint(0, 2, (n,), generator=g)
    images = torch.randint(0, 40, (n, 28, 28), generator=g)
    images[:, 2:8, 2:8] += 200 * a[:, None, None]
    images[:, 2:8, 20:26] += 200 * b[:, None, None]
    return images.to(torch.uint8), (a ^ b)


def _xor_set():
    g = torch.Generator().manual_seed(0)
    return FashionMNIST(*_xor_data(400, g), *_xor_data(400, g))


def test_the_jump_is_at_the_row_that_makes_the_classes_separable():
    result = P.probe_model(_Xor().eval(), _xor_set(), images=400, test_images=400, steps=200)
    assert result.points == [
        "pixels",
        "flat Flatten",
        "lin Linear",
        "act ReLU",
        "out Linear",
    ]
    acc = dict(zip(result.points, result.test_accuracy, strict=True))
    assert acc["lin Linear"] < 0.85  # XOR from (a, b, a + b − 1): three of four clusters
    assert acc["act ReLU"] == 1.0
    assert result.points[result.jump[0]] == "act ReLU"
    # the last row is the logits: a probe on them does what the model does
    assert result.model_accuracy == 1.0 and acc["out Linear"] == 1.0
    assert result.depth[0] == 0 and result.depth[-1] == 1


def test_the_report_prints_plots_and_exports(tmp_path):
    result = P.probe_model(_Xor().eval(), _xor_set(), images=100, test_images=100, steps=20)
    report = P.Probes([result], 100, 100, 20, P.L2)
    text = str(report)
    assert "largest jump at row 3, act ReLU (+" in text and "100 training images" in text
    assert "100 test images" in text
    d = report.to_dict()
    assert d["results"][0]["largest_jump"]["point"] == "act ReLU"
    assert d["results"][0]["test_accuracy"] == result.test_accuracy
    # no row better than the one before it: said so, not '+0.00 points' at some row
    flat = dataclasses.replace(result, test_accuracy=[0.5] * len(result.test_accuracy))
    assert "no row's probe beats the row before it" in str(P.Probes([flat], 100, 100, 20, P.L2))
    fig = report.plot()
    assert fig.axes[0].get_lines()[0].get_ydata()[0] == pytest.approx(100 * result.test_accuracy[0])
    report.save(tmp_path / "p.png")
    assert (tmp_path / "p.png").stat().st_size > 0


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"images": 5}, "images"),
        ({"test_images": 0}, "test_images"),
        ({"steps": 0}, "steps"),
        ({"l2": -1.0}, "l2"),
        ({"l2": float("nan")}, "l2"),
    ],
)
def test_options_are_checked_before_any_run_is_loaded(kwargs, name):
    with pytest.raises(ArchlabError, match=name):
        archlab.probes(["no-such-run"], runs="/nonexistent", **kwargs)


@pytest.mark.parametrize("argv", [["--images", "1"], ["--steps", "0"], ["--out", "x.txt"]])
def test_the_cli_checks_the_options_in_one_line(argv, capsys, tmp_path):
    from archlab.cli import main

    code = main(["probes", "nothing-here", "--runs", str(tmp_path), *argv])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1, err


@pytest.mark.realdata
def test_the_last_row_is_near_the_models_own_accuracy_on_a_real_run(real_data, tmp_path):
    run = archlab.train(
        "dnn", runs=tmp_path, data=real_data, max_iterations=300, progress=False, log=lambda s: None
    )
    report = archlab.probes([run], images=3000, test_images=2000, data=real_data)
    r = report.results[0]
    assert r.points[0] == "pixels" and r.points[-1] == "fc3 Linear"
    assert abs(r.test_accuracy[-1] - r.model_accuracy) < 0.02
    assert r.test_accuracy[-1] > r.test_accuracy[0]  # the network beats the pixels


@pytest.mark.parametrize("build", OUTSIDE_MODELS)
def test_probes_and_the_map_work_on_models_beyond_the_registry(build):
    from archlab.analysis.embedding import embed_model
    from tests.synthetic import learnable_dataset

    torch.manual_seed(0)
    data = learnable_dataset(60, 60)
    result = P.probe_model(build().eval(), data, images=60, test_images=60, steps=10)
    assert result.points[0] == "pixels" and len(result.points) >= 3
    assert all(0 <= a <= 1 for a in result.test_accuracy)
    report = embed_model(build().eval(), data, images=60)
    assert report.points.shape == (len(report.labels), 2)


def _bn_net() -> nn.Module:
    torch.manual_seed(1)
    conv, bn = nn.Conv2d(1, 3, 3), nn.BatchNorm2d(3)
    with torch.no_grad():  # eval-mode statistics and a negative scale: a per-feature affine map
        bn.running_mean.copy_(torch.tensor([0.3, -0.2, 0.1]))
        bn.running_var.copy_(torch.tensor([2.0, 0.5, 1.5]))
        bn.weight.copy_(torch.tensor([1.5, -0.7, 0.2]))
        bn.bias.copy_(torch.tensor([0.1, 0.0, -0.3]))
    return nn.Sequential(
        conv, bn, nn.ReLU(), nn.Flatten(), nn.Dropout(0.5), nn.Linear(3 * 26 * 26, 2)
    ).eval()


def test_a_row_that_is_an_affine_map_of_the_row_before_is_not_refitted(monkeypatch):
    data = _xor_set()
    fits = []
    real_fit = P.fit_probe
    monkeypatch.setattr(P, "fit_probe", lambda *a, **k: fits.append(1) or real_fit(*a, **k))
    result = P.probe_model(_bn_net(), data, images=200, test_images=200, steps=300)
    assert result.points == [
        "pixels",
        "0 Conv2d",
        "1 BatchNorm2d",
        "2 ReLU",
        "3 Flatten",
        "4 Dropout",
        "5 Linear",
    ]
    # pixels, conv, relu, linear fitted; the batch norm (eval), flatten and dropout reused
    assert len(fits) == 4
    assert "same probe" in result.shapes[2] and "same probe" not in result.shapes[3]
    # the reference: the batch norm's own features (a forward hook here), fitted directly
    from archlab.analysis.faithfulness import stratified_indices

    train_at = stratified_indices(data.train_labels, 200, 0)
    test_at = stratified_indices(data.test_labels, 200, 0)
    got = []
    model = _bn_net()
    model[1].register_forward_hook(lambda _m, _a, out: got.append(out.detach().flatten(1)))
    with torch.no_grad():
        model(data.train_images[train_at].unsqueeze(1).float() / 255)
        model(data.test_images[test_at].unsqueeze(1).float() / 255)
    probe = real_fit(got[0], data.train_labels[train_at].long(), steps=300)
    direct = P.probe_accuracy(probe, got[1], data.test_labels[test_at].long())
    assert result.test_accuracy[2] == pytest.approx(direct, abs=0.006)  # one image of 200
    assert result.test_accuracy[2] == result.test_accuracy[1]


def test_timings_name_the_steps():
    timings: dict[str, float] = {}
    P.probe_model(_Xor().eval(), _xor_set(), images=100, test_images=100, steps=5, timings=timings)
    assert set(timings) == {"tracing", "model accuracy", "fitting"}
    assert all(v >= 0 for v in timings.values())
