"""Every report prints as text in a terminal and renders as an HTML table in Jupyter."""

from pathlib import Path

import torch

import archlab
from archlab.analysis.evaluation import Comparison, ModelResult, classification_report
from archlab.analysis.explain import SanityCheck
from archlab.training.data import DataReport, DataSource
from archlab.training.recipes import TrainConfig
from archlab.training.table import TrainSummary
from archlab.training.train import TrainResult


def _reports():
    probs = torch.eye(10)[torch.arange(20) % 10]
    cls = classification_report("cnn", probs, torch.arange(20) % 10)
    result = TrainResult(
        "dnn", TrainConfig("dnn"), Path("c.pt"), 0.88, 3000, 9.5, 0.2, 235146, "cpu"
    )
    return [
        archlab.trace_shapes("cnn"),
        archlab.count_params("dnn"),
        archlab.compare_params([archlab.count_params("dnn"), archlab.count_params("cnn")]),
        DataReport(DataSource(Path("d"), "test"), {"f": ("a", "a")}, [1] * 10, [1] * 10),
        cls,
        Comparison([ModelResult("dnn", 1, 2, 3.0, cls), ModelResult("cnn", 4, 5, 6.0, cls)]),
        TrainSummary([result]),
        SanityCheck(["fc3", "fc2"], {"saliency": [0.5, 0.1]}, {}),
    ]


def test_text_and_html():
    for report in _reports():
        text, html = str(report), report._repr_html_()
        assert text.strip() and "<table>" in html, type(report).__name__
        assert "<th>" in html and "</table>" in html


def test_comparison_shows_the_gain_per_class():
    cls = classification_report("x", torch.eye(10)[torch.arange(20) % 10], torch.arange(20) % 10)
    text = str(Comparison([ModelResult("dnn", 1, 2, 3.0, cls), ModelResult("cnn", 4, 5, 6.0, cls)]))
    assert "cnn − dnn" in text and "+0.0" in text
