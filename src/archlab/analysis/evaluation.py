"""Confusion matrices, per-class scores, confused pairs and the comparison of trained runs."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch

from archlab import _table
from archlab._report import Report
from archlab._text import plural
from archlab.errors import ArchlabError
from archlab.training.data import CLASSES

if TYPE_CHECKING:
    from archlab.training.run import Run


def confusion_matrix(predictions: torch.Tensor, labels: torch.Tensor, n: int = 10) -> torch.Tensor:
    """``M[true, predicted]`` counts, ``(n, n)`` int64; sums to ``len(labels)``.

    Example::

        >>> from archlab.analysis.evaluation import confusion_matrix
        >>> confusion_matrix(torch.tensor([0, 1, 1]), torch.tensor([0, 0, 1]), 2)
        tensor([[1, 1],
                [0, 1]])
    """
    return torch.bincount(labels.long() * n + predictions.long(), minlength=n * n).reshape(n, n)


@dataclass
class ClassificationReport(Report):
    """A run on the test set: the confusion matrix and what follows from it (what
    :func:`evaluate` returns). Prints as tables; ``.plot(ax=None)`` draws the confusion
    matrix, ``.plot_mistakes(n)`` the ``n`` most confident mistakes; Jupyter shows both.

    Example::

        >>> from archlab.analysis.evaluation import classification_report
        >>> probs = torch.tensor([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]])
        >>> report = classification_report("toy", probs, torch.tensor([0, 1, 1]))
        >>> report.recall.tolist(), report.plot().axes[0].get_title()
        ([1.0, 0.5], 'toy: accuracy 66.67%')
    """

    model: str
    matrix: torch.Tensor  # (10, 10) counts, rows = true class
    probs: torch.Tensor | None = field(default=None, repr=False)  # (N, 10)
    classes: tuple[str, ...] = CLASSES
    labels: torch.Tensor | None = field(default=None, repr=False)  # (N,) true classes
    images: torch.Tensor | None = field(default=None, repr=False)  # (N, H, W) uint8
    # the class the run never saw (train --hold-out): its row is empty, not a 0 recall
    held_out: int | None = None
    _shows_figure = True

    def plot(self, ax=None):
        from archlab.viz.evaluation import plot_confusion

        return plot_confusion(self, ax)

    def plot_mistakes(self, n: int = 16):
        """The ``n`` wrong predictions made with the highest confidence, with their images."""
        from archlab.viz.evaluation import plot_mistakes

        if self.images is None or self.labels is None:
            raise ArchlabError("this report was made without the images; use archlab.evaluate")
        wrong = self.mistakes(self.labels, n)
        return plot_mistakes(
            self.images,
            self.labels,
            self.probs,
            wrong,
            self.classes,
            f"{self.model}: the {len(wrong)} most confident mistakes",
        )

    def _figure_html(self) -> str:
        html = super()._figure_html()
        if self.images is None or self.labels is None:
            return html
        from archlab._report import figure_html

        return html + figure_html(self.plot_mistakes(8), "mistakes")

    def to_dict(self) -> dict:
        from archlab._report import jsonable

        return {
            "model": self.model,
            "accuracy": self.accuracy,
            "matrix": jsonable(self.matrix),
            "classes": list(self.classes),
            "held_out": self.held_out,
            "precision": jsonable(self.precision),
            "recall": jsonable(self.recall),
            "f1": jsonable(self.f1),
        }

    @property
    def accuracy(self) -> float:
        return int(self.matrix.diag().sum()) / int(self.matrix.sum())

    @property
    def recall(self) -> torch.Tensor:
        return self.matrix.diag().double() / self.matrix.sum(1).clamp(min=1)

    @property
    def precision(self) -> torch.Tensor:
        return self.matrix.diag().double() / self.matrix.sum(0).clamp(min=1)

    @property
    def f1(self) -> torch.Tensor:
        p, r = self.precision, self.recall
        return torch.where(p + r > 0, 2 * p * r / (p + r), torch.zeros_like(p))

    def recall_text(self, i: int) -> str:
        """Class ``i``'s recall in %, or ``held out`` for the class the run never saw."""
        return "held out" if i == self.held_out else f"{100 * float(self.recall[i]):.1f}%"

    def confused_pairs(self, k: int = 5) -> list[tuple[int, int, int, int]]:
        """The ``k`` class pairs most often mistaken for each other, either way round:
        ``(a, b, a→b, b→a)`` sorted by ``a→b + b→a``."""
        m = self.matrix
        pairs = [
            (a, b, int(m[a, b]), int(m[b, a])) for a in range(len(m)) for b in range(a + 1, len(m))
        ]
        pairs = [(a, b, ab, ba) if ab >= ba else (b, a, ba, ab) for a, b, ab, ba in pairs]
        return sorted(pairs, key=lambda p: -(p[2] + p[3]))[:k]

    def table(self) -> _table.Table:
        """Per-class precision, recall and F1."""
        rows = [
            [c, f"{float(p):.3f}", f"{float(r):.3f}", f"{float(f):.3f}", int(n)]
            if i != self.held_out
            else [c, "held out", "-", "-", int(n)]
            for i, (c, p, r, f, n) in enumerate(
                zip(
                    self.classes,
                    self.precision,
                    self.recall,
                    self.f1,
                    self.matrix.sum(1),
                    strict=True,
                )
            )
        ]
        return _table.Table(["class", "precision", "recall", "F1", "images"], rows)

    def pairs_text(self, k: int = 5) -> str:
        lines = []
        for a, b, ab, ba in self.confused_pairs(k):
            ca, cb = self.classes[a], self.classes[b]
            lines.append(f"{ca} ↔ {cb}: {ab + ba} ({ca} taken for {cb} {ab}, the reverse {ba})")
        return "\n".join(lines)

    def _parts(self) -> list[_table.Table | str]:
        over = ""
        if self.held_out is not None:
            name = self.classes[self.held_out]
            over = (
                f" ({len(self.classes) - 1} classes, {name} held out: never trained on, "
                f"so its test images are left out; archlab ood asks whether it flags them)"
            )
        return [
            f"{self.model}: test accuracy {100 * self.accuracy:.2f}% on "
            f"{plural(int(self.matrix.sum()), 'image')}{over}",
            self.table(),
            f"most confused pairs:\n{self.pairs_text()}",
        ]

    def mistakes(self, labels: torch.Tensor, n: int) -> list[int]:
        """Indices of the ``n`` wrong predictions made with the highest confidence."""
        if self.probs is None:
            return []
        confidence, predicted = self.probs.max(1)
        wrong = (predicted != labels).nonzero().flatten()
        order = confidence[wrong].argsort(descending=True)
        return wrong[order[:n]].tolist()


