import json
import subprocess
import sys

import pytest

from archlab.cli import main


def test_help_lists_every_command(capsys):
    import importlib

    from archlab.commands import COMMANDS

    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    names = [importlib.import_module(f"archlab.commands.{m}").NAME for m in COMMANDS]
    assert len(names) == 21 and "lr-find" in names
    for command in names:
        assert f"    {command}" in out, command


def test_help_does_not_import_torch():
    code = (
        "import sys; from archlab.cli import main; main(['--help']); "
        "sys.exit(1 if 'torch' in sys.modules else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_shapes_cnn(capsys):
    assert main(["shapes", "cnn"]) == 0
    out = capsys.readouterr().out
    assert "64·6·6 = 2304 matches fc1.in_features" in out


def test_shapes_broken_chain_exits_1_with_one_line(capsys):
    assert main(["shapes", "cnn", "--input", "1,32,32"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert (
        "fc1 (Linear) expects 2304 input features but receives 3136 = 64×7×7 from layer2.3"
        in err[0]
    )


def test_shapes_zero_stride_is_a_diagnosis(capsys):
    assert main(["shapes", "cnn", "--set", "layer2.0.stride=0"]) == 2
    assert "stride must be a whole number ≥ 1" in capsys.readouterr().err


def test_shapes_json(capsys):
    assert main(["shapes", "cnn", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["ok"] is True


def test_params_compares_models(capsys):
    assert main(["params", "dnn", "cnn"]) == 0
    out = capsys.readouterr().out
    assert "1,475,338" in out and "comparison" in out


def test_models_lists_names_and_counts(capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert "dnn" in out and "235,146" in out and "1,475,338" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["shapes", "resnet50"], "unknown model 'resnet50'; registered: cnn, dnn"),
        (["shapes", "cnn", "--input", "1,a,28"], "is not C,H,W"),
        (["shapes", "cnn", "--input", "0,28,28"], "is not C,H,W"),
        (["shapes", "cnn", "--set", "layer9.padding=1"], "no layer 'layer9'"),
        (["shapes", "nope.py:Net"], "no such file"),
        (["params", "resnet50"], "unknown model"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(capsys, argv, message):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert message in err[-1]
    assert "Traceback" not in "\n".join(err)


def test_python_dash_m_works():
    result = subprocess.run(
        [sys.executable, "-m", "archlab", "shapes", "dnn"], capture_output=True, text=True
    )
    assert result.returncode == 0 and "784" in result.stdout


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["train", "dnn", "--epochs", "0"], "--epochs 0"),
        (["train", "dnn", "--batch-size", "0"], "--batch-size 0"),
        (["train", "dnn", "--lr", "-1"], "--lr -1"),
        (["train", "resnet50"], "unknown model 'resnet50'"),
        (["train", "dnn", "--device", "gpu0"], "is not a device"),
    ],
)
def test_train_bad_input(capsys, tmp_path, argv, message):
    assert main([*argv, "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]


def test_train_resume_without_checkpoint(capsys, tmp_path):
    assert main(["train", "cnn", "--resume", "--out", str(tmp_path)]) == 1
    assert "run `archlab train cnn --out" in capsys.readouterr().err


def test_train_unwritable_out(capsys, tmp_path):
    (tmp_path / "f").write_text("x")
    assert main(["train", "dnn", "--out", str(tmp_path / "f")]) == 1
    assert "cannot create the folder" in capsys.readouterr().err
    assert (tmp_path / "f").read_text() == "x"


def test_runs_that_is_a_file_is_not_advised_as_a_training_target(capsys, tmp_path):
    """load_run advised `archlab train cnn --out FILE`, which train refuses."""
    (tmp_path / "f").write_text("x")
    assert main(["filters", "--runs", str(tmp_path / "f")]) == 2
    err = capsys.readouterr().err
    assert "f is a file, not a folder of runs" in err and "archlab train" not in err


def test_data_without_any_source(capsys, tmp_path, monkeypatch):
    import torchvision.datasets

    from archlab.training import data
    from tests.test_data import _Offline

    monkeypatch.setattr(data, "DEBIAN_DIR", tmp_path / "no-debian")
    monkeypatch.setattr(torchvision.datasets, "FashionMNIST", _Offline)  # the network is down
    assert main(["data", "--data-dir", str(tmp_path / "empty")]) == 1
    err = capsys.readouterr().err
    assert "apt-get install dataset-fashion-mnist" in err and "--data-dir" in err


def test_train_help_explains_the_recipes(capsys):
    assert main(["train", "--help"]) == 0
    out = capsys.readouterr().out
    assert "lecture" in out and "careful" in out and "eval mode" in out


@pytest.mark.realdata
def test_data_on_the_real_files(capsys, real_data):
    assert main(["data", "--data-dir", str(real_data.source.root)]) == 0
    out = capsys.readouterr().out
    assert out.count(" ok") == 4 and "6,000" in out and "1,000" in out


# -- issue 28, item 10: the minor cases -----------------------------------------------------

SIGTERM_MID_WRITE = """
import os, pathlib, signal, sys, time

write_as_usual = pathlib.Path.write_bytes


def killed_half_way(self, data):
    write_as_usual(self, data[: len(data) // 2])  # the temporary file, half written
    assert self.name.endswith(".partial") and self.exists()
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(30)


pathlib.Path.write_bytes = killed_half_way
from archlab.cli import main

sys.exit(main(["draw", "cnn", "--out", sys.argv[1]]))
"""


def test_sigterm_during_a_figure_write_leaves_no_partial_and_the_old_figure(tmp_path):
    """SIGTERM ended the process where it stood: ``.NAME.PID.partial`` stayed behind."""
    out = tmp_path / "cnn.png"
    out.write_bytes(b"the previous figure")
    script = tmp_path / "kill.py"
    script.write_text(SIGTERM_MID_WRITE)
    done = subprocess.run(
        [sys.executable, str(script), str(out)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 130, done.stderr
    assert done.stderr.strip() == "archlab: interrupted"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cnn.png", "kill.py"]
    assert out.read_bytes() == b"the previous figure"


def test_terminal_escapes_in_a_name_are_shown_escaped(capsys, tmp_path):
    name = "red\x1b[31m\x1b]0;owned\x07"
    assert main(["draw", "cnn", "--out", str(tmp_path / f"{name}.svg")]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x07" not in out
    assert "red\\x1b[31m\\x1b]0;owned\\x07.svg" in out


@pytest.mark.parametrize("flag", [["--unit", "3,3"], ["--index", "4"]])
def test_field_options_without_field_are_an_error(capsys, flag):
    assert main(["draw", "cnn", *flag]) == 2
    assert "goes with --field" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["explain", "faithfulness"])
def test_empty_methods_is_not_all(capsys, tmp_path, command):
    assert main([command, "--methods", "", "--runs", str(tmp_path)]) == 2
    assert "--methods '': choose from saliency" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv",
    [
        ["train", "dnn", "--out", ""],
        ["confusion", "dnn", "--runs", ""],
        ["data", "--data-dir", " "],
        ["explore", "dnn", "--out", ""],
    ],
)
def test_an_empty_path_is_refused_not_read_as_here(argv, capsys, tmp_path, monkeypatch):
    """--data-dir '' copied the data into the current folder, --out '' trained into it."""
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "give a path (. for the current folder)" in err[0]
    assert not any(tmp_path.iterdir())
