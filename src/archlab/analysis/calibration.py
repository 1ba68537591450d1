"""Can a model's confidence be believed? Calibration before and after temperature scaling.

A classifier is calibrated when, of the images it gives confidence 0.9, nine in ten are
right. The reliability diagram sorts the test images into confidence bins and sets each
bin's accuracy against its mean confidence; the expected calibration error (ECE, Guo et
al., ICML 2017) is the gap averaged over the images: Σ (n_b/N)·|acc_b − conf_b|.

- ``ece``: 15 equal-width bins ((0, 1/15], (1/15, 2/15], ...). Most bins of a good model
  are nearly empty (its confidences pile up near 1), so a few images decide them.
- ``ace`` (adaptive ECE): 15 equal-mass bins, each with the same number of images (sorted
  by confidence). Every bin is well filled, so it resolves the crowded top end the
  equal-width bins lump together; the two differ most for a confident model.
- ``nll``: the mean cross-entropy; ``brier``: the mean squared distance between the
  probability vector and the one-hot label (0 is perfect, 2 the worst).

Temperature scaling divides every logit by one scalar T > 0, fitted by minimising the NLL
(LBFGS on log T) on images held out of the test set; it never changes a prediction, only
how sure the model says it is. T > 1 means the model was over-confident. Here T is fitted
on the **last 5,000 training images** (indices 55,000-59,999), never on the test set. The
default recipes train on all 60,000 images, so the model has seen these: it is more sure
of them than of new images, and T fitted there comes out smaller than the test set would
choose. The report prints that test-set temperature beside it (never used) to show the
cost; a run trained without them would not pay it.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from archlab._bounds import check_int
from archlab._report import Report
from archlab._table import Table
from archlab.analysis._ood_settings import BINS, FIT_IMAGES, MAX_BINS
from archlab.errors import ArchlabError
from archlab.training.run import held_out_note


@dataclass
class Reliability:
    """The reliability diagram's numbers: per equal-width bin, its images, their accuracy
    and their mean confidence (NaN for an empty bin)."""

    edges: list[float]  # bins + 1 edges, 0 to 1
    counts: list[int]
    accuracy: list[float]
    confidence: list[float]


@dataclass
class Scores:
    """Calibration metrics of one set of logits (see the module's docstring)."""

    accuracy: float
    ece: float  # equal-width bins
    ace: float  # equal-mass (adaptive) bins
    nll: float
    brier: float


@dataclass
class RunCalibration:
    model: str
    temperature: float  # fitted on the held-out training images
    test_temperature: float  # what the test set itself would pick: shown, never used
    before: Scores
    after: Scores
    reliability_before: Reliability
    reliability_after: Reliability


@dataclass
class Calibration(Report):
    """The result of :func:`calibration`: per run, ECE, adaptive ECE, NLL and Brier
    score on the test set before and after temperature scaling, and the reliability
    diagrams.

    ``str()`` is the table; ``.plot()`` draws every run's reliability diagram side by
    side (before: bars, after: dots), with the count in each bin below; on a given
    ``ax``, the first run's diagram.

    Example::

        >>> report = archlab.calibration(["dnn", "cnn"])   # doctest: +SKIP
        >>> report.results[1].temperature                  # doctest: +SKIP
        1.4
    """

    _shows_figure = True

    bins: int
    fit_images: str  # which images the temperature was fitted on
    test_images: int
    results: list[RunCalibration] = field(default_factory=list)
    held_out: int | None = None  # the class the runs never saw: neither tested nor fitted on

    def _parts(self) -> list[Table | str]:
        headers = ["model", "", "accuracy", "ECE", "adaptive ECE", "NLL", "Brier", "T"]
        rows = []
        for r in self.results:
            for when, s, t in (
                ("before", r.before, "1"),
                ("after T", r.after, f"{r.temperature:.3f}"),
            ):
                rows.append(
                    [
                        r.model,
                        when,
                        f"{100 * s.accuracy:.2f}",
                        f"{100 * s.ece:.2f}",
                        f"{100 * s.ace:.2f}",
                        f"{s.nll:.4f}",
                        f"{s.brier:.4f}",
                        t,
                    ]
                )
        caption = (
            f"{self.test_images:,} test images{held_out_note(self.held_out)}; "
            f"ECE and accuracy in %, {self.bins} bins "
            f"(ECE equal-width, adaptive equal-mass); T fitted by NLL on {self.fit_images}"
        )
        note = "the temperature the test set itself would choose (never used): " + ", ".join(
            f"{r.model} {r.test_temperature:.3f}" for r in self.results
        )
        return [Table(headers, rows, caption), note]

    def plot(self, ax=None):
        from archlab.viz.calibration import plot_calibration

        return plot_calibration(self, ax=ax)


# ----------------------------------------------------------------------------- metrics


if TYPE_CHECKING:
    from archlab.training.run import Run


def _confidence(probs: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    conf, pred = probs.max(1)
    return conf, (pred == labels).double()


def reliability(confidences: torch.Tensor, correct: torch.Tensor, bins: int = BINS) -> Reliability:
    """Equal-width bins ``(k/bins, (k+1)/bins]`` of ``confidences`` ``(N,)`` and the
    accuracy of ``correct`` ``(N,)`` (0/1) in each (a confidence of 0 falls in the first).

    Args:
        confidences: the predicted class's probability per image.
        correct: 1 where the prediction was right.
        bins: the number of bins. Default: 15.

    Returns:
        A :class:`Reliability`.
    """
    conf = confidences.double()
    edges = torch.arange(bins + 1, dtype=torch.float64) / bins  # k/bins exactly as 0.6 is
    which = (torch.searchsorted(edges, conf) - 1).clamp(0, bins - 1)
    counts = torch.bincount(which, minlength=bins)
    hits = torch.bincount(which, weights=correct.double(), minlength=bins)
    sums = torch.bincount(which, weights=conf, minlength=bins)
    nan = torch.tensor(float("nan"), dtype=torch.float64)
    filled = counts > 0
    return Reliability(
        edges.tolist(),
        counts.tolist(),
        torch.where(filled, hits / counts.clamp(min=1), nan).tolist(),
        torch.where(filled, sums / counts.clamp(min=1), nan).tolist(),
    )


def expected_calibration_error(
    confidences: torch.Tensor, correct: torch.Tensor, bins: int = BINS, adaptive: bool = False
) -> float:
    """Σ (n_b/N)·|acc_b − conf_b| over ``bins`` bins: equal-width, or with ``adaptive``
    equal-mass (the images sorted by confidence and cut into ``bins`` runs whose sizes
    differ by at most one).

    Args:
        confidences: ``(N,)`` the predicted class's probability.
        correct: ``(N,)`` 1 where the prediction was right.
        bins: the number of bins. Default: 15.
        adaptive: equal-mass bins instead of equal-width. Default: False.

    Returns:
        The ECE, 0 to 1.

    Example (half the images at confidence 0.9 with 60 % right, half at 0.5 with 50 %):

        >>> from archlab.analysis.calibration import expected_calibration_error as ece
        >>> conf = torch.tensor([0.9] * 10 + [0.5] * 10, dtype=torch.float64)
        >>> right = torch.tensor([1.0] * 6 + [0.0] * 4 + [1.0] * 5 + [0.0] * 5)
        >>> round(ece(conf, right), 6)
        0.15
    """
    n = len(confidences)
    if n == 0:
        raise ArchlabError("the ECE needs at least one image")
    if not adaptive:
        r = reliability(confidences, correct, bins)
        return sum(
            c / n * abs(a - m)
            for c, a, m in zip(r.counts, r.accuracy, r.confidence, strict=True)
            if c
        )
    order = confidences.double().argsort(stable=True)
    total = 0.0
    for chunk in torch.tensor_split(order, min(bins, n)):
        conf, right = confidences.double()[chunk], correct.double()[chunk]
        total += len(chunk) / n * abs(float(right.mean()) - float(conf.mean()))
    return total


def brier_score(probs: torch.Tensor, labels: torch.Tensor) -> float:
    """Mean over images of Σ_k (p_k − [k = label])² for ``probs`` ``(N, K)``."""
    onehot = F.one_hot(labels.long(), probs.shape[1]).double()
    return float(((probs.double() - onehot) ** 2).sum(1).mean())


def scores_of(logits: torch.Tensor, labels: torch.Tensor, bins: int = BINS) -> Scores:
    """Accuracy, ECE, adaptive ECE, NLL and Brier score of ``logits`` ``(N, K)``."""
    logits = logits.double()
    probs = logits.softmax(1)
    conf, correct = _confidence(probs, labels)
    return Scores(
        float(correct.mean()),
        expected_calibration_error(conf, correct, bins),
        expected_calibration_error(conf, correct, bins, adaptive=True),
        float(F.cross_entropy(logits, labels.long())),
        brier_score(probs, labels),
    )


def fit_temperature(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """The temperature T > 0 that minimises the NLL of ``logits / T`` (LBFGS on log T, so
    T stays positive; in float64).

    Args:
        logits: ``(N, K)`` held-out logits.
        labels: ``(N,)`` their classes.

    Returns:
        T (above 1: the model was over-confident there).

    Example (logits drawn from their own softmax are calibrated; tripled, T ≈ 3):

        >>> g = torch.Generator().manual_seed(0)
        >>> logits = torch.randn(5000, 10, generator=g) * 2
        >>> labels = torch.multinomial(logits.softmax(1), 1, generator=g).squeeze(1)
        >>> t = archlab.analysis.calibration.fit_temperature(3 * logits, labels)
        >>> 2.7 < t < 3.3
        True
    """
    # a copy: predict_logits returns inference tensors, which autograd cannot save
    logits, labels = logits.detach().to(torch.float64, copy=True), labels.long()
    log_t = torch.zeros((), dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS(
        [log_t], lr=0.5, max_iter=200, tolerance_grad=1e-12, line_search_fn="strong_wolfe"
    )

    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(logits / log_t.exp(), labels)
        loss.backward()
        return loss

    with torch.enable_grad():
        opt.step(closure)
    t = float(log_t.detach().exp())
    if not math.isfinite(t):
        raise ArchlabError("the temperature did not converge (are the logits all equal?)")
    return t


def calibration_of_logits(
    logits: torch.Tensor,
    labels: torch.Tensor,
    fit_logits: torch.Tensor,
    fit_labels: torch.Tensor,
    *,
    bins: int = BINS,
    model_name: str = "model",
) -> RunCalibration:
    """Calibration of test ``logits`` ``(N, K)`` before and after the temperature fitted
    on ``fit_logits`` ``(M, K)``."""
    t = fit_temperature(fit_logits, fit_labels)
    scaled = logits.double() / t
    return RunCalibration(
        model_name,
        t,
        fit_temperature(logits, labels),
        scores_of(logits, labels, bins),
        scores_of(scaled, labels, bins),
        reliability(*_confidence(logits.double().softmax(1), labels), bins),
        reliability(*_confidence(scaled.softmax(1), labels), bins),
    )


def calibration(
    models: Sequence | str | Run = ("dnn", "cnn"),
    *,
    bins: int = BINS,
    fit_images: int = FIT_IMAGES,
    runs: str | os.PathLike = "runs",
    data=None,
) -> Calibration:
    """How far each run's confidence is from its accuracy, before and after temperature
    scaling, on the whole test set.

    Args:
        models: :class:`~archlab.Run` objects, specs, groups (``"zoo"``) or run folder
            names (one run alone is fine). Default: the lecture's two.
        bins: confidence bins of the ECE. Default: 15.
        fit_images: the temperature is fitted on the last ``fit_images`` training images
            (which the default recipes trained on: see the module's docstring).
            Default: 5,000.
        runs: the runs folder, for the names. Default: ``"runs"``.
        data: the dataset. Default: :func:`~archlab.load_fashion_mnist`.

    Returns:
        A :class:`Calibration` report: print it, ``.plot()`` it.

    Example::

        >>> print(archlab.calibration(["dnn", "cnn"]))   # doctest: +SKIP
    """
    from archlab.training.predict import predict_logits
    from archlab.training.run import as_runs, shared_data

    # more bins hold a few test images each (and 100,000 of them took minutes)
    check_int("bins", bins, 1, MAX_BINS)
    loaded = as_runs(models, runs)
    if data is None:
        from archlab.training.data import load_fashion_mnist

        data = load_fashion_mnist()
    data = shared_data(loaded, data)  # a held-out class: neither fitted on nor tested
    total = len(data.train_labels)
    check_int("fit_images", fit_images, 1, total)
    # a run trained with validation=N never saw its last N training images: the honest
    # place to fit T; otherwise the last fit_images, which the run trained on (said)
    held = {getattr(run.config, "validation", 0) or 0 for run in loaded}
    n = held.pop() if len(held) == 1 and 0 not in held else 0
    if n:
        fit = slice(total - n, total)
        where = f"training images {total - n:,}-{total - 1:,} (the last {n:,}, held out)"
    else:
        fit = slice(total - fit_images, total)
        where = (
            f"training images {total - fit_images:,}-{total - 1:,} (the last {fit_images:,}, "
            "which these runs trained on: train with validation=5000 to hold them out)"
        )
    report = Calibration(bins, where, len(data.test_labels))
    report.held_out = loaded[0].held_out if loaded else None
    for run in loaded:
        report.results.append(
            calibration_of_logits(
                predict_logits(run.model, data.test_images, run.normalize),
                data.test_labels,
                predict_logits(run.model, data.train_images[fit], run.normalize),
                data.train_labels[fit],
                bins=bins,
                model_name=run.name,
            )
        )
    return report