def classification_report(
    model_name: str, probs: torch.Tensor, labels: torch.Tensor
) -> ClassificationReport:
    """From probabilities ``(N, 10)`` and true labels ``(N,)``.

    Example::

        >>> probs = torch.tensor([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]])
        >>> from archlab.analysis.evaluation import classification_report
        >>> report = classification_report("toy", probs, torch.tensor([0, 1, 1]))
        >>> report.accuracy, report.matrix.tolist()
        (0.6666666666666666, [[1, 0], [1, 1]])
    """
    n = probs.shape[1]
    matrix = confusion_matrix(probs.argmax(1), labels, n)
    classes = CLASSES if n == len(CLASSES) else tuple(str(i) for i in range(n))
    return ClassificationReport(model_name, matrix, probs, classes)


@dataclass
class ModelResult:
    """One trained run on the test set, with its costs and how it was trained."""

    name: str
    params: int
    macs: int
    train_seconds: float
    report: ClassificationReport
    trained: str = ""  # "5 epochs, careful": runs trained differently are not compared alike


@dataclass
class Comparison(Report):
    """Trained runs side by side: costs, how each was trained, test accuracy, and recall
    per class (what :func:`compare` returns). ``.plot()`` draws each run's confusion matrix
    and the recall per class; ``.plot(ax)`` accuracy against parameters;
    ``.plot_tradeoff()`` accuracy against parameters and against MACs.

    Example::

        >>> comparison = archlab.compare(["dnn", "cnn"])   # doctest: +SKIP
        >>> [(m.name, m.trained) for m in comparison.models]   # doctest: +SKIP
        [('dnn', '5 epochs, careful'), ('cnn', '5 epochs, careful')]
        >>> comparison.save("compare.png")   # doctest: +SKIP
    """

    models: list[ModelResult]
    _shows_figure = True

    def plot(self, ax=None):
        from archlab.viz.evaluation import plot_comparison, plot_tradeoff

        if ax is None:
            return plot_comparison(self)
        return plot_tradeoff(self, axes=[ax])

    def plot_tradeoff(self):
        """Test accuracy against parameters and against MACs (log x), one point per run
        (what ``archlab compare`` saves as ``<out>-tradeoff.png``)."""
        from archlab.viz.evaluation import plot_tradeoff

        return plot_tradeoff(self)

    def to_dict(self) -> dict:
        return {
            "models": [
                {
                    "name": m.name,
                    "params": m.params,
                    "macs": m.macs,
                    "trained": m.trained,
                    "train_seconds": m.train_seconds,
                    **m.report.to_dict(),
                }
                for m in self.models
            ]
        }

    def summary_table(self) -> _table.Table:
        rows = [
            [
                m.name,
                f"{m.params:,}",
                f"{m.macs:,}",
                m.trained,
                f"{m.train_seconds:.1f} s",
                f"{100 * m.report.accuracy:.2f}%"
                + ("" if m.report.held_out is None else f" (no {CLASSES[m.report.held_out]})"),
            ]
            for m in self.models
        ]
        headers = [
            "model",
            "parameters",
            "MACs per image",
            "trained",
            "training time",
            "test accuracy",
        ]
        return _table.Table(headers, rows)

    def per_class_table(self) -> _table.Table:
        classes = self.models[0].report.classes
        rows = [[c, *(m.report.recall_text(i) for m in self.models)] for i, c in enumerate(classes)]
        headers = ["class", *(f"{m.name} accuracy" for m in self.models)]
        first = self.models[0]
        # every model against the first, in points (beyond three models the table would be
        # too wide to read: the hardest-classes table and the figure show them instead)
        for other in self.models[1:] if len(self.models) <= 3 else []:
            headers.append(f"{other.name} − {first.name}")
            for i, row in enumerate(rows):
                seen = i not in (other.report.held_out, first.report.held_out)
                gain = float(other.report.recall[i] - first.report.recall[i])
                row.append(f"{100 * gain:+.1f}" if seen else "-")
        return _table.Table(headers, rows, "per class (recall):")

    # the classes the lecture's models confuse most: where an architecture can still gain
    HARD_CLASSES = ("Shirt", "Pullover", "Coat", "T-shirt/top")

    def hard_classes_table(self) -> _table.Table:
        classes = list(self.models[0].report.classes)
        rows = []
        for m in self.models:
            rows.append(
                [m.name, *(m.report.recall_text(classes.index(c)) for c in self.HARD_CLASSES)]
            )
        return _table.Table(["model", *self.HARD_CLASSES], rows, "the hardest classes (recall):")

    def _parts(self) -> list[_table.Table | str]:
        parts: list[_table.Table | str] = [self.summary_table()]
        if len({m.trained for m in self.models}) > 1:
            parts.append(
                "note: these runs were trained differently (see 'trained'): a difference in "
                "accuracy is not the architecture's alone"
            )
        parts.append(self.per_class_table())
        if len(self.models) > 2:
            parts.append(self.hard_classes_table())
        return parts


