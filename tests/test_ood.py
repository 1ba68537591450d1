"""Out-of-distribution detection: AUROC and FPR against scikit-learn, the bootstrap
against the Mann-Whitney variance, the scores on exactly the images the report names."""

import math

import numpy as np
import pytest
import torch

import archlab
from archlab.analysis import ood as O
from archlab.cli import main
from archlab.training.predict import to_input

from .synthetic import learnable_dataset

metrics = pytest.importorskip("sklearn.metrics")


def _scores(seed=0, n_in=700, n_out=500, shift=1.0, ties=True):
    g = torch.Generator().manual_seed(seed)
    inside = torch.randn(n_in, generator=g, dtype=torch.float64) + shift
    outside = torch.randn(n_out, generator=g, dtype=torch.float64)
    if ties:  # rounded: many equal scores across the two sets
        inside, outside = (inside * 4).round() / 4, (outside * 4).round() / 4
    return inside, outside


def _sklearn(inside, outside, weights=None):
    y = np.r_[np.ones(len(inside)), np.zeros(len(outside))]
    s = np.r_[inside.numpy(), outside.numpy()]
    return metrics.roc_auc_score(y, s, sample_weight=weights)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("ties", [True, False])
def test_auroc_is_sklearns(seed, ties):
    inside, outside = _scores(seed, shift=0.5 * seed, ties=ties)
    assert O.auroc(inside, outside) == pytest.approx(_sklearn(inside, outside), abs=1e-12)


def test_weighted_auroc_is_sklearns_with_sample_weights():
    """What each bootstrap resample computes: counts as weights."""
    inside, outside = _scores(5)
    g = torch.Generator().manual_seed(0)
    w_in, w_out = O._weights(len(inside), 3, g), O._weights(len(outside), 3, g)
    a, _ = O._auroc_fpr(inside, outside, w_in, w_out)
    for row in range(3):
        w = np.r_[w_in[row].numpy(), w_out[row].numpy()]
        assert float(a[row]) == pytest.approx(_sklearn(inside, outside, w), abs=1e-12)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("ties", [True, False])
def test_fpr_at_95_tpr_is_read_off_sklearns_roc_curve(seed, ties):
    inside, outside = _scores(seed, shift=0.7 * seed, ties=ties)
    y = np.r_[np.ones(len(inside)), np.zeros(len(outside))]
    fpr, tpr, _ = metrics.roc_curve(
        y, np.r_[inside.numpy(), outside.numpy()], drop_intermediate=False
    )
    expected = fpr[np.argmax(tpr >= 0.95)]
    assert O.fpr_at_tpr(inside, outside) == pytest.approx(expected, abs=1e-12)


def test_bootstrap_interval_of_two_equal_sets_has_the_mann_whitney_width():
    inside, outside = _scores(7, n_in=2000, n_out=1500, shift=0.0, ties=False)
    sep = O.separation(inside, outside, resamples=2000)
    lo, hi = sep.auroc_ci
    assert lo < 0.5 < hi and lo < sep.auroc < hi
    # under no difference the AUROC's sd is sqrt((n + m + 1) / (12 n m))
    sd = math.sqrt((2000 + 1500 + 1) / (12 * 2000 * 1500))
    assert hi - lo == pytest.approx(2 * 1.96 * sd, rel=0.15)
    assert sep.fpr95_ci[0] < 0.95 < sep.fpr95_ci[1]


def test_separated_sets_have_auroc_one_and_no_false_positives():
    inside, outside = torch.arange(10.0, 20.0), torch.arange(0.0, 10.0)
    sep = O.separation(inside, outside, resamples=100)
    assert sep.auroc == 1.0 and sep.auroc_ci == (1.0, 1.0) and sep.fpr95 == 0.0


def test_digits_keep_their_polarity_inside_mnists_20_by_20_box():
    images, digits = O.digits_images()
    assert images.shape == (1797, 28, 28) and images.dtype == torch.uint8
    assert set(digits.tolist()) == set(range(10))
    ring = torch.ones(28, 28, dtype=torch.bool)
    ring[4:24, 4:24] = False
    assert int(images[:, ring].max()) == 0  # the 4-pixel black border
    # ink bright on black, as in Fashion-MNIST: most of the box dark, its centre brighter
    box = images[:, 4:24, 4:24].double()
    assert float((box > 127).double().mean()) < 0.4
    assert float(box[:, 6:14, 6:14].mean()) > float(box[:, :, :3].mean())
    assert int(images.max()) == 255


def test_noise_has_the_asked_mean_and_std():
    x = O.noise_images(500, 0.286, 0.353).double() / 255
    # clipping at 0 raises the mean and lowers the std a little
    assert float(x.mean()) == pytest.approx(0.286, abs=0.05)
    assert float(x.std()) == pytest.approx(0.353, abs=0.08)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    archlab.train(
        "dnn",
        data=learnable_dataset(),
        runs=out,
        epochs=1,
        batch_size=100,
        progress=False,
        log=lambda s: None,
    )
    return out


