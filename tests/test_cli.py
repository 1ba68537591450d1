import json
import subprocess
import sys

import pytest

from archlab.cli import main


def test_help_lists_every_command(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for command in ("models", "shapes", "params"):
        assert f"    {command}" in out


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
    assert main(["shapes", "cnn", "--set", "layer2.0.stride=0"]) == 1
    assert "layer2.0 (Conv2d) has kernel 3 and stride 0" in capsys.readouterr().err


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
        (["shapes", "resnet"], "unknown model 'resnet'; known models: cnn, dnn"),
        (["shapes", "cnn", "--input", "1,a,28"], "is not C,H,W"),
        (["shapes", "cnn", "--input", "0,28,28"], "is not C,H,W"),
        (["shapes", "cnn", "--set", "layer9.padding=1"], "no layer 'layer9'"),
        (["shapes", "cnn", "--set", "layer2.0.kernel_size=-3"], "Conv2d rejects it"),
        (["shapes", "nope.py:Net"], "no such file"),
        (["params", "resnet"], "unknown model"),
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
