"""The figure commands in-process: PNGs written, bad input one line and non-zero."""

import pytest

import archlab
from archlab.cli import main
from archlab.training.train import train

from .synthetic import learnable_dataset

QUIET = {"log": lambda line: None, "progress": False}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    data = learnable_dataset()
    for name in ("dnn", "cnn"):
        train(name, data=data, runs=out, epochs=1, batch_size=100, **QUIET)
    return out


def _png(path):
    from PIL import Image

    with Image.open(path) as image:
        return image.size


def test_filters_and_figure_path(runs, capsys):
    assert main(["filters", "--runs", str(runs), "--layer", "layer2.0"]) == 0
    out = capsys.readouterr().out
    path = runs / "cnn" / "figures" / "filters-layer2.0.png"
    assert f"wrote {path}" in out
    width, height = _png(path)
    assert width > 300 and height > 300


@pytest.mark.parametrize(
    ("argv", "code", "message"),
    [
        (["explain", "--index", "-1"], 2, "'-1' is not a test-image index 0-9999"),
        (["explain", "--index", "abc"], 2, "'abc' is not a test-image index"),
        (["explain", "--index", "10000"], 2, "is not a test-image index 0-9999"),
        (["explain", "--methods", "saliency,magic"], 2, "unknown method 'magic'"),
        (["filters", "--layer", "fc9"], 2, "no convolution 'fc9'; choose from layer1.0, layer2.0"),
        (["filters", "--model", "dnn"], 2, "has no convolution"),
    ],
)
def test_bad_input(runs, capsys, argv, code, message):
    assert main([*argv, "--runs", str(runs)]) == code
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]


def test_missing_and_foreign_checkpoints(tmp_path, runs, capsys):
    assert main(["filters", "--runs", str(tmp_path)]) == 1
    time = archlab.model_card("cnn").train_time
    assert f"run `archlab train cnn --out {tmp_path}` first ({time} on" in capsys.readouterr().err
    (tmp_path / "cnn").mkdir()
    (tmp_path / "cnn" / "checkpoint.pt").write_bytes((runs / "dnn" / "checkpoint.pt").read_bytes())
    assert main(["filters", "--runs", str(tmp_path)]) == 1
    # no `archlab train cnn` into that folder: train would refuse it (it holds dnn's run)
    assert "holds a run of dnn, not cnn; move it away, or train cnn under another name" in (
        capsys.readouterr().err
    )
    (tmp_path / "cnn" / "checkpoint.pt").write_bytes(b"garbage")
    assert main(["filters", "--runs", str(tmp_path)]) == 1
    assert "not a readable checkpoint" in capsys.readouterr().err


def test_unwritable_output(runs, tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    assert main(["filters", "--runs", str(runs), "--out", str(tmp_path / "file" / "f.png")]) == 1
    assert "cannot write" in capsys.readouterr().err


@pytest.mark.realdata
def test_explain_42_on_a_briefly_trained_cnn(real_data, tmp_path, capsys):
    train("cnn", data=real_data, runs=tmp_path, max_iterations=60, **QUIET)
    data_dir = str(real_data.source.root)
    argv = ["--runs", str(tmp_path), "--data-dir", data_dir]
    assert main(["explain", "--index", "42", *argv]) == 0
    out = capsys.readouterr().out
    assert out.strip().splitlines()[-1].startswith("true: ")
    assert _png(tmp_path / "cnn" / "figures" / "explain-42.png")[0] > 1000
    assert main(["activations", "--index", "42", *argv]) == 0
    assert "layer1  32×14×14" in capsys.readouterr().out
    assert main(["confusion", "--model", "cnn", "--mistakes", "8", *argv]) == 0
    out = capsys.readouterr().out
    assert "most confused pairs" in out and "10,000 images" in out
    assert (tmp_path / "cnn" / "figures" / "mistakes.png").is_file()


@pytest.mark.parametrize(
    "argv",
    [
        ["explain", "--index", "3"],
        ["filters"],
        ["activations", "--index", "3"],
        ["confusion", "cnn"],
        ["compare", "dnn", "cnn"],
    ],
)
def test_every_analysis_takes_a_device(runs, capsys, argv):
    """``--device`` (auto by default) on each command that computes; a device that does not
    exist is one line before any work."""
    assert main([*argv, "--runs", str(runs), "--device", "tpu"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--device 'tpu'" in err[0]
    if argv[0] == "filters":
        assert main([*argv, "--runs", str(runs), "--device", "cpu"]) == 0
