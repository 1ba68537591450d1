"""Does a model know what it was not trained for? Out-of-distribution detection.

Each run scores every image by how much it looks like its training data, from its logits
f alone; a detector flags an image whose score is low. The scores (higher: more
in-distribution):

- ``msp``: the maximum softmax probability (Hendrycks & Gimpel, ICLR 2017);
- ``energy``: the negative energy logsumexp(f) (Liu et al., NeurIPS 2020, with T = 1);
- ``maxlogit``: the largest logit (Hendrycks et al., ICML 2022). It sits between the two:
  the softmax divides every exponentiated logit by their sum, so an image whose logits
  are all large (strongly activated, unlike anything seen) and one whose logits are all
  small can get the same MSP; the energy and the max logit keep that magnitude.

In-distribution: Fashion-MNIST test images (stratified by class, fixed seed). Out of it,
all offline:

- ``digits``: scikit-learn's bundled handwritten digits (``load_digits``, 1,797 images of
  8×8, values 0-16). Their ink is already the high value on a 0 background, Fashion-MNIST's
  polarity (checked: the outer ring of pixels averages 2.4 of 16, the centre 8.3), so they
  are not inverted: scaled by 255/16, upsampled bilinearly to 20×20 and padded with 4 black
  pixels on every side to 28×28 (MNIST's layout: the digit in a 20×20 box, centred);
- ``flip``: the test images upside down; ``rotate``: turned by 90°; ``invert``: 255 − x
  (a white background);
- ``noise``: Gaussian noise, each pixel drawn with the training pixels' mean and standard
  deviation, rounded and clipped to 0-255 (the clipping moves them a little: the set's own
  mean and std are in the report);
- ``held-out`` (with ``held_out=6``): for a run trained without one class
  (:func:`without_class`), the test images of that class; the other classes' stay in.

For each run, method and set: the AUROC (the probability that a random test image scores
higher than a random out-of-distribution one, ties counting half; 0.5 is chance) and the
false-positive rate at 95 % true positives (the share of out-of-distribution images that
still pass when the threshold lets 95 % of test images through; lower is better), each
with a 95 % percentile bootstrap interval (test and out-of-distribution images resampled
independently).
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from archlab._report import Report
from archlab._table import Table
from archlab.analysis._ood_settings import BOOTSTRAP, CONFIDENT, METHODS, OOD_IMAGES, SETS
from archlab.errors import ArchlabError
from archlab.training.data import CLASSES, without_class  # noqa: F401  (archlab.without_class)

TPR = 0.95

SET_NAMES = {
    "digits": "scikit-learn's digits",
    "flip": "test images upside down",
    "invert": "test images inverted",
    "rotate": "test images turned 90°",
    "noise": "Gaussian noise",
    "held-out": "the test images of the class the run was trained without",
}


# ----------------------------------------------------------------------------- the sets


@dataclass
class OODSet:
    """One set of images a model was not trained for: uint8 ``(N, 28, 28)`` and what
    each image is (``"digit 7"``, ``"test image 123 (Bag)"``)."""

    name: str
    images: torch.Tensor
    what: list[str]


if TYPE_CHECKING:
    from archlab.training.run import Run


def digits_images() -> tuple[torch.Tensor, torch.Tensor]:
    """scikit-learn's 1,797 digits as Fashion-MNIST-like uint8 ``(1797, 28, 28)``: values
    0-16 scaled to 0-255, upsampled bilinearly to 20×20, padded to 28×28 (see the module's
    docstring); and their digits ``(1797,)``."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = torch.as_tensor(bunch.images, dtype=torch.float32).unsqueeze(1) * (255 / 16)
    x = F.interpolate(x, size=(20, 20), mode="bilinear", align_corners=False)
    x = F.pad(x, (4, 4, 4, 4))
    return x.round().clamp(0, 255).to(torch.uint8)[:, 0], torch.as_tensor(bunch.target)


