"""The map, checked against references that are not archlab's: a forward pre-hook written
here, scikit-learn's PCA and NearestNeighbors, and a direct vote."""

import sys

import pytest
import torch
from torch import nn

import archlab
from archlab.analysis import embedding as E
from archlab.analysis.probes import row_features, trace_rows
from archlab.errors import ArchlabError
from tests.synthetic import learnable_dataset


class _Net(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(1, 3, 3)
        self.fc1 = nn.Linear(3 * 26 * 26, 16)
        self.fc2 = nn.Linear(16, 10)

    def forward(self, x):
        x = torch.relu(self.conv(x)).flatten(1)
        return self.fc2(torch.relu(self.fc1(x)))


def test_the_projected_features_equal_a_hook_on_the_last_linears_input():
    model = _Net().eval()
    images = torch.randint(0, 256, (37, 28, 28), dtype=torch.uint8)
    seen = []
    handle = model.fc2.register_forward_pre_hook(lambda m, args: seen.append(args[0]))
    with torch.no_grad():
        model(images.unsqueeze(1).float() / 255)
    handle.remove()
    rows = trace_rows(model, (1, 28, 28))
    row = E.default_layer(rows, model)
    assert rows[row + 1].name == "fc2" and rows[row].type == "torch.relu"
    _, features = row_features(model, images, keep={row})
    torch.testing.assert_close(features[row], seen[0])
    assert all(f is None for i, f in enumerate(features) if i != row)


def test_pca_is_scikit_learns_up_to_the_sign_of_each_axis():
    decomposition = pytest.importorskip("sklearn.decomposition")
    g = torch.Generator().manual_seed(0)
    x = torch.randn(200, 6, generator=g) * torch.tensor([5.0, 3.0, 1.0, 0.5, 0.2, 0.1])
    x = x @ torch.linalg.qr(torch.randn(6, 6, generator=g))[0]
    ours, shares = E.pca_2d(x)
    ref = decomposition.PCA(2).fit(x.double().numpy())
    theirs = torch.from_numpy(ref.transform(x.double().numpy())).float()
    for axis in range(2):
        sign = torch.sign((ours[:, axis] * theirs[:, axis]).sum())
        torch.testing.assert_close(ours[:, axis], sign * theirs[:, axis], atol=1e-4, rtol=1e-4)
    assert shares == pytest.approx(list(ref.explained_variance_ratio_), rel=1e-6)


def test_knn_accuracy_is_a_direct_leave_one_out_vote():
    neighbors = pytest.importorskip("sklearn.neighbors")
    g = torch.Generator().manual_seed(1)
    labels = torch.randint(0, 4, (1500,), generator=g)
    points = torch.randn(1500, 2, generator=g) + 1.5 * labels[:, None].float()
    index = neighbors.NearestNeighbors(n_neighbors=11).fit(points.double().numpy())
    _, near = index.kneighbors(points.double().numpy())
    right = 0
    for i, row in enumerate(near):
        others = [j for j in row if j != i][:10]
        votes = torch.bincount(labels[others], minlength=4)
        right += int(votes.argmax()) == int(labels[i])  # first maximum: the lowest class
    assert E.knn_accuracy(points, labels) == right / len(points)
    assert 0.3 < right / len(points) < 0.95  # a test that can fail either way


def test_the_map_report_prints_plots_and_exports(tmp_path):
    data = learnable_dataset(50, 200)
    report = E.embed_model(_Net().eval(), data, images=120)
    assert report.layer == "fc2 Linear (its input)" and report.features == 16
    assert report.points.shape == (len(report.labels), 2)
    text = str(report)
    assert "10-NN accuracy" in text and "pixels" in text and "PCA" in text
    d = report.to_dict()
    assert "images" not in d and d["knn_layer"] == report.knn_layer
    assert d["knn_pixels"] == E.knn_accuracy(E.pca_2d(_pixels(data, report))[0], report.labels)
    fig = report.plot()
    assert len(fig.axes) == 2
    report.save(tmp_path / "m.png")
    named = E.embed_model(_Net().eval(), data, "conv", images=120)
    assert (
        named.layer == "conv Conv2d" and named.features == 3 * 26 * 26
    )  # 2,028 ≤ 2,048: not pooled


def _pixels(data, report):
    return data.test_images[report.indices].reshape(len(report.indices), -1).float() / 255


@pytest.mark.parametrize(
    "kwargs, name",
    [({"method": "lda"}, "method"), ({"images": 5}, "images"), ({"method": 3}, "method")],
)
def test_options_are_checked_before_the_run_is_loaded(kwargs, name):
    with pytest.raises(ArchlabError, match=name):
        archlab.embedding("no-such-run", runs="/nonexistent", **kwargs)


def test_an_unknown_layer_names_the_choices():
    data = learnable_dataset(20, 40)
    with pytest.raises(ArchlabError, match=r"layer='fc9'.*conv, fc1, fc2"):
        E.embed_model(_Net().eval(), data, "fc9", images=40)


def test_umap_without_umap_learn_is_one_line(monkeypatch):
    monkeypatch.setitem(sys.modules, "umap", None)  # `import umap` raises ImportError
    with pytest.raises(ArchlabError, match="pip install umap-learn"):
        E.project(torch.randn(20, 3), "umap")


def test_umap_keeps_clusters_apart_and_is_seeded():
    """The projection itself (umap-learn, `make setup` installs it): three clusters far
    apart in 50-D stay apart in 2-D (every point's nearest neighbour, computed here, is in
    its own cluster), the same seed gives the same points, and no warning reaches the user."""
    pytest.importorskip("umap")
    import warnings

    g = torch.Generator().manual_seed(0)
    centres = 20 * torch.randn(3, 50, generator=g)
    labels = torch.arange(3).repeat_interleave(60)
    x = centres[labels] + torch.randn(180, 50, generator=g)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        a = E.project(x, "umap", seed=1)
    b = E.project(x, "umap", seed=1)
    assert a.shape == (180, 2) and torch.equal(a, b)
    d = torch.cdist(a.double(), a.double()).fill_diagonal_(float("inf"))
    assert torch.equal(labels[d.argmin(1)], labels)


def test_the_cli_refuses_umap_before_any_work_when_it_is_missing(capsys, tmp_path, monkeypatch):
    """`map --method umap` without umap-learn: one line before the runs are even looked
    for (it came after seconds of tracing the test set)."""
    from archlab.cli import main

    monkeypatch.setattr("importlib.util.find_spec", lambda name, *a: None)
    assert main(["map", "nothing-here", "--method", "umap", "--runs", str(tmp_path)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "pip install umap-learn" in err[0], err


@pytest.mark.parametrize("argv", [["--method", "lda"], ["--images", "3"], ["--out", "m.txt"]])
def test_the_cli_checks_the_options_in_one_line(argv, capsys, tmp_path):
    from archlab.cli import main

    code = main(["map", "nothing-here", "--runs", str(tmp_path), *argv])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1, err


def test_compile_umap_is_nothing_without_umap_learn(monkeypatch):
    """`make setup` calls it; where umap-learn is missing it must not fail the setup."""
    monkeypatch.setattr("importlib.util.find_spec", lambda name, *a: None)
    monkeypatch.setitem(sys.modules, "umap", None)  # were it imported: ImportError
    assert E.compile_umap() is None


@pytest.mark.parametrize("method", ["tsne", "umap"])
def test_a_seed_past_32_bits_folds_into_the_libraries_range(method):
    """archlab takes seeds up to 2**63 - 1; scikit-learn's and umap-learn's stop at
    2**32 - 1 (an outside test got an 'archlab BUG' from both)."""
    if method == "umap":
        pytest.importorskip("umap")
    from archlab.analysis.embedding import project

    x = torch.randn(40, 6, generator=torch.Generator().manual_seed(1))
    big = project(x, method, seed=2**32 + 5)
    assert big.shape == (40, 2)
    torch.testing.assert_close(big, project(x, method, seed=5))


def test_t_sne_runs_on_as_few_images_as_map_takes():
    """map takes 11 images; t-SNE's PCA step asked for 50 components of 11 (outside test)."""
    from archlab.analysis.embedding import project

    x = torch.randn(11, 300, generator=torch.Generator().manual_seed(2))
    assert project(x, "tsne", seed=0).shape == (11, 2)


def test_a_layer_refused_on_the_command_line_names_the_flag(tmp_path, capsys):
    """map said 'layer=' on the command line (outside test)."""
    from archlab.analysis.embedding import find_layer

    rows = archlab.trace_shapes("cnn").layers
    with pytest.raises(archlab.ArchlabError) as info:
        find_layer(rows, "nope")
    assert str(info.value).startswith("layer='nope': no such row")
    assert info.value.cli_message.startswith("--layer 'nope': no such row")
