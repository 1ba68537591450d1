"""What the first line of every answer says: counts agree with their noun ("1 epoch",
"1 test image"), a what-if is named wherever the model is, help texts tell the truth."""

import re
from pathlib import Path

import pytest
import torch

import archlab
from archlab._text import plural
from archlab.cli import main

# a count of one followed by a plural noun: "1 epochs", "1 test images", "over the first 0"
WRONG = re.compile(r"(?<![\d.,])1 (?:[a-z-]+ )?(?:epochs|images|steps|iterations|runs|pixels)\b")
WHAT_IF = ["layer2.0.padding=1", "fc1.in_features=3136"]


def test_plural():
    assert [plural(1, "epoch"), plural(0, "epoch"), plural(2, "epoch")] == [
        "1 epoch",
        "0 epochs",
        "2 epochs",
    ]
    assert plural(10_000, "test image") == "10,000 test images"
    assert plural(1, "pixel a step", "pixels a step") == "1 pixel a step"


def test_the_pattern_catches_what_it_should():
    assert WRONG.search("over 1 test images") and WRONG.search("1 epochs, careful")
    assert not WRONG.search("11 test images") and not WRONG.search("0.1 steps")


def _first_line(capsys, argv: list[str]) -> str:
    assert main(argv) == 0, argv
    return capsys.readouterr().out.strip().splitlines()[0]


@pytest.mark.parametrize("command", ["shapes", "params"])
def test_a_what_if_is_named_in_the_first_line(capsys, command):
    argv = [command, "cnn"] + [a for w in WHAT_IF for a in ("--set", w)]
    first = _first_line(capsys, argv)
    assert first.startswith(f"cnn with {', '.join(WHAT_IF)}:"), first


def test_params_of_a_spec_with_its_own_what_if_names_it():
    from archlab.models.spec import ModelSpec

    spec = ModelSpec.parse("cnn", ["layer1.0.padding=2"])
    text = str(archlab.count_params(spec, overrides=["drop.p=0.5"]))
    assert text.splitlines()[0].startswith("cnn with layer1.0.padding=2, drop.p=0.5:")


def test_shapes_help_says_how_many_images_the_trace_runs(capsys):
    from archlab.trace._batch import BATCH

    assert main(["shapes", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert f"a batch of {BATCH} zero images" in text
    assert "one zero image" not in text and "batch of 2 " not in text
    root = Path(archlab.__file__).resolve().parents[2]  # the clone: src/archlab/__init__.py
    assert (root / "README.md").is_file()
    for path in [root / "README.md", *(root / "examples").glob("*.py")]:
        if path.is_file():
            words = " ".join(path.read_text(encoding="utf-8").replace("#", " ").split())
            assert "one zero image" not in words, path


def _one_of_everything() -> list:
    """Each report that counts something, built with a count of one."""
    from archlab.analysis.evaluation import classification_report
    from archlab.analysis.faithfulness import Faithfulness, Row
    from archlab.analysis.robustness import ModelRobustness, Robustness
    from archlab.training.lr_find import LRFinder
    from tests.test_reports import _run

    run = _run()
    run.config.epochs = 1
    probs = torch.eye(10)[:1]
    rows = [
        Row(n, k, "", (0.5, 0.0), (0.6, 0.0)) for n, k in (("ig", "method"), ("random", "control"))
    ]
    return [
        run,
        classification_report("cnn", probs, torch.tensor([0])),
        Faithfulness("cnn", "zero", 1, 0, 1, torch.linspace(0, 1, 3), rows),
        Robustness([0.1], 1, 1, [ModelRobustness("cnn", [1.0], [1.0])]),
        LRFinder("cnn", [1e-3], [2.3], [2.3], 1e-3, 1e-4),
    ]


@pytest.mark.parametrize("report", _one_of_everything(), ids=lambda r: type(r).__name__)
def test_a_count_of_one_reads_in_the_singular(report):
    text = str(report) + "\n" + repr(report)
    assert not WRONG.search(text), WRONG.search(text).group(0)
    assert "first 0" not in text


def test_the_docstrings_name_test_image_42_by_its_class():
    """Test image 42 is a Dress (the real test set's label 3), not a Sneaker."""
    root = Path(archlab.__file__).parent
    for path in root.rglob("*.py"):
        for line in path.read_text(encoding="utf-8").splitlines():
            if "42" in line:
                assert "Sneaker" not in line, f"{path}: {line.strip()}"
    text = (root / "analysis" / "explain.py").read_text(encoding="utf-8")
    assert "true: Sneaker" not in text


@pytest.mark.realdata
def test_test_image_42_is_a_dress():
    from archlab.training import data

    if not data.DEBIAN_DIR.is_dir():
        pytest.skip("real Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)")
    loaded = archlab.load_fashion_mnist()
    assert loaded.classes[int(loaded.test_labels[42])] == "Dress"


def test_figure_titles_with_a_count_of_one_read_in_the_singular():
    from archlab.analysis.robustness import ModelRobustness, Robustness
    from archlab.viz._figure import close_figure
    from archlab.viz.features import plot_activations, plot_filters

    figures = [
        plot_filters(torch.randn(1, 1, 3, 3), "x: conv"),
        plot_activations({"conv": torch.rand(1, 6, 6), "fc": torch.rand(1)}),
        Robustness([0.1], 1, 1, [ModelRobustness("cnn", [1.0], [1.0])]).plot(),
    ]
    for fig in figures:
        text = " ".join(
            t.get_text() for t in fig.findobj(lambda a: hasattr(a, "get_text")) if t.get_text()
        )
        close_figure(fig)
        assert not WRONG.search(text.replace("\n", " ")), text
        assert not re.search(r"(?<![\d.,])1 (kernels|maps|units)\b", text), text


def test_trainings_first_line_names_the_what_if_and_one_epoch(tmp_path):
    from tests.synthetic import learnable_dataset

    lines: list[str] = []
    archlab.train(
        "dnn",
        ["drop.p=0.5"],
        runs=tmp_path,
        data=learnable_dataset(n_train=100, n_test=50),
        epochs=1,
        batch_size=50,
        max_iterations=1,
        progress=False,
        figures=False,
        log=lines.append,
    )
    first = lines[0]
    assert first.startswith("dnn+drop.p=0.5: ") and "1 epoch × 2 iterations" in first, first
    assert not WRONG.search(" ".join(lines)), lines


def test_lr_finds_first_line_names_the_what_if():
    from tests.synthetic import learnable_dataset

    report = archlab.lr_find(
        "dnn",
        overrides=["drop.p=0.5"],
        iterations=3,
        batch_size=20,
        data=learnable_dataset(100, 20),
    )
    first = str(report).splitlines()[0]
    assert first.startswith("dnn with drop.p=0.5: 3 steps from"), first
