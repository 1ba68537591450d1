"""The explorer's panels (issues 31, 32, 33): what the site's data say, checked against
direct computations that do not go through archlab (numpy, forward hooks, scikit-learn,
scipy) on a site explored from tiny synthetic runs, two of cnn's snapshots included."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

import archlab
from archlab.analysis.quiz import quiz_items, quiz_proxy
from archlab.errors import ArchlabError
from archlab.explorer import panels

from .explorer_models import snapshot_runs
from .synthetic import learnable_dataset

QUIET = {"progress": False, "log": lambda _line: None, "figures": False}


def read_script(path: Path) -> dict:
    text = path.read_text(encoding="utf-8")
    return json.loads(text[len("ARCHLAB.add(") : -3])


@pytest.fixture(scope="module")
def explored(tmp_path_factory):
    data = learnable_dataset(n_train=300, n_test=150)
    runs = tmp_path_factory.mktemp("runs")
    cnn, dnn = (
        archlab.train(m, runs=runs, data=data, max_iterations=6, batch_size=50, **QUIET)
        for m in ("cnn", "dnn")
    )
    snaps = snapshot_runs(cnn, iterations=(1, 3))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(panels, "find_snapshots", lambda run: snaps if run is cnn else [])
        page = archlab.explore([cnn, dnn], images=20, out=runs / "explorer", data=data)
    folder = page.parent / "data"
    index = read_script(folder / "index.js")["index"]
    sites = [read_script(folder / f"run-{k}" / "run.js") for k in range(2)]
    return data, (cnn, dnn), snaps, index, sites


def _forward(run, images: torch.Tensor) -> torch.Tensor:
    x = archlab.training.predict.to_input(images, run.normalize)
    run.model.eval()
    with torch.no_grad():
        return run.model(x).double()


# -- the quiz proxy (issue 31) -----------------------------------------------------------------


def _proxy_numpy(images: np.ndarray, acts: np.ndarray, refs: int = 9) -> float:
    """The quiz proxy written again in numpy, loop by loop."""
    flat = images.reshape(len(images), -1).astype(np.float64)
    right = 0.0
    for c in range(acts.shape[1]):
        order = np.argsort(-acts[:, c], kind="stable")
        top, strong, weak = order[:refs], order[refs], order[-1]

        def sim(q, top=top):
            return np.mean(
                [
                    flat[r] @ flat[q] / (np.linalg.norm(flat[r]) * np.linalg.norm(flat[q]))
                    for r in top
                ]
            )

        s, w = sim(strong), sim(weak)
        right += 1.0 if s > w else 0.5 if s == w else 0.0
    return right / acts.shape[1]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_quiz_proxy_equals_a_direct_computation(seed):
    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (40, 6, 6), generator=g, dtype=torch.uint8)
    # channel c likes pixel c: its activation is that pixel plus noise (some channels pure
    # noise, so that the proxy is neither 0 nor 1)
    acts = images.flatten(1)[:, :12].double() + torch.randn(40, 12, generator=g) * 80
    got = quiz_proxy(images, acts)
    assert got == pytest.approx(_proxy_numpy(images.numpy(), acts.numpy()), abs=1e-12)
    assert 0.0 < got < 1.0


def test_quiz_items_hold_the_queries_out_of_the_references():
    acts = torch.tensor([[5.0], [4.0], [9.0], [1.0], [7.0], [3.0], [8.0], [2.0], [6.0],
                         [0.5], [4.5], [6.5]])  # fmt: skip
    items = quiz_items(acts)
    assert items.references[0].tolist() == [2, 6, 4, 11, 8, 0, 10, 1, 5]  # 9 highest, in order
    assert int(items.strong[0]) == 7 and int(items.weak[0]) == 9  # 10th highest, lowest
    with pytest.raises(ArchlabError, match="at least 11 images"):
        quiz_items(acts[:10])


# -- the channel panel -------------------------------------------------------------------------


def test_the_top_images_equal_a_forward_hook_search(explored):
    data, (cnn, _), _, index, sites = explored
    tests = index["tests"]["indices"]
    layers = sites[0]["channels"]["layers"]
    assert [layer["name"] for layer in layers] == ["layer1.0", "layer2.0"]
    assert sites[0]["channels"]["counted"] == 32 + 64
    for layer in layers:
        seen = {}
        module = dict(cnn.model.named_modules())[layer["name"]]
        handle = module.register_forward_hook(
            lambda _m, _a, out, seen=seen: seen.setdefault("out", out)
        )
        try:
            _forward(cnn, data.test_images)
        finally:
            handle.remove()
        means = seen["out"].double().mean((2, 3))  # (N, C)
        fires = (seen["out"] > 0).double().mean((0, 2, 3))
        expected = sorted(range(means.shape[1]), key=lambda c: (-float(fires[c]), c))[:8]
        assert [c["index"] for c in layer["channels"]] == expected
        for c in layer["channels"]:
            order = np.argsort(-means[:, c["index"]].numpy(), kind="stable")
            assert [tests[t] for t in c["top"]] == order[:9].tolist()
            assert tests[c["strong"]] == order[9] and tests[c["weak"]] == order[-1]
            assert c["values"][0] == pytest.approx(float(means[order[0], c["index"]]), rel=1e-3)
            assert c["dead"] == (fires[c["index"]] == 0)


def test_the_dnn_has_no_channel_panel_and_the_proxy_is_a_share(explored):
    *_, sites = explored
    assert "channels" not in sites[1]
    assert 0.0 <= sites[0]["channels"]["proxy"] <= 1.0


# -- the map and the timeline (issue 32) -------------------------------------------------------


def test_the_maps_predictions_are_the_models_and_every_run_maps_the_same_images(explored):
    data, runs, _, index, sites = explored
    tests = index["tests"]["indices"]
    maps = [[tests[p[0]] for p in site["map"]["points"]] for site in sites]
    assert maps[0] == maps[1] and len(maps[0]) == len(set(maps[0])) > 100
    for run, site in zip(runs, sites, strict=True):
        predicted = _forward(run, data.test_images[maps[0]]).argmax(1).tolist()
        assert [p[3] for p in site["map"]["points"]] == predicted
    assert [index["tests"]["labels"][p[0]] for p in sites[0]["map"]["points"]] == [
        int(data.test_labels[i]) for i in maps[0]
    ]


def test_the_map_is_archlab_maps(explored):
    from archlab.analysis.embedding import embed_model

    data, runs, _, index, sites = explored
    tests = index["tests"]["indices"]
    for run, site in zip(runs, sites, strict=True):
        want = embed_model(run.model, data, normalize=run.normalize, images=10_000)
        assert [tests[p[0]] for p in site["map"]["points"]] == want.indices.tolist()
        got = torch.tensor([p[1:3] for p in site["map"]["points"]], dtype=torch.float64)
        scale = float(want.points.abs().max())
        assert (got - want.points.double()).abs().max() <= 1e-3 * scale
        assert site["map"]["knn"] == pytest.approx(want.knn_layer, abs=1e-4)
        assert site["map"]["knn_pixels"] == pytest.approx(want.knn_pixels, abs=1e-4)
        assert site["map"]["layer"] == want.layer


def test_the_timeline_has_a_frame_per_snapshot_then_the_run(explored):
    data, (cnn, _), snaps, index, sites = explored
    frames = sites[0]["timeline"]
    assert [f["iteration"] for f in frames] == [1, 3, cnn.iteration]
    tests = index["tests"]["indices"]
    at = [tests[p[0]] for p in sites[0]["map"]["points"]]
    labels = data.test_labels[at]
    for frame, run in zip(frames, [*snaps, cnn], strict=True):
        right = (_forward(run, data.test_images[at]).argmax(1) == labels).double().mean()
        assert frame["accuracy"] == pytest.approx(float(right), abs=1e-4)
        assert frame["kernels"]["max"] == pytest.approx(
            float(run.model.layer1[0].weight.detach().abs().max()), rel=1e-3
        )
        assert [p[0] for p in frame["points"]] == [p[0] for p in sites[0]["map"]["points"]]
    assert frames[-1]["points"] == sites[0]["map"]["points"]  # the run itself, not rotated
    assert "timeline" not in sites[1]  # no snapshots, no slider


def test_align_finds_the_rotation_scipy_finds():
    from scipy.linalg import orthogonal_procrustes

    g = torch.Generator().manual_seed(0)
    target = torch.randn(200, 2, generator=g, dtype=torch.float64)
    turn = torch.tensor([[0.6, -0.8], [0.8, 0.6]], dtype=torch.float64)
    mirrored = (target @ turn) * torch.tensor([-1.0, 1.0], dtype=torch.float64) * 3 + 5
    points = mirrored + torch.randn(200, 2, generator=g, dtype=torch.float64) * 0.01
    got = panels.align(points, target)
    pc = (points - points.mean(0)).numpy()
    tc = (target - target.mean(0)).numpy()
    r, s = orthogonal_procrustes(pc, tc)
    want = pc @ r * (s / (pc * pc).sum()) + target.mean(0).numpy()
    assert np.allclose(got.numpy(), want, atol=1e-9)
    assert (got - target).abs().max() < 0.05


def test_a_run_trained_with_snapshots_gets_its_timeline(tmp_path):
    """The real path: ``train(snapshots=3)`` writes them, the explorer finds and reads them
    (no stand-in), one frame per snapshot in iteration order, and a run without any has none."""
    data = learnable_dataset(n_train=200, n_test=60)
    run = archlab.train(
        "cnn", runs=tmp_path, data=data, epochs=1, batch_size=50, snapshots=3, **QUIET
    )  # fmt: skip  (4 iterations)
    found = panels.find_snapshots(run)
    assert [s.snapshot for s in found] == [1, 2, 4]
    for snap in found:  # each one's weights are its file's, not the final run's
        saved = torch.load(snap.folder / "snapshots" / f"it-{snap.snapshot:06d}.pt",
                           weights_only=True)["state_dict"]  # fmt: skip
        assert all(torch.equal(v, snap.model.state_dict()[k]) for k, v in saved.items())
    page = archlab.explore([run], images=8, out=tmp_path / "explorer", data=data)
    site = read_script(page.parent / "data" / "run-0" / "run.js")
    assert [f["iteration"] for f in site["timeline"]] == [1, 2, 4]  # the last: the run itself
    # a snapshot's own page: the frames up to it, itself last (it showed the later ones too,
    # out of order: [1, 4, 2] on the old code)
    page = archlab.explore([found[1]], images=8, out=tmp_path / "at-2", data=data)
    site = read_script(page.parent / "data" / "run-0" / "run.js")
    assert [f["iteration"] for f in site["timeline"]] == [1, 2]
    (tmp_path / "plain").mkdir()
    from types import SimpleNamespace

    assert panels.find_snapshots(SimpleNamespace(folder=tmp_path / "plain")) == []


# -- confidence (issue 33) ---------------------------------------------------------------------


def test_the_confidence_panel_equals_direct_computations(explored):
    from sklearn.metrics import roc_auc_score

    from archlab.analysis.ood import digits_images

    data, runs, _, _, sites = explored
    for run, site in zip(runs, sites, strict=True):
        c = site["confidence"]
        logits = _forward(run, data.test_images)
        labels = data.test_labels.long()

        def ece(z, labels=labels):
            p = z.softmax(1).numpy()
            conf, right = p.max(1), p.argmax(1) == labels.numpy()
            total = 0.0
            for b in range(15):
                inside = (conf > b / 15) & (conf <= (b + 1) / 15)
                if inside.any():
                    total += inside.mean() * abs(right[inside].mean() - conf[inside].mean())
            return total

        t = c["temperature"]
        assert c["before"]["ece"] == pytest.approx(ece(logits), abs=2e-4)
        assert c["after"]["ece"] == pytest.approx(ece(logits / t), abs=2e-3)
        assert sum(c["bins"]["before"]["counts"]) == len(labels)
        # T minimises the NLL on the last training images: a step either way is worse
        fit = _forward(run, data.train_images[-300:])
        y = data.train_labels[-300:].long()

        def nll(temp, fit=fit, y=y):
            return float(torch.nn.functional.cross_entropy(fit / temp, y))

        assert nll(t) <= min(nll(t * 1.05), nll(t / 1.05)) + 1e-6
        assert "the last 300 training images" in c["fit"]
        digits, _ = digits_images()
        scores = torch.cat([logits.softmax(1).max(1).values,
                            _forward(run, digits).softmax(1).max(1).values])  # fmt: skip
        truth = [1] * len(labels) + [0] * len(digits)
        assert c["ood"]["msp"] == pytest.approx(roc_auc_score(truth, scores.numpy()), abs=1e-4)


# -- options -----------------------------------------------------------------------------------


def test_map_zero_writes_no_map_and_a_bad_count_is_refused(explored, tmp_path):
    data, (cnn, _), *_ = explored
    page = archlab.explore([cnn], images=5, map_images=0, out=tmp_path / "site", data=data,
                           methods="saliency")  # fmt: skip
    site = read_script(page.parent / "data" / "run-0" / "run.js")
    assert "map" not in site and "timeline" not in site and "confidence" in site
    with pytest.raises(ArchlabError, match="map_images=10001"):
        archlab.explore([cnn], map_images=10_001, out=tmp_path / "other", data=data)
    assert not math.isnan(site["confidence"]["temperature"])


def test_the_cli_takes_map(capsys):
    from archlab.cli import main

    assert main(["explore", "dnn", "--map", "10001"]) != 0
    assert "--map" in capsys.readouterr().err


def test_a_held_out_runs_page_counts_only_the_classes_it_learned(tmp_path):
    """Fails on the old code: the page's accuracy, confusion matrix, map accuracy and
    calibration counted the class the run never saw (every one of its images wrong)."""
    data = learnable_dataset(n_train=300, n_test=150)
    run = archlab.train(
        "dnn", runs=tmp_path, data=data, hold_out=6, max_iterations=6, batch_size=50, **QUIET
    )
    page = archlab.explore([run], images=40, map_images=150, out=tmp_path / "explorer", data=data)
    folder = page.parent / "data"
    index = read_script(folder / "index.js")["index"]
    site = read_script(folder / "run-0" / "run.js")
    kept = data.test_labels != 6
    predicted = _forward(run, data.test_images).argmax(1)
    right = predicted == data.test_labels
    expected = float(right[kept].double().mean())  # the direct reference
    assert index["runs"][0]["accuracy"] == pytest.approx(expected, abs=1e-6)
    assert run.test_accuracy == pytest.approx(expected, abs=1e-6)
    matrix = torch.tensor(site["confusion"])
    assert int(matrix.sum()) == int(kept.sum()) and int(matrix[6].sum()) == 0
    assert not [key for key in site["cells"] if key.startswith("6,")]
    assert site["confidence"]["before"]["accuracy"] == pytest.approx(expected, abs=1e-4)
    assert "map" in site and "timeline" not in site  # no snapshots: no timeline
    points = panels.map_panel(run.model, data, run.normalize, len(data.test_labels))
    assert panels.map_accuracy(points, data, 6) == pytest.approx(expected, abs=1e-9)


FUNCTIONAL_ONLY = '''
import torch
import torch.nn.functional as F
from torch import nn


class Matmul(nn.Module):
    """No Linear, no Conv2d: a parameter through F.linear, then a log-softmax."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.randn(10, 784) * 0.01)
        self.b = nn.Parameter(torch.zeros(10))

    def forward(self, x):
        return F.log_softmax(F.linear(x.flatten(1), self.w, self.b), dim=1)