def test_scores_and_histograms_are_of_exactly_the_images_named(runs):
    data = learnable_dataset()
    report = archlab.ood(
        ["dnn"], sets=["flip", "digits"], images=50, resamples=0, runs=runs, data=data
    )
    run = archlab.load_run("dnn", runs=runs)
    named = data.test_images[report.test_indices]
    assert len(report.test_indices) == 50 and report.set_sizes == {"flip": 50, "digits": 1797}
    with torch.no_grad():
        test_p = run.model.eval()(to_input(named, run.normalize)).softmax(1).max(1).values
        flip_l = run.model(to_input(named.flip(1), run.normalize))
    result = report.results[0]
    assert torch.allclose(result.scores["msp"]["test"], test_p.double(), atol=1e-6)
    assert torch.allclose(result.scores["energy"]["flip"], flip_l.double().logsumexp(1), atol=1e-5)
    counts, edges = O.histogram(result.scores["msp"]["test"], "msp", bins=30)
    expected, np_edges = np.histogram(test_p.numpy(), bins=30, range=(0, 1))
    assert counts == expected.tolist() and np.allclose(edges, np_edges)
    # the surest out-of-distribution images: each set's first, as sure as the model says
    sure = result.confident
    assert [c.set for c in sure[:2]] in (["flip", "digits"], ["digits", "flip"])
    assert sure[0].confidence >= sure[1].confidence
    assert {c.set for c in sure} == {"flip", "digits"} and len(sure) == 5
    with torch.no_grad():
        p = run.model(to_input(sure[0].image.unsqueeze(0), run.normalize)).softmax(1)
    assert float(p.max()) == pytest.approx(sure[0].confidence, abs=1e-6)
    assert "AUROC" in str(report) and "FPR" in str(report)
    assert len(report.plot().axes) == 2 and len(report.plot_confident().axes) == 5
    with pytest.raises(archlab.ArchlabError, match="choose from"):
        archlab.ood(["dnn"], sets=["mnist"], runs=runs, data=data)


@pytest.mark.realdata
def test_the_command_prints_and_writes_both_figures(runs, real_data, tmp_path, capsys):
    out = tmp_path / "o.png"
    argv = ["ood", "dnn", "--runs", str(runs), "--sets", "digits,noise", "--images", "100"]
    argv += ["--bootstrap", "20", "--out", str(out), "--data-dir", str(real_data.source.root)]
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "digits" in text and (tmp_path / "o-confident.png").stat().st_size > 0
    assert main(["ood", "--sets", "mnist"]) == 2
    assert "choose from" in capsys.readouterr().err


def test_a_run_trained_without_a_class_is_an_ordinary_run_and_flags_it(tmp_path):
    data = learnable_dataset()
    without = O.without_class(data, 6)
    assert 6 not in without.train_labels.tolist() and 6 not in without.test_labels.tolist()
    assert len(without.train_labels) == int((data.train_labels != 6).sum())
    run = archlab.train(
        "dnn",
        data=without,
        runs=tmp_path,
        name="dnn-no-Shirt",
        epochs=2,
        batch_size=50,
        progress=False,
        log=lambda s: None,
    )
    # every analysis takes it as it takes any run
    assert archlab.evaluate("dnn-no-Shirt", runs=tmp_path, data=data).accuracy >= 0
    archlab.calibration([run], data=data, fit_images=100)
    report = archlab.ood([run], sets=["flip"], held_out=6, resamples=0, data=data)
    shirts = (data.test_labels == 6).nonzero().flatten()
    assert report.sets == ["flip", "held-out"] and report.set_sizes["held-out"] == len(shirts)
    assert 6 not in data.test_labels[report.test_indices].tolist()
    assert "held-out" in str(report)
    with pytest.raises(archlab.ArchlabError, match="held_out=10"):
        O.without_class(data, 10)


def test_held_out_must_be_the_class_the_run_never_saw(tmp_path):
    """Fails on the old code: held_out=3 on a run trained without Shirt made Dress (which
    it trained on) the 'held-out' set and left the unseen Shirts in the test set; a run
    of all ten beside a held-out run silently dropped the held-out set."""
    data = learnable_dataset()
    quiet = {"epochs": 1, "batch_size": 50, "progress": False, "log": lambda s: None}
    no_shirt = archlab.train("dnn", data=data, runs=tmp_path, hold_out=6, **quiet)
    no_dress = archlab.train("dnn", data=data, runs=tmp_path, hold_out=3, **quiet)
    plain = archlab.train("dnn", data=data, runs=tmp_path, **quiet)
    with pytest.raises(archlab.ArchlabError, match=r"^held_out=3: dnn-no-Shirt without Shirt") as e:
        archlab.ood([no_shirt], sets=["flip"], held_out=3, resamples=0, data=data)
    assert e.value.cli_message.startswith("--held-out 3: ")
    with pytest.raises(archlab.ArchlabError, match="trained without different classes"):
        archlab.ood([no_shirt, no_dress], sets=["flip"], resamples=0, data=data)
    # the run of all ten is the control: the Shirts are held out for both
    report = archlab.ood([plain, no_shirt], sets=["flip"], resamples=0, data=data)
    assert report.sets == ["flip", "held-out"]
    assert report.set_sizes["held-out"] == int((data.test_labels == 6).sum())
    assert 6 not in data.test_labels[report.test_indices].tolist()
    # and the report says which run saw them (an outside test read a control as held out)
    assert report.saw_held_out == ["dnn"] and report.held_out == "Shirt"
    assert "dnn records no held-out class: trained on Shirt images" in str(report)
    alone = archlab.ood([plain], sets=["flip"], held_out=6, resamples=0, data=data)
    assert "train a run with --hold-out" in str(alone)


@pytest.mark.parametrize(
    ("given", "code", "said"),
    [("Shirt", None, None), ("6", None, None), ("Shrt", 2, "--held-out 'Shrt': name a class")],
)
def test_held_out_takes_a_class_as_train_hold_out_does(monkeypatch, capsys, given, code, said):
    """ood --held-out Shirt was refused while train --hold-out Shirt was taken."""
    seen = {}

    def fake(models, **kw):
        seen.update(kw)
        raise archlab.ArchlabError("stop here", 1)

    monkeypatch.setattr(O, "ood", fake)
    result = main(["ood", "dnn", "--held-out", given, "--out", "x.png"])
    if code is None:
        assert seen["held_out"] == 6 and result == 1
    else:
        assert result == code and said in capsys.readouterr().err