def noise_images(n: int, mean: float, std: float, seed: int = 0) -> torch.Tensor:
    """``n`` images of i.i.d. Gaussian pixels with ``mean`` and ``std`` (in [0, 1]
    units), as uint8 ``(n, 28, 28)``, rounded and clipped to 0-255."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn((n, 28, 28), generator=g) * (std * 255) + mean * 255
    return x.round().clamp(0, 255).to(torch.uint8)


def make_sets(
    names: Sequence[str],
    images: torch.Tensor,
    indices: torch.Tensor,
    labels: torch.Tensor,
    pixel_stats: tuple[float, float],
    seed: int = 0,
) -> list[OODSet]:
    """The out-of-distribution sets ``names`` (see :data:`SETS`), the transformed ones
    made from test ``images`` ``(N, 28, 28)`` (their test ``indices`` and ``labels``
    name them)."""

    def named(prefix):
        return [
            f"{prefix} test image {int(i)} ({CLASSES[int(y)]})"
            for i, y in zip(indices, labels, strict=True)
        ]

    makers = {
        "flip": lambda: OODSet("flip", images.flip(1).contiguous(), named("flipped")),
        "rotate": lambda: OODSet("rotate", images.rot90(1, (1, 2)).contiguous(), named("rotated")),
        "invert": lambda: OODSet("invert", 255 - images, named("inverted")),
        "noise": lambda: OODSet(
            "noise",
            noise_images(len(images), *pixel_stats, seed=seed),
            [f"noise image {k}" for k in range(len(images))],
        ),
    }

    def digits():
        x, y = digits_images()
        return OODSet("digits", x, [f"digit {int(d)}" for d in y])

    makers["digits"] = digits
    unknown = [n for n in names if n not in makers]
    if unknown or not names:
        raise ArchlabError(f"sets={','.join(unknown) or 'nothing'}: choose from {', '.join(SETS)}")
    return [makers[n]() for n in names]


# ----------------------------------------------------------------------------- scores


def ood_scores(logits: torch.Tensor) -> dict[str, torch.Tensor]:
    """Every method's score ``(N,)`` from ``logits`` ``(N, K)`` (higher: more like the
    training data)."""
    logits = logits.double()
    return {
        "msp": logits.softmax(1).max(1).values,
        "energy": logits.logsumexp(1),
        "maxlogit": logits.max(1).values,
    }


def _weights(n: int, resamples: int, generator: torch.Generator) -> torch.Tensor:
    """``(resamples, n)`` bootstrap counts: how often each item is drawn."""
    drawn = torch.randint(n, (resamples, n), generator=generator)
    return torch.zeros(resamples, n, dtype=torch.float64).scatter_add_(
        1, drawn, torch.ones(resamples, n, dtype=torch.float64)
    )


def _ones(n: int) -> torch.Tensor:
    """One row of weight 1 per item: the sample itself, not a resample."""
    return torch.ones(1, n, dtype=torch.float64)


def _auroc_fpr(inside, outside, w_in, w_out) -> tuple[torch.Tensor, torch.Tensor]:
    """AUROC and FPR at 95 % TPR for each row of weights ``w_in`` ``(B, n_in)`` and
    ``w_out`` ``(B, n_out)`` (counts: a row of ones is the sample itself), in
    O(B·(n_in + n_out)) by sorting once."""
    out_sorted, order = outside.sort()
    cum_out = F.pad(w_out[:, order].cumsum(1), (1, 0))  # weight of the k lowest outside
    below = torch.searchsorted(out_sorted, inside, right=False)
    upto = torch.searchsorted(out_sorted, inside, right=True)
    less = cum_out[:, below]
    ties = cum_out[:, upto] - less
    n_in, n_out = w_in.sum(1), w_out.sum(1)
    auroc = (w_in * (less + 0.5 * ties)).sum(1) / (n_in * n_out)
    # the threshold: the highest score that lets ≥ 95 % of the inside weight through
    in_desc, order_in = inside.sort(descending=True)
    cum_in = w_in[:, order_in].cumsum(1)
    need = torch.ceil(TPR * n_in - 1e-9).unsqueeze(1)
    k = torch.searchsorted(cum_in, need).clamp(max=len(inside) - 1).squeeze(1)
    threshold = in_desc[k]
    passing = n_out - cum_out.gather(
        1, torch.searchsorted(out_sorted, threshold, right=False).unsqueeze(1)
    ).squeeze(1)
    return auroc, passing / n_out


def auroc(inside: torch.Tensor, outside: torch.Tensor) -> float:
    """P(a random ``inside`` score > a random ``outside`` one), ties counting half: the
    area under the ROC curve with the inside images as positives.

    Example (of the 4 pairs, 3 ordered right and 1 tied):

        >>> archlab.analysis.ood.auroc(torch.tensor([2.0, 1.0]), torch.tensor([1.0, 0.0]))
        0.875
    """
    inside, outside = inside.double(), outside.double()
    a, _ = _auroc_fpr(inside, outside, _ones(len(inside)), _ones(len(outside)))
    return float(a[0])


def fpr_at_tpr(inside: torch.Tensor, outside: torch.Tensor) -> float:
    """The share of ``outside`` scores at or above the highest threshold that keeps 95 %
    of the ``inside`` scores at or above it.

    Example (95 % of 1..100 is at or above 6; of the outside scores, 6 and 50 are too):

        >>> inside = torch.arange(1.0, 101.0)
        >>> archlab.analysis.ood.fpr_at_tpr(inside, torch.tensor([0.0, 5.0, 6.0, 50.0]))
        0.5
    """
    inside, outside = inside.double(), outside.double()
    _, f = _auroc_fpr(inside, outside, _ones(len(inside)), _ones(len(outside)))
    return float(f[0])


@dataclass
class Separation:
    """How well one method separates the test set from one out-of-distribution set."""

    auroc: float
    auroc_ci: tuple[float, float]
    fpr95: float
    fpr95_ci: tuple[float, float]


def separation(
    inside: torch.Tensor,
    outside: torch.Tensor,
    resamples: int = BOOTSTRAP,
    seed: int = 0,
) -> Separation:
    """AUROC and FPR at 95 % TPR of ``inside`` against ``outside`` scores, with 95 %
    percentile bootstrap intervals from ``resamples`` resamples. Default: 1,000."""
    inside, outside = inside.double(), outside.double()
    a, f = _auroc_fpr(inside, outside, _ones(len(inside)), _ones(len(outside)))
    if resamples < 1:
        return Separation(float(a[0]), (math.nan, math.nan), float(f[0]), (math.nan, math.nan))
    g = torch.Generator().manual_seed(seed)
    w_in, w_out = _weights(len(inside), resamples, g), _weights(len(outside), resamples, g)
    ba, bf = _auroc_fpr(inside, outside, w_in, w_out)
    q = torch.tensor([0.025, 0.975], dtype=torch.float64)
    lo_a, hi_a = ba.quantile(q).tolist()
    lo_f, hi_f = bf.quantile(q).tolist()
    return Separation(float(a[0]), (lo_a, hi_a), float(f[0]), (lo_f, hi_f))


# ----------------------------------------------------------------------------- the report


@dataclass
class Confident:
    """An out-of-distribution image the model is very sure about."""

    set: str
    index: int  # in its set
    what: str  # "digit 7"
    predicted: str
    confidence: float
    image: torch.Tensor  # uint8 (28, 28)


@dataclass
class RunOOD:
    model: str
    # method -> set -> separation
    separations: dict[str, dict[str, Separation]]
    # method -> "test" or a set -> the score of every image, in the order named
    scores: dict[str, dict[str, torch.Tensor]]
    confident: list[Confident] = field(default_factory=list)


@dataclass
class OOD(Report):
    """The result of :func:`ood`: AUROC and FPR at 95 % TPR, with bootstrap intervals,
    for each run × method × out-of-distribution set.

    The test images are ``test_indices`` (Fashion-MNIST's test set); each set's images
    are ``set_sizes[s]`` in the order :func:`make_sets` gives them; ``scores`` keeps the
    score of each. ``str()`` is the AUROC table; ``.plot()`` the score histograms (test
    against each set) for every run; ``.plot_confident()`` the most confident
    out-of-distribution images per run.

    Example::

        >>> report = archlab.ood(["dnn", "cnn"], sets=["digits"])   # doctest: +SKIP
        >>> report.results[1].separations["msp"]["digits"].auroc            # doctest: +SKIP
        0.93
    """

    _shows_figure = True

    sets: list[str]
    methods: list[str]
    test_indices: list[int]
    set_sizes: dict[str, int]
    set_stats: dict[str, tuple[float, float]]  # each set's pixel mean and std, in [0, 1]
    resamples: int
    results: list[RunOOD] = field(default_factory=list)
    # with a held-out class: its name, and the runs that record none (the controls)
    held_out: str | None = None
    saw_held_out: list[str] = field(default_factory=list)

    def _parts(self) -> list[Table | str]:
        rows = []
        for r in self.results:
            for m in self.methods:
                rows.append(
                    [r.model, m]
                    + [
                        f"{100 * r.separations[m][s].auroc:.1f} "
                        f"[{100 * r.separations[m][s].auroc_ci[0]:.1f}, "
                        f"{100 * r.separations[m][s].auroc_ci[1]:.1f}]"
                        for s in self.sets
                    ]
                )
        auroc = Table(
            ["model", "score", *self.sets],
            rows,
            f"AUROC (%) [95 % bootstrap interval, {self.resamples:,} resamples]: test set "
            f"({len(self.test_indices):,} images) against each set; 50 is chance",
        )
        fpr = Table(
            ["model", "score", *self.sets],
            [
                [r.model, m, *(f"{100 * r.separations[m][s].fpr95:.1f}" for s in self.sets)]
                for r in self.results
                for m in self.methods
            ],
            "FPR (%) at 95 % TPR: the share of each set that passes a threshold that keeps "
            "95 % of test images (lower is better)",
        )
        sure = [
            f"{r.model} is {100 * c.confidence:.2f} % sure that {c.what} is a {c.predicted}"
            for r in self.results
            for c in r.confident[:1]
        ]
        saw = []
        if self.saw_held_out:
            one = len(self.saw_held_out) == 1
            saw = [
                f"{', '.join(self.saw_held_out)} record{'s' if one else ''} no held-out "
                f"class: trained on {self.held_out} images (unless the data was filtered in "
                f"Python), {'its' if one else 'their'} held-out column is a control, a class "
                "seen in training"
                + ("; train a run with --hold-out to ask about one never seen"
                   if len(self.saw_held_out) == len(self.results) else "")
            ]  # fmt: skip
        return [auroc, fpr, *saw, *sure]

    def plot(self, ax=None):
        from archlab.viz.ood import plot_ood

        return plot_ood(self, ax=ax)

    def plot_confident(self):
        from archlab.viz.ood import plot_confident

        return plot_confident(self)


def histogram(scores: torch.Tensor, method: str, bins: int = 30) -> tuple[list[int], list[float]]:
    """Counts and edges of ``scores`` ``(N,)`` over ``bins`` bins: for ``msp`` over
    [0, 1], for the others over the scores' own range (the plot compares sets on shared
    edges: see :func:`shared_edges`)."""
    edges = (
        torch.linspace(0, 1, bins + 1, dtype=torch.float64)
        if method == "msp"
        else shared_edges([scores], bins)
    )
    return _counts(scores, edges), edges.tolist()


def shared_edges(groups: Sequence[torch.Tensor], bins: int = 30) -> torch.Tensor:
    """``bins + 1`` equal-width edges over the range of every tensor in ``groups``."""
    lo = min(float(g.min()) for g in groups)
    hi = max(float(g.max()) for g in groups)
    if hi <= lo:
        hi = lo + 1.0
    return torch.linspace(lo, hi, bins + 1, dtype=torch.float64)


def _counts(scores: torch.Tensor, edges: torch.Tensor) -> list[int]:
    which = (torch.searchsorted(edges, scores.double(), right=True) - 1).clamp(0, len(edges) - 2)
    return torch.bincount(which, minlength=len(edges) - 1).tolist()


def ood_of_model(
    model,
    test_images: torch.Tensor,
    sets: Sequence[OODSet],
    *,
    normalize=None,
    resamples: int = BOOTSTRAP,
    confident: int = CONFIDENT,
    seed: int = 0,
    model_name: str | None = None,
) -> RunOOD:
    """Scores, AUROC and FPR at 95 % TPR of a model in hand: uint8 ``test_images``
    ``(N, H, W)`` against each of ``sets``; and its ``confident`` most confident
    out-of-distribution images (by MSP: each set's surest, then each set's second...)."""
    from archlab.training.predict import predict_logits

    test = ood_scores(predict_logits(model, test_images, normalize))
    result = RunOOD(model_name or type(model).__name__, {m: {} for m in METHODS}, {})
    for m in METHODS:
        result.scores[m] = {"test": test[m]}
    candidates = []
    for s in sets:
        logits = predict_logits(model, s.images, normalize)
        scored = ood_scores(logits)
        for m in METHODS:
            result.scores[m][s.name] = scored[m]
            result.separations[m][s.name] = separation(test[m], scored[m], resamples, seed)
        conf, pred = logits.double().softmax(1).max(1)
        top = conf.argsort(descending=True, stable=True)[:confident]
        candidates += [
            (rank, -float(conf[k]), s, int(k), int(pred[k])) for rank, k in enumerate(top)
        ]
    # each set's surest image first, then each set's second...: one set (inverted images,
    # often) would otherwise fill the row
    candidates.sort(key=lambda c: c[:2])
    for _, minus_conf, s, k, pred in candidates[:confident]:
        conf = -minus_conf
        result.confident.append(Confident(s.name, k, s.what[k], CLASSES[pred], conf, s.images[k]))
    return result


def ood(
    models: Sequence | str | Run = ("dnn", "cnn"),
    *,
    sets: Sequence[str] = SETS,
    images: int = OOD_IMAGES,
    resamples: int = BOOTSTRAP,
    held_out: int | None = None,
    seed: int = 0,
    runs: str | os.PathLike = "runs",
    data=None,
) -> OOD:
    """How well each run's confidence separates Fashion-MNIST's test images from images
    it was never trained for (see the module's docstring for the sets and scores).

    Args:
        models: :class:`~archlab.Run` objects, specs, groups (``"zoo"``) or run folder
            names (one run alone is fine). Default: the lecture's two.
        sets: out-of-distribution sets, from ``digits``, ``flip``, ``invert``,
            ``rotate``, ``noise``. Default: all five.
        images: test images (stratified by class, fixed seed); the transformed sets are
            made from the same images. Default: 2,000.
        resamples: bootstrap resamples for the intervals (0: none). Default: 1,000.
        held_out: a class the runs were trained without (see :func:`without_class`): its
            test images leave the in-distribution set and become the set ``held-out``.
            Default: the class the runs' configs record as ``held_out`` (a run of all ten
            classes beside them is the control); else None. Runs that record different
            classes, or a class other than the one a run records, are refused.
        seed: the images' draw, the noise and the bootstrap. Default: 0.
        runs: the runs folder, for the names. Default: ``"runs"``.
        data: the dataset. Default: :func:`~archlab.load_fashion_mnist`.

    Returns:
        An :class:`OOD` report: print it, ``.plot()`` it, ``.plot_confident()``.

    Example::

        >>> print(archlab.ood(["dnn", "cnn"], sets=["digits", "flip"]))   # doctest: +SKIP
    """
    from archlab.analysis.faithfulness import stratified_indices
    from archlab.training.run import as_runs

    if isinstance(sets, str):
        sets = [s for s in sets.split(",") if s]
    sets = list(dict.fromkeys(sets))
    if images < 1:
        raise ArchlabError(f"images={images}: give at least 1")
    if resamples < 0:
        raise ArchlabError(f"resamples={resamples}: give 0 (no intervals) or more")
    bad = [s for s in sets if s not in SETS]
    if bad or not sets:
        raise ArchlabError(f"sets={','.join(bad) or 'nothing'}: choose from {', '.join(SETS)}")
    loaded = as_runs(models, runs)
    # the class each run records it was trained without: the held-out set is that class,
    # and a run trained on all ten beside it is the control (it saw that class)
    recorded = {r.name: r.held_out for r in loaded if getattr(r, "held_out", None) is not None}
    declared = set(recorded.values())
    said = ", ".join(f"{name} without {CLASSES[k]} ({k})" for name, k in recorded.items())
    if len(declared) > 1:
        raise ArchlabError(
            f"these runs were trained without different classes ({said}); ask about them "
            "one at a time"
        )
    if held_out is None:
        held_out = next(iter(declared), None)
    elif declared and held_out not in declared:
        why = (
            f"{said}: its own held-out class is the one it never saw (the class given was "
            "trained on); leave it out to use the run's"
        )
        raise ArchlabError(
            f"held_out={held_out}: {why}", cli_message=f"--held-out {held_out}: {why}"
        )
    if data is None:
        from archlab.training.data import load_fashion_mnist

        data = load_fashion_mnist()
    pool = torch.arange(len(data.test_labels))
    if held_out is not None:
        if not 0 <= held_out < len(CLASSES):
            raise ArchlabError(f"held_out={held_out}: give a class 0-{len(CLASSES) - 1}")
        pool = (data.test_labels != held_out).nonzero().flatten()
    chosen = pool[stratified_indices(data.test_labels[pool], min(images, len(pool)), seed)]
    test_images = data.test_images[chosen]
    built = make_sets(sets, test_images, chosen, data.test_labels[chosen], data.pixel_stats(), seed)
    if held_out is not None:
        held = (data.test_labels == held_out).nonzero().flatten()
        name = CLASSES[held_out]
        built.append(
            OODSet(
                "held-out",
                data.test_images[held],
                [f"test image {int(i)} ({name}, held out)" for i in held],
            )
        )
        sets = [*sets, "held-out"]
    report = OOD(
        sets,
        list(METHODS),
        chosen.tolist(),
        {s.name: len(s.images) for s in built},
        {
            s.name: (float(s.images.double().mean() / 255), float(s.images.double().std() / 255))
            for s in built
        },
        resamples,
    )
    if held_out is not None:
        report.held_out = CLASSES[held_out]
        report.saw_held_out = [r.name for r in loaded if getattr(r, "held_out", None) is None]
    for run in loaded:
        report.results.append(
            ood_of_model(
                run.model,
                test_images,
                built,
                normalize=run.normalize,
                resamples=resamples,
                seed=seed,
                model_name=run.name,
            )
        )
    return report
