import torch

from archlab.analysis.evaluation import (
    ClassificationReport,
    classification_report,
    confusion_matrix,
)


def test_confusion_matrix_by_hand():
    labels = torch.tensor([0, 0, 1, 1, 2, 2])
    preds = torch.tensor([0, 1, 1, 1, 0, 2])
    m = confusion_matrix(preds, labels, 3)
    assert m.tolist() == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]
    assert int(m.sum()) == len(labels)


def test_precision_recall_f1_and_pairs():
    m = torch.tensor([[8, 2, 0], [4, 6, 0], [0, 0, 10]])
    report = ClassificationReport("x", m, classes=("a", "b", "c"))
    assert report.accuracy == 24 / 30
    assert report.recall.tolist() == [0.8, 0.6, 1.0]
    assert torch.allclose(report.precision, torch.tensor([8 / 12, 6 / 8, 1.0], dtype=torch.float64))
    p, r = 8 / 12, 0.8
    assert float(report.f1[0]) == __import__("pytest").approx(2 * p * r / (p + r))
    assert report.confused_pairs(1) == [(1, 0, 4, 2)]
    assert "b ↔ a: 6" in report.pairs_text(1)


def test_most_confident_mistakes():
    probs = torch.tensor([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7]])
    labels = torch.tensor([1, 1, 1, 0])
    report = classification_report("x", probs, labels)
    assert report.mistakes(labels, 5) == [0, 3, 2]