def compare(
    models: Sequence | str | Run = ("dnn", "cnn"),
    *,
    runs: str | os.PathLike = "runs",
    data=None,
    device: str = "cpu",
) -> Comparison:
    """Evaluate trained runs once each on the whole test set and put them side by side.

    Args:
        models: :class:`~archlab.Run` objects, specs, groups (``"zoo"``) or run folder
            names (``"cnn+layer2.0.padding=1"``), two or more. Default: the lecture's two.
        runs: the runs folder, for the names. Default: ``"runs"``.
        data: the dataset in memory. Default: :func:`~archlab.load_fashion_mnist`.
        device: where to evaluate (``"auto"``, ``"cuda"``...); the models are put back on
            the CPU afterwards. Default: ``"cpu"``.

    Example::

        >>> print(archlab.compare(["dnn", "cnn", "resnet"]))  # doctest: +SKIP
    """
    from archlab.device import pick_device
    from archlab.trace.params import count_params
    from archlab.training.run import as_runs

    loaded = as_runs(models, runs)  # every name is checked before any run is loaded
    folders = [str(r.folder.resolve()) for r in loaded]
    duplicate = next(
        (r.name for r, f in zip(loaded, folders, strict=True) if folders.count(f) > 1), None
    )
    if duplicate is not None:
        raise ArchlabError(f"run {duplicate} is named twice; compare different runs")
    if data is None:
        from archlab.training.data import load_fashion_mnist

        data = load_fashion_mnist()
    dev = pick_device(device)
    results = []
    for run in loaded:
        net = run.model
        report = evaluate(run, data=data) if dev.type == "cpu" else _evaluate_on(run, data, dev)
        results.append(
            ModelResult(
                run.name,
                sum(p.numel() for p in net.parameters()),
                count_params(net, tuple(net.input_shape)).total_macs,
                run.seconds,
                report,
                run.what,
            )
        )
    return Comparison(results)


