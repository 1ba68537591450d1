"""Every report prints as text in a terminal and renders as an HTML table in Jupyter."""

from pathlib import Path

import torch

import archlab
from archlab._report import Report
from archlab.analysis.evaluation import Comparison, ModelResult, classification_report
from archlab.analysis.explain import SanityCheck
from archlab.models.spec import ModelSpec
from archlab.trace.params import compare_params
from archlab.training.data import DataReport, DataSource
from archlab.training.recipes import TrainConfig
from archlab.training.run import Run
from archlab.training.table import TrainSummary


def _reports():
    probs = torch.eye(10)[torch.arange(20) % 10]
    cls = classification_report("cnn", probs, torch.arange(20) % 10)
    result = _run()
    return [
        archlab.trace_shapes("cnn"),
        archlab.count_params("dnn"),
        compare_params([archlab.count_params("dnn"), archlab.count_params("cnn")]),
        DataReport(DataSource(Path("d"), "test"), {"f": ("a", "a")}, [1] * 10, [1] * 10),
        cls,
        Comparison([ModelResult("dnn", 1, 2, 3.0, cls), ModelResult("cnn", 4, 5, 6.0, cls)]),
        TrainSummary([result]),
        SanityCheck(["fc3", "fc2"], {"saliency": [0.5, 0.1]}, {}),
        result,
    ]


def _run(accuracy: float = 0.88) -> Run:
    history = {
        "model": "dnn",
        "train": [{"iteration": 50, "loss": 0.9}, {"iteration": 100, "loss": 0.5}],
        "eval": [{"iteration": 100, "test_accuracy": accuracy, "test_loss": 0.4}],
    }
    return Run(
        "dnn",
        Path("runs/dnn"),
        ModelSpec.parse("dnn"),
        archlab.create_model("dnn"),
        TrainConfig("dnn"),
        (0.286, 0.353),
        history,
        accuracy,
        3000,
        True,
        235146,
        9.5,
        0.2,
    )


def test_text_and_html():
    for report in _reports():
        text, html = str(report), report._repr_html_()
        assert text.strip() and "<table>" in html, type(report).__name__
        assert "<th>" in html and "</table>" in html


def test_comparison_shows_the_gain_per_class():
    cls = classification_report("x", torch.eye(10)[torch.arange(20) % 10], torch.arange(20) % 10)
    text = str(Comparison([ModelResult("dnn", 1, 2, 3.0, cls), ModelResult("cnn", 4, 5, 6.0, cls)]))
    assert "cnn − dnn" in text and "+0.0" in text


def _figure_reports():
    """Every public report that draws itself, made from tiny synthetic inputs."""
    from archlab.analysis.features import Activations, Filters

    probs = torch.softmax(torch.randn(20, 10), 1)
    cls = classification_report("cnn", probs, torch.arange(20) % 10)
    cls.labels, cls.images = torch.arange(20) % 10, torch.zeros(20, 28, 28, dtype=torch.uint8)
    image = torch.zeros(28, 28, dtype=torch.uint8)
    return [
        archlab.trace_shapes("cnn"),
        archlab.count_params("cnn"),
        _run(),
        archlab.filters(archlab.create_model("cnn"), "layer1.0"),
        archlab.activations(archlab.create_model("cnn"), image=image),
        cls,
        Comparison([ModelResult("dnn", 10, 20, 3.0, cls), ModelResult("cnn", 40, 50, 6.0, cls)]),
        Filters("x", "conv", torch.randn(4, 1, 3, 3), ["conv"]),
        Activations("x", image, {"fc": torch.rand(16)}),
    ]


def test_every_report_plots_saves_and_exports(tmp_path):
    import json

    from archlab.viz import close_figure, subplots

    for i, report in enumerate(_figure_reports()):
        name = type(report).__name__
        fig = report.plot()
        assert fig.axes, name
        close_figure(fig)
        fig, ax = subplots()
        assert report.plot(ax) is fig, name  # on a given axes: that axes' figure
        assert ax.has_data() or ax.images or ax.texts, name
        close_figure(fig)
        png = report.save(tmp_path / f"{i}.png")
        assert png.read_bytes()[:4] == b"\x89PNG", name
        data = json.loads(report.save(tmp_path / f"{i}.json").read_text())
        assert isinstance(data, dict) and data, name
        assert report.save(tmp_path / f"{i}.txt").read_text().strip() == str(report).strip()


def test_a_report_refuses_an_unknown_suffix(tmp_path):
    import pytest

    with pytest.raises(archlab.ArchlabError, match="a report is saved as"):
        archlab.count_params("dnn").save(tmp_path / "x.docx")
    assert not list(tmp_path.iterdir())


def test_pictures_show_in_jupyter_once():
    """A report whose answer is a picture renders it inline, as an <img>, with its
    tables; a table report renders tables only."""
    assert "<img" in archlab.filters(archlab.create_model("cnn"))._repr_html_()
    assert "<img" not in archlab.count_params("dnn")._repr_html_()


def _report_classes() -> list[type]:
    """Every report and table class in archlab (subclasses of Tabular, Report's base),
    found after importing all its modules (one added later is checked without editing
    this test)."""
    import importlib
    import pkgutil

    from archlab._table import Tabular

    for module in pkgutil.walk_packages(archlab.__path__, "archlab."):
        if module.name.split(".")[-1] != "__main__":
            importlib.import_module(module.name)
    found, todo = [], [Tabular]
    while todo:
        for sub in todo.pop().__subclasses__():
            if sub.__module__.startswith("archlab.") and sub not in found:
                found.append(sub)
                todo.append(sub)
    return found


def _huge(cls):
    """An instance of ``cls`` whose every field holds a lot: a 100,000-number tensor."""
    import dataclasses

    report = object.__new__(cls)
    for f in dataclasses.fields(cls):
        object.__setattr__(report, f.name, torch.zeros(100, 1000))
    return report


def test_every_reports_repr_is_a_summary_not_a_dump():
    """A notebook's text/plain and a terminal show ``repr``: 165,715 characters for one
    attack result when it was the dataclass's dump of whole tensors."""
    import dataclasses

    from archlab._table import Tabular

    classes = _report_classes()
    names = {c.__name__ for c in classes}
    assert {"Explanation", "Robustness", "Faithfulness", "Dynamics", "Run", "SanityCheck"} <= names
    for cls in classes:
        mine = cls.__repr__
        made_by_dataclass = mine.__code__.co_filename == dataclasses.__file__
        assert not made_by_dataclass, f"{cls.__name__}: the dataclass dump"
        if mine is Tabular.__repr__ and dataclasses.is_dataclass(cls):
            text = repr(_huge(cls))
            assert len(text) < 600 and "tensor(100×1000)" in text, (cls.__name__, text)
    for report in _reports() + _figure_reports():
        assert len(repr(report)) < 2_000, type(report).__name__


def test_a_report_defined_later_gets_the_summary_too():
    import dataclasses

    @dataclasses.dataclass
    class Later(Report):
        model: str
        maps: torch.Tensor
        names: list

    text = repr(Later("cnn", torch.zeros(64, 12, 12), ["a"] * 500))
    assert text == "<archlab.Later model='cnn', maps=tensor(64×12×12), names=[500 items]>"
