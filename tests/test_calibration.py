"""Calibration: ECE against its closed form, temperature scaling against a known
temperature, NLL and Brier against direct computations, the command on trained runs."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import archlab
from archlab.analysis import calibration as C
from archlab.cli import main

from .synthetic import learnable_dataset


def _logits_with_confidence(conf: list[float]) -> torch.Tensor:
    """Logits over 10 classes whose softmax gives class 0 exactly ``conf`` and the other
    nine (1 − conf)/9 each."""
    c = torch.tensor(conf, dtype=torch.float64).unsqueeze(1)
    return torch.cat([c.log(), ((1 - c) / 9).log().expand(-1, 9)], 1)


def _groups(spec):
    """spec: (count, confidence, right) per group -> logits, labels (label 0 = right)."""
    conf, labels = [], []
    for n, c, right in spec:
        conf += [c] * n
        labels += [0] * right + [1] * (n - right)
    return _logits_with_confidence(conf), torch.tensor(labels)


def test_ece_of_known_bins_is_the_closed_form():
    # 300 at 0.95 with 80 % right, 200 at 0.55 with 50 %, 500 at 0.35 with 35 %
    logits, labels = _groups([(300, 0.95, 240), (200, 0.55, 100), (500, 0.35, 175)])
    scores = C.scores_of(logits, labels)
    assert scores.ece == pytest.approx(0.3 * 0.15 + 0.2 * 0.05 + 0.5 * 0.0, abs=1e-12)
    assert scores.accuracy == pytest.approx(0.515)
    r = C.reliability(*C._confidence(logits.softmax(1), labels))
    assert r.counts[5] == 500 and r.counts[8] == 200 and r.counts[14] == 300
    assert sum(r.counts) == 1000
    assert math.isnan(r.accuracy[0]) and r.accuracy[14] == pytest.approx(0.8)


def test_a_confidence_on_an_edge_falls_in_the_bin_below():
    # bins are (k/15, (k+1)/15]: 0.6 = 9/15 closes bin 8, 0 opens bin 0
    r = C.reliability(torch.tensor([0.6, 0.0, 1.0], dtype=torch.float64), torch.ones(3))
    assert r.counts[8] == 1 and r.counts[0] == 1 and r.counts[14] == 1


def test_adaptive_ece_is_equal_mass_bins_computed_directly():
    g = torch.Generator().manual_seed(1)
    conf = 0.1 + 0.9 * torch.rand(1003, generator=g, dtype=torch.float64)
    right = (torch.rand(1003, generator=g, dtype=torch.float64) < conf**2).double()
    c, y = conf.numpy(), right.numpy()
    order = np.argsort(c, kind="stable")
    expected = sum(
        len(b) / len(c) * abs(y[b].mean() - c[b].mean()) for b in np.array_split(order, 15)
    )
    assert C.expected_calibration_error(conf, right, adaptive=True) == pytest.approx(expected)
    # and the equal-width one, directly
    which = np.clip(np.ceil(c * 15).astype(int) - 1, 0, 14)
    width = sum(
        (which == b).sum() / len(c) * abs(y[which == b].mean() - c[which == b].mean())
        for b in range(15)
        if (which == b).any()
    )
    assert C.expected_calibration_error(conf, right) == pytest.approx(width)


def test_nll_and_brier_are_the_direct_formulas():
    g = torch.Generator().manual_seed(2)
    logits = torch.randn(50, 10, generator=g, dtype=torch.float64) * 3
    labels = torch.randint(0, 10, (50,), generator=g)
    p = np.exp(logits.numpy())
    p /= p.sum(1, keepdims=True)
    onehot = np.eye(10)[labels.numpy()]
    scores = C.scores_of(logits, labels)
    assert scores.brier == pytest.approx(((p - onehot) ** 2).sum(1).mean())
    assert scores.nll == pytest.approx(-np.log(p[np.arange(50), labels.numpy()]).mean())


def _calibrated(n=20_000, seed=0):
    """Logits and labels drawn from their own softmax: calibrated by construction."""
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(n, 10, generator=g, dtype=torch.float64) * 2
    labels = torch.multinomial(logits.softmax(1), 1, generator=g).squeeze(1)
    return logits, labels


def test_temperature_scaling_undoes_logits_times_three():
    logits, labels = _calibrated()
    assert C.fit_temperature(logits, labels) == pytest.approx(1.0, abs=0.05)
    assert C.fit_temperature(3 * logits, labels) == pytest.approx(3.0, rel=0.05)
    # the fitted T is the NLL's minimum: a little either side is worse
    t = C.fit_temperature(3 * logits, labels)
    nll = [float(F.cross_entropy(3 * logits / u, labels)) for u in (0.97 * t, t, 1.03 * t)]
    assert nll[1] < nll[0] and nll[1] < nll[2]


def test_scaling_fixes_an_overconfident_model_and_keeps_its_predictions():
    logits, labels = _calibrated(seed=3)
    fit, test = slice(0, 10_000), slice(10_000, None)
    r = C.calibration_of_logits(3 * logits[test], labels[test], 3 * logits[fit], labels[fit])
    assert r.before.ece > 0.1 and r.after.ece < 0.02
    assert r.after.accuracy == r.before.accuracy
    assert r.after.nll < r.before.nll


@pytest.fixture(scope="module")
def dnn_run(tmp_path_factory):
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


def test_report_on_a_run_fits_on_the_last_training_images(dnn_run):
    data = learnable_dataset()
    report = archlab.calibration(["dnn"], runs=dnn_run, data=data, fit_images=100)
    assert report.fit_images.startswith("training images 500-599")
    run = archlab.load_run("dnn", runs=dnn_run)
    from archlab.training.predict import predict_logits

    fit = predict_logits(run.model, data.train_images[500:], run.normalize)
    assert report.results[0].temperature == pytest.approx(
        C.fit_temperature(fit, data.train_labels[500:])
    )
    assert "adaptive ECE" in str(report) and report.to_dict()["results"][0]["model"] == "dnn"
    fig = report.plot()
    assert len(fig.axes) == 2
    with pytest.raises(archlab.ArchlabError, match="fit_images=0") as info:
        archlab.calibration(["dnn"], runs=dnn_run, data=data, fit_images=0)
    assert info.value.cli_message.startswith("--fit-images 0: ")  # the flag, on the CLI
    with pytest.raises(archlab.ArchlabError, match="bins=100000"):  # it ran for minutes
        archlab.calibration(["dnn"], runs=dnn_run, data=data, bins=100_000)


@pytest.mark.realdata
def test_the_command_prints_and_writes_its_figure(dnn_run, real_data, tmp_path, capsys):
    out = tmp_path / "cal.png"
    argv = ["calibration", "dnn", "--runs", str(dnn_run), "--out", str(out)]
    assert main([*argv, "--data-dir", str(real_data.source.root)]) == 0
    text = capsys.readouterr().out
    assert "ECE" in text and f"wrote {out}" in text and out.stat().st_size > 0
    assert main(["calibration", "dnn", "--runs", str(dnn_run), "--bins", "0"]) == 2
    assert "--bins 0" in capsys.readouterr().err


def test_the_report_saves_as_json_html_and_png(tmp_path):
    import json

    logits, labels = _calibrated(2000, seed=4)
    report = C.Calibration(15, "synthetic", 1000)
    report.results.append(
        C.calibration_of_logits(3 * logits[1000:], labels[1000:], 3 * logits[:1000], labels[:1000])
    )
    saved = json.loads(report.save(tmp_path / "c.json").read_text())
    row = saved["results"][0]
    assert row["temperature"] == pytest.approx(report.results[0].temperature)
    assert None in row["reliability_before"]["accuracy"] or all(row["reliability_before"]["counts"])
    assert "<table" in report.save(tmp_path / "c.html").read_text()
    assert report.save(tmp_path / "c.png").stat().st_size > 0