'''


def test_a_map_too_small_is_refused_and_a_timeline_needs_something_to_show(tmp_path):
    """Fails on the old code: --map 1 to 10 wrote no map without a word, and a run with
    snapshots but neither a map nor a convolution got a timeline of bare iterations
    (accuracy null, nothing to draw)."""
    data = learnable_dataset(n_train=200, n_test=60)
    (tmp_path / "functional.py").write_text(FUNCTIONAL_ONLY, encoding="utf-8")
    run = archlab.train(
        f"{tmp_path / 'functional.py'}:Matmul",
        runs=tmp_path / "runs",
        data=data,
        epochs=1,
        batch_size=50,
        snapshots=3,
        **QUIET,
    )
    assert [s.iteration for s in archlab.snapshots(run)] == [1, 2, 4]
    for n in (1, 5, 10):
        with pytest.raises(ArchlabError, match=rf"^map_images={n}: give 0 \(no map\) or 11 ") as e:
            archlab.explore([run], map_images=n, out=tmp_path / f"refused-{n}", data=data)
        assert e.value.cli_message.startswith(f"--map {n}: give 0 (no map) or 11 to 10,000")
        assert not (tmp_path / f"refused-{n}").exists()
    page = archlab.explore([run], images=5, map_images=11, out=tmp_path / "site", data=data)
    site = read_script(page.parent / "data" / "run-0" / "run.js")
    # no linear layer to read a map before, no convolution to show kernels of
    assert "map" not in site and "channels" not in site and "timeline" not in site
    assert "confidence" in site
