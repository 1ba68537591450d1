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


def test_a_held_out_runs_analyses_count_only_the_classes_it_learned(tmp_path):
    # Fails on the old code: confusion, map, calibration and attack counted the held-out
    # class's test images, whose every answer is wrong (81 % where training said 90 %).
    import pytest

    import archlab
    from archlab.errors import ArchlabError

    from .synthetic import learnable_dataset

    data = learnable_dataset()
    quiet = {"log": lambda line: None, "progress": False}
    run = archlab.train("dnn", data=data, runs=tmp_path, hold_out=6, epochs=2, **quiet)
    kept = data.test_labels != 6
    # the reference: a direct argmax over the nine kept classes' test images
    x = (data.test_images[kept].float() / 255 - run.normalize[0]) / run.normalize[1]
    with torch.no_grad():
        predicted = run.model.eval()(x.unsqueeze(1)).argmax(1)
    expected = (predicted == data.test_labels[kept]).double().mean().item()
    assert run.test_accuracy == pytest.approx(expected, abs=1e-6)

    report = archlab.evaluate(run, data=data)
    assert report.accuracy == pytest.approx(expected, abs=1e-9)
    assert int(report.matrix.sum()) == int(kept.sum()) and int(report.matrix[6].sum()) == 0
    text = str(report)
    assert f"on {int(kept.sum())} images (9 classes, Shirt held out" in text
    shirt = next(line for line in text.splitlines() if line.startswith("Shirt "))
    assert shirt.split()[1:4] == ["held", "out", "-"]
    assert report.to_dict()["held_out"] == 6
    ticks = [t.get_text() for t in report.plot().axes[0].get_yticklabels()]
    assert ticks[6] == "Shirt (held out)" and ticks[5] == "Sandal"
    m = archlab.embedding(run, data=data, images=int(kept.sum()))
    assert 6 not in m.labels.tolist() and m.accuracy == pytest.approx(expected, abs=1e-9)
    cal = archlab.calibration([run], data=data, fit_images=100)
    assert cal.test_images == int(kept.sum())
    assert f"{int(kept.sum())} test images (9 classes, Shirt held out)" in str(cal)
    assert cal.results[0].before.accuracy == pytest.approx(expected, abs=1e-9)
    rob = archlab.attack([run], data=data, eps=[0], images=int(kept.sum()), pgd_steps=1)
    assert rob.results[0].fgsm[0] == pytest.approx(expected, abs=1e-9)
    assert f"{rob.images} test images (9 classes, Shirt held out)" in str(rob)
    # a run of all ten classes beside it: one table would mix two test sets
    other = archlab.train("dnn", data=data, runs=tmp_path, epochs=1, **quiet)
    with pytest.raises(ArchlabError, match="held out different classes"):
        archlab.calibration([run, other], data=data, fit_images=100)
    both = archlab.compare([other, run], data=data)
    assert "held out" in str(both) and "(no Shirt)" in str(both)
    bars = both.plot().axes[-1]  # recall per class: no bar for the class it never saw
    heights = [p.get_height() for p in bars.patches]
    assert len(heights) == 20 and heights[10 + 6] != heights[10 + 6]  # NaN, not 0
    assert all(h == h for i, h in enumerate(heights) if i != 16)