def _evaluate_on(run, data, device) -> ClassificationReport:
    """:func:`evaluate` with the run's model on ``device`` for the pass, then on the CPU
    again (the MAC count traces it with inputs on the CPU)."""
    run.model.to(device)
    try:
        return evaluate(run, data=data)
    finally:
        run.model.cpu()


def evaluate(run, *, runs: str | os.PathLike = "runs", data=None) -> ClassificationReport:
    """One pass of a trained run over the test set: probabilities, confusion matrix,
    per-class scores, the most confused pairs and the most confident mistakes.

    Args:
        run: a :class:`~archlab.Run`, or a spec or run folder's name to load from ``runs``.
        runs: the runs folder, when ``run`` is a name. Default: ``"runs"``.
        data: the dataset (its test split is used). Default: :func:`~archlab.load_fashion_mnist`.

    Returns:
        A :class:`ClassificationReport` (``.matrix``, ``.precision``, ``.recall``, ``.f1``,
        ``.confused_pairs()``, ``.plot()``, ``.plot_mistakes()``).

    Example::

        >>> report = archlab.evaluate("cnn")   # doctest: +SKIP
        >>> report.confused_pairs(1)           # doctest: +SKIP
        [(6, 0, 125, 67)]
    """
    from archlab.training.predict import predict_logits
    from archlab.training.run import as_run

    run = as_run(run, runs)
    if data is None:
        from archlab.training.data import load_fashion_mnist

        data = load_fashion_mnist()
    data = run.own_data(data)  # a held-out class: not tested, as in training
    logits = predict_logits(run.model, data.test_images, run.normalize)
    probs = torch.softmax(logits, dim=1).cpu()  # on the CPU wherever the model ran
    report = classification_report(run.name, probs, data.test_labels)
    report.labels, report.images = data.test_labels, data.test_images
    report.held_out = run.held_out
    return report
