"""Confusion matrices, per-class scores, confused pairs and the comparison of trained runs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

from archlab import _table
from archlab.errors import ArchlabError
from archlab.training.data import CLASSES


def confusion_matrix(predictions: torch.Tensor, labels: torch.Tensor, n: int = 10) -> torch.Tensor:
    """``M[true, predicted]`` counts, ``(n, n)`` int64; sums to ``len(labels)``.

    Example::

        >>> archlab.confusion_matrix(torch.tensor([0, 1, 1]), torch.tensor([0, 0, 1]), 2)
        tensor([[1, 1],
                [0, 1]])
    """
    return torch.bincount(labels.long() * n + predictions.long(), minlength=n * n).reshape(n, n)


@dataclass
class ClassificationReport(_table.Tabular):
    """A confusion matrix and what follows from it; prints as tables."""

    model: str
    matrix: torch.Tensor  # (10, 10) counts, rows = true class
    probs: torch.Tensor | None = field(default=None, repr=False)  # (N, 10)
    classes: tuple[str, ...] = CLASSES

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
            for c, p, r, f, n in zip(
                self.classes,
                self.precision,
                self.recall,
                self.f1,
                self.matrix.sum(1),
                strict=True,
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
        return [
            f"{self.model}: test accuracy {100 * self.accuracy:.2f}% on "
            f"{int(self.matrix.sum()):,} images",
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
        >>> report = archlab.classification_report("toy", probs, torch.tensor([0, 1, 1]))
        >>> report.accuracy, report.matrix.tolist()
        (0.6666666666666666, [[1, 0], [1, 1]])
    """
    matrix = confusion_matrix(probs.argmax(1), labels, probs.shape[1])
    return ClassificationReport(model_name, matrix, probs)


@dataclass
class ModelResult:
    """One trained model on the test set, with its costs."""

    name: str
    params: int
    macs: int
    train_seconds: float
    report: ClassificationReport


@dataclass
class Comparison(_table.Tabular):
    """Trained models side by side: costs, test accuracy, and recall per class."""

    models: list[ModelResult]

    def summary_table(self) -> _table.Table:
        rows = [
            [
                m.name,
                f"{m.params:,}",
                f"{m.macs:,}",
                f"{m.train_seconds:.1f} s",
                f"{100 * m.report.accuracy:.2f}%",
            ]
            for m in self.models
        ]
        headers = ["model", "parameters", "MACs per image", "training time", "test accuracy"]
        return _table.Table(headers, rows)

    def per_class_table(self) -> _table.Table:
        classes = self.models[0].report.classes
        rows = [
            [c, *(f"{100 * float(m.report.recall[i]):.1f}%" for m in self.models)]
            for i, c in enumerate(classes)
        ]
        headers = ["class", *(f"{m.name} accuracy" for m in self.models)]
        first = self.models[0]
        # every model against the first, in points (beyond three models the table would be
        # too wide to read: the hardest-classes table and the figure show them instead)
        for other in self.models[1:] if len(self.models) <= 3 else []:
            headers.append(f"{other.name} − {first.name}")
            for i, row in enumerate(rows):
                row.append(f"{100 * float(other.report.recall[i] - first.report.recall[i]):+.1f}")
        return _table.Table(headers, rows, "per class (recall):")

    # the classes the lecture's models confuse most: where an architecture can still gain
    HARD_CLASSES = ("Shirt", "Pullover", "Coat", "T-shirt/top")

    def hard_classes_table(self) -> _table.Table:
        classes = list(self.models[0].report.classes)
        rows = []
        for m in self.models:
            recall = [float(m.report.recall[classes.index(c)]) for c in self.HARD_CLASSES]
            rows.append([m.name, *(f"{100 * r:.1f}%" for r in recall)])
        return _table.Table(["model", *self.HARD_CLASSES], rows, "the hardest classes (recall):")

    def _parts(self) -> list[_table.Table | str]:
        parts = [self.summary_table(), self.per_class_table()]
        if len(self.models) > 2:
            parts.append(self.hard_classes_table())
        return parts


def compare_models(
    models: Sequence[str] = ("dnn", "cnn"),
    runs: str = "runs",
    data=None,
    data_dir=None,
    device: str = "cpu",
) -> Comparison:
    """Evaluate trained runs once each on the whole test set and put them side by side.

    Args:
        models: specs or run folder names (``"cnn+layer2.0.padding=1"``), two or more.
            Default: the lecture's two.
        runs: the runs folder. Default: ``"runs"``.
        data: the dataset in memory. Default: loaded from ``data_dir``.
        device: where to evaluate (``"auto"``, ``"cuda"``...). Default: ``"cpu"``.

    Example::

        >>> print(archlab.compare_models(["dnn", "cnn", "resnet"]))  # doctest: +SKIP
    """
    from archlab.device import pick_device
    from archlab.trace.params import count_params
    from archlab.training.data import load_fashion_mnist
    from archlab.training.runs import find_run, load_trained_model

    for name in models:  # every name is checked before any run is loaded
        find_run(name, runs)
    loaded = [load_trained_model(name, runs) for name in models]
    runs_seen = [payload["run"] for _, payload in loaded]
    duplicate = next((r for r in runs_seen if runs_seen.count(r) > 1), None)
    if duplicate is not None:
        raise ArchlabError(f"run {duplicate} is named twice; compare different runs")
    dev = pick_device(device)
    if data is None:
        data = load_fashion_mnist(data_dir)
    results = []
    for net, payload in loaded:
        name = payload["run"]
        report = evaluate_report(name, net.to(dev), data, payload.get("normalize"))
        net.cpu()  # the MAC count traces it with inputs on the CPU
        results.append(
            ModelResult(
                name,
                sum(p.numel() for p in net.parameters()),
                count_params(net, tuple(net.input_shape)).total_macs,
                payload.get("seconds", 0.0),
                report,
            )
        )
    return Comparison(results)


def evaluate_report(model_name: str, net, data, normalize) -> ClassificationReport:
    """One pass over the test set: probabilities, confusion matrix, per-class scores.

    Args:
        model_name: for titles.
        net: the trained model.
        data: a :class:`~archlab.FashionMNIST`; its test split is used.
        normalize: the (mean, std) the model was trained with, or None.

    Returns:
        A :class:`ClassificationReport` (``.matrix``, ``.precision``, ``.recall``,
        ``.f1``, ``.confused_pairs()``, ``.mistakes()``).

    Example::

        >>> model, ckpt = archlab.load_trained_model("cnn")  # doctest: +SKIP
        >>> data = archlab.load_fashion_mnist()  # doctest: +SKIP
        >>> report = archlab.evaluate_report("cnn", model, data, ckpt["normalize"])
        ... # doctest: +SKIP
    """
    from archlab.training.predict import predict_logits

    normalize = tuple(normalize) if normalize is not None else None
    probs = torch.softmax(predict_logits(net, data.test_images, normalize), dim=1).cpu()
    return classification_report(model_name, probs, data.test_labels)
