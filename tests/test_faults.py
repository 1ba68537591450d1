"""Fault injection: the real CLI, in subprocesses, over a table of faults.

Every case asserts the rule of issue 12: the expected exit code (0 ok, 1 the model, data
or run is wrong, 2 bad usage, 3 a bug in archlab), no ``Traceback`` on stderr, one line of
explanation, and every good file left byte-identical. The world is tiny and synthetic
(600 training images, one epoch = 6 iterations), so each case costs about one start-up.
"""

from __future__ import annotations

import copy
import errno
import importlib
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time

import pytest
import torch

import archlab
from archlab._shell import command_options, runs_flag
from archlab.commands import COMMANDS as ALL_COMMANDS
from tests.faults import (
    cli,
    copy_run,
    digest,
    drop_file_permission_override,
    env,
    make_data,
    train_in_process,
)

USER_MODELS = """
import sys
import torch
from torch import nn


class Printer(nn.Module):
    def __init__(self):
        super().__init__()
        print("hello from __init__")
        self.fc = nn.Linear(784, 10)

    def forward(self, x):
        print("hello from forward")
        return self.fc(x.flatten(1))


class Raises(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(784, 10)

    def forward(self, x):
        raise ValueError("boom in forward")


class InitFails(nn.Module):
    def __init__(self):
        super().__init__()
        raise RuntimeError("boom in __init__")


class NoParams(nn.Module):
    def forward(self, x):
        return x.flatten(1)[:, :10]


class ShapeText(nn.Module):
    input_shape = "abc"

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(784, 10)

    def forward(self, x):
        return self.fc(x.flatten(1))


class ShapeNone(ShapeText):
    input_shape = None
"""


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Synthetic data, a trained dnn and cnn, user models and broken checkpoints."""
    root = tmp_path_factory.mktemp("faults")
    data = root / "data"
    md5 = make_data(data)
    runs = root / "runs"
    for model in ("dnn", "cnn"):
        train_in_process(model, data, md5, runs)
    (root / "models.py").write_text(USER_MODELS)
    (root / "exits.py").write_text("import sys\nsys.exit(0)\n")
    (root / "a-file").write_text("not a folder")
    bad = root / "bad"
    dnn = torch.load(runs / "dnn" / "checkpoint.pt", weights_only=True)
    cnn = torch.load(runs / "cnn" / "checkpoint.pt", weights_only=True)

    def broken(name: str, base: dict, change) -> None:
        payload = copy.deepcopy(base)
        change(payload)
        (bad / name).mkdir(parents=True)
        torch.save(payload, bad / name / "checkpoint.pt")

    def cnn_as_dnn(p):
        p.update(model="dnn", spec="dnn", finished=True)

    def nan_weights(p):
        p["state_dict"]["fc1.weight"][0, 0] = float("nan")

    def wrong_shape(p):
        p["state_dict"]["fc1.weight"] = torch.zeros(3, 3)

    def missing_key(p):
        del p["state_dict"]["fc1.weight"]

    broken("cnn-as-dnn", cnn, cnn_as_dnn)
    broken("nan", dnn, nan_weights)
    broken("wrong-shape", dnn, wrong_shape)
    broken("missing-key", dnn, missing_key)
    broken("std-0", dnn, lambda p: p.update(normalize=[0.3, 0.0]))
    broken("std-text", dnn, lambda p: p.update(normalize="0.3,0.35"))
    unfinished = {"finished": False}
    broken("no-config", dnn, lambda p: (p.update(unfinished), p.pop("config")))
    broken("future-key", dnn, lambda p: (p.update(unfinished), p["config"].update(future=1)))
    broken("no-optimizer", dnn, lambda p: (p.update(unfinished), p.pop("optimizer")))
    broken("other-model", cnn, lambda p: (cnn_as_dnn(p), p.update(unfinished)))
    broken("newer-format", dnn, lambda p: p.update(format="archlab-checkpoint/2"))
    broken("x$(touch PWNED)", dnn, lambda p: None)  # a run name a paste must not run
    (bad / "not-a-checkpoint").mkdir()
    (bad / "not-a-checkpoint" / "checkpoint.pt").write_bytes(b"PK\x03\x04 half a zip")
    home = tmp_path_factory.mktemp("home")  # caches (matplotlib's) outside the world
    return {"root": root, "data": data, "md5": md5, "runs": runs, "bad": bad, "home": home}


def check(result, code: int, *needles: str, lines: int | None = 1) -> None:
    """The rule: this exit code, no traceback, ``lines`` lines on stderr, each needle."""
    err = result.stderr
    assert result.returncode == code, f"exit {result.returncode}, not {code}:\n{err}"
    assert "Traceback" not in err, err
    if lines is not None:
        assert len(err.strip().splitlines()) == lines, err
    for needle in needles:
        assert needle in err, err


# -- the table ----------------------------------------------------------------------------
# (id, argv with {data} {runs} {bad} {root} placeholders, exit code, text on stderr)
# every subcommand the CLI has (the one list, archlab.commands.COMMANDS), each with the
# arguments it requires: a new command is covered without being listed here again
REQUIRED_ARGS = {"shapes": "cnn", "params": "cnn", "draw": "cnn", "lr-find": "cnn", "map": "cnn"}
NAMES = [importlib.import_module(f"archlab.commands.{m}").NAME for m in ALL_COMMANDS]
COMMANDS = tuple(f"{c} {REQUIRED_ARGS.get(c, '')}".strip() for c in NAMES)
D = ("--data-dir", "{data}")
CASES = [
    # bad usage: every subcommand with an unknown flag (argparse, no torch import)
    *[
        (f"{c}-unknown-flag", [*c.split(), "--no-such-flag"], 2, "unrecognized arguments")
        for c in COMMANDS
    ],
    # draw's write errors are the machine refusing (exit 1), as every command's
    ("draw-unwritable-out", ["draw", "cnn", "--out", "{root}/a-file/d.svg"], 1, "cannot write"),
    # a newer archlab's checkpoint is named as such, not as a foreign file
    (
        "ckpt-newer-format",
        ["filters", "--model", "newer-format", "--runs", "{bad}"],
        1,
        "written by a newer archlab",
    ),
    # advice that names a what-if: only one that train accepts
    (
        "explain-what-if-that-does-not-fit",
        ["explain", "--model", "cnn", "--set", "layer2.0.padding=1", "--runs", "{root}/none"],
        1,
        "cannot be trained",
    ),
    (
        "filters-what-if-not-trained",
        ["filters", "--model", "cnn", "--set", "layer1.0.padding=2", "--runs", "{root}/none"],
        1,
        "no checkpoint",
    ),
    # a missing file: a model file, a run, a data folder that is a file
    ("shapes-missing-model-file", ["shapes", "{root}/nope.py:Net"], 2, "no such file"),
    ("params-missing-model-file", ["params", "{root}/nope.py:Net"], 2, "no such file"),
    ("train-missing-model-file", ["train", "{root}/nope.py:Net", *D], 2, "no such file"),
    ("explain-missing-run", ["explain", "--runs", "{root}/none", *D], 1, "no checkpoint"),
    ("filters-missing-run", ["filters", "--runs", "{root}/none"], 1, "--out {root}/none"),
    ("activations-missing-run", ["activations", "--runs", "{root}/none", *D], 1, "no checkpoint"),
    (
        "confusion-missing-run",
        ["confusion", "dnn", "--runs", "{root}/none", *D],
        1,
        "no checkpoint",
    ),
    (
        "compare-missing-run",
        ["compare", "dnn", "cnn", "--runs", "{root}/none", *D],
        1,
        "no checkpoint",
    ),
    ("data-dir-is-a-file", ["data", "--data-dir", "{root}/a-file"], 2, "is a file, not a folder"),
    ("models-unknown-group", ["models", "--group", "nope"], 2, "unknown group"),
    # an output path that cannot be written (its folder is a file)
    (
        "filters-unwritable-out",
        ["filters", "--runs", "{runs}", "--out", "{root}/a-file/f.png"],
        1,
        "cannot write",
    ),
    (
        "activations-unwritable-out",
        ["activations", "--runs", "{runs}", *D, "--out", "{root}/a-file/a.png"],
        1,
        "cannot write",
    ),
    (
        "explain-unwritable-out",
        [
            "explain",
            "--model",
            "dnn",
            "--methods",
            "saliency",
            "--runs",
            "{runs}",
            *D,
            "--out",
            "{root}/a-file/e.png",
        ],
        1,
        "cannot write",
    ),
    (
        "compare-unwritable-out",
        ["compare", "dnn", "cnn", "--runs", "{runs}", *D, "--out", "{root}/a-file/c.png"],
        1,
        "cannot write",
    ),
    (
        "train-unwritable-out",
        ["train", "dnn", *D, "--out", "{root}/a-file"],
        1,
        "cannot create the folder",
    ),
    (
        "out-suffix-refused",
        ["filters", "--runs", "{runs}", "--out", "{root}/f.jpg"],
        2,
        "the suffix names the format",
    ),
    # quiet successes that are not
    (
        "mistakes-negative",
        ["confusion", "--mistakes", "-5", "--runs", "{runs}"],
        2,
        "give a number from 0 to 100",
    ),
    ("sys-exit-at-import", ["shapes", "{root}/exits.py:Net"], 1, "called sys.exit(0)"),
    (
        "diverging-lr",
        ["train", "dnn", *D, "--out", "{runs}", "--lr", "1e30", "--seed", "7"],
        1,
        "at iteration",
    ),
    # checkpoints that load but are wrong: refused where they are loaded
    (
        "ckpt-cnn-labelled-dnn",
        ["filters", "--model", "cnn-as-dnn", "--runs", "{bad}"],
        1,
        "does not fit the dnn",
    ),
    ("ckpt-nan-weights", ["filters", "--model", "nan", "--runs", "{bad}"], 1, "non-finite weights"),
    (
        "ckpt-wrong-shape",
        ["filters", "--model", "wrong-shape", "--runs", "{bad}"],
        1,
        "does not fit",
    ),
    (
        "ckpt-missing-key",
        ["filters", "--model", "missing-key", "--runs", "{bad}"],
        1,
        "does not fit",
    ),
    (
        "ckpt-damaged",
        ["filters", "--model", "not-a-checkpoint", "--runs", "{bad}"],
        1,
        "not a readable checkpoint",
    ),
    (
        "explain-std-0",
        ["explain", "--model", "std-0", "--methods", "saliency", "--runs", "{bad}", *D],
        1,
        "normalisation",
    ),
    (
        "explain-std-text",
        ["explain", "--model", "std-text", "--methods", "saliency", "--runs", "{bad}", *D],
        1,
        "normalisation",
    ),
    # --resume of checkpoints it cannot continue
    (
        "resume-no-config",
        ["train", "dnn", "--name", "no-config", "--resume", "--out", "{bad}", *D],
        1,
        "no training settings",
    ),
    (
        "resume-future-key",
        ["train", "dnn", "--name", "future-key", "--resume", "--out", "{bad}", *D],
        1,
        "newer archlab",
    ),
    (
        "resume-no-optimizer",
        ["train", "dnn", "--name", "no-optimizer", "--resume", "--out", "{bad}", *D],
        1,
        "cannot be resumed",
    ),
    (
        "resume-other-model",
        ["train", "cnn", "--name", "other-model", "--resume", "--out", "{bad}", *D],
        1,
        "holds a run of dnn, not cnn",
    ),
    (
        "resume-wrong-weights",
        ["train", "dnn", "--name", "other-model", "--resume", "--out", "{bad}", *D],
        1,
        "cannot be resumed",
    ),
    # a failing forward pass in params, as in shapes
    (
        "params-chain-does-not-fit",
        ["params", "cnn", "--input", "1,32,32"],
        1,
        "fc1 (Linear) expects 2304",
    ),
    (
        "params-forward-raises",
        ["params", "{root}/models.py:Raises", "--json"],
        1,
        "boom in forward",
    ),
    ("params-module-without-forward", ["params", "torch.nn:Module", "--json"], 1, "forward"),
    ("params-huge-input", ["params", "cnn", "--input", "1,100000,100000"], 1, "memory"),
    ("shapes-huge-input", ["shapes", "cnn", "--input", "1,100000,100000"], 1, "memory"),
    # user models: failing in __init__ and in forward are both "the model is wrong"
    ("model-init-fails", ["shapes", "{root}/models.py:InitFails"], 1, "boom in __init__"),
    ("model-forward-fails", ["shapes", "{root}/models.py:Raises"], 1, "boom in forward"),
    ("input-shape-text", ["shapes", "{root}/models.py:ShapeText"], 1, "input_shape is 'abc'"),
    (
        "seed-too-large",
        ["train", "dnn", *D, "--out", "{runs}", "--seed", "99999999999999999999"],
        2,
        "--seed",
    ),
    # issue 28: advice keeps the folders, quotes every word, and train accepts it
    (
        "dynamics-none-recorded",
        ["dynamics", "dnn", "--runs", "{runs}"],
        2,
        "`archlab train dnn --out {runs} --watch 50`",
    ),
    (
        "dynamics-name-with-shell-syntax",
        ["dynamics", "x$(touch PWNED)", "--runs", "{bad}"],
        2,
        "`archlab train dnn --name 'x$(touch PWNED)' --out {bad} --watch 50`",
    ),
    (
        "load-run-folder-holds-another-model",
        ["filters", "--model", "cnn", "--name", "cnn-as-dnn", "--runs", "{bad}"],
        1,
        "`archlab train cnn --out {bad}` to train it into {bad}/cnn",
    ),
    (
        "runs-is-a-file",
        ["filters", "--runs", "{root}/a-file"],
        2,
        "is a file, not a folder of runs",
    ),
    # data folders that are wrong
    (
        "data-file-is-a-folder",
        ["data", "--data-dir", "{root}/folder-data"],
        1,
        "is a folder, not the data file",
    ),
]


def _fill(argv, world) -> list[str]:
    return [a.format(**world) for a in argv]


# every `archlab ...` command a message suggested, with the case that provoked it:
# test_every_suggested_command_works runs each one
SUGGESTED: dict[str, str] = {}


def suggestions(stderr: str) -> list[str]:
    """The commands in backquotes that a message asks the user to run."""
    return re.findall(r"`(archlab [^`]*)`", stderr)


@pytest.mark.parametrize(
    ("argv", "code", "needle"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_fault_is_one_line_and_loses_nothing(world, argv, code, needle):
    root = world["root"]
    if "{root}/folder-data" in argv and not (root / "folder-data").exists():
        raw = root / "folder-data" / "FashionMNIST" / "raw"
        raw.mkdir(parents=True)
        for f in world["data"].glob("*-ubyte"):
            (raw / f.name).write_bytes(f.read_bytes())
        (raw / "train-images-idx3-ubyte").unlink()
        (raw / "train-images-idx3-ubyte").mkdir()
    before = digest(root)
    result = cli(_fill(argv, world), environ=env(world["md5"], world["home"]), cwd=root)
    check(result, code, needle.format(**world))
    if code != 0:
        assert digest(root) == before, "a refused command changed files"
    for command in suggestions(result.stderr):
        SUGGESTED.setdefault(command, " ".join(_fill(argv, world)))


# -- every other class, each with its own set-up ------------------------------------------


def test_a_model_that_prints_keeps_json_clean(world):
    result = cli(
        ["params", f"{world['root']}/models.py:Printer", "--json"],
        environ=env(world["md5"]),
        cwd=world["root"],
    )
    check(result, 0, "hello from forward", lines=None)
    assert json.loads(result.stdout)[0]["total_params"] == 7850


def test_a_parameterless_first_model_compares_without_dividing_by_zero(world):
    result = cli(
        ["params", f"{world['root']}/models.py:NoParams", "cnn"],
        environ=env(world["md5"]),
        cwd=world["root"],
    )
    check(result, 0, lines=0)
    assert "comparison" in result.stdout


def test_input_shape_none_means_the_default(world):
    result = cli(
        ["shapes", f"{world['root']}/models.py:ShapeNone"], environ=env(), cwd=world["root"]
    )
    check(result, 0, lines=0)
    assert "input 1×28×28" in result.stdout


@pytest.mark.parametrize("encoding", ["ascii", "cp1252"])
@pytest.mark.parametrize("command", [["shapes", "cnn"], ["models"], ["train", "--help"]])
def test_a_console_that_cannot_encode_gets_ascii(world, encoding, command):
    result = cli(command, environ=env(PYTHONIOENCODING=encoding), cwd=world["root"])
    check(result, 0, lines=0)
    if command == ["shapes", "cnn"]:
        assert "1x28x28" in result.stdout or encoding == "cp1252"  # cp1252 has ×
        assert "floor(" in result.stdout


def test_an_unusable_mplbackend_falls_back_to_agg(world, tmp_path):
    out = tmp_path / "filters.png"
    result = cli(
        ["filters", "--runs", world["runs"], "--out", out],
        environ=env(MPLBACKEND="nonsense"),
        cwd=world["root"],
    )
    check(result, 0, "MPLBACKEND=nonsense", "Agg")
    assert out.read_bytes().startswith(b"\x89PNG")


def test_a_bug_says_so_and_exits_3(world):
    result = cli(["models"], environ=env(ARCHLAB_TEST_BUG="1"), cwd=world["root"])
    check(result, 3, "archlab BUG, please report: ZeroDivisionError")


def test_output_to_a_full_device_is_one_line(world):
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full here")
    with open("/dev/full", "w") as full:
        result = cli(["models"], environ=env(), cwd=world["root"], stdout=full)
    check(result, 1, "no space left on device")


@pytest.mark.parametrize("command", [["data", *D], ["params", "dnn", "cnn"], ["shapes", "cnn"]])
def test_a_closed_pipe_ends_quietly(world, command):
    args = _fill(command, world)
    proc = subprocess.Popen(
        [sys.executable, "-m", "archlab", *args],
        env=env(world["md5"]),
        cwd=world["root"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    proc.stdout.readline()
    proc.stdout.close()  # `| head -1`
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=300) == 0, err
    assert err == "", err


def test_training_into_a_closed_pipe_keeps_training_and_saves(world, tmp_path):
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "archlab",
            "train",
            "dnn",
            "--epochs",
            "2",
            "--out",
            tmp_path,
            "--data-dir",
            world["data"],
        ],
        env=env(world["md5"]),
        cwd=world["root"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    proc.stdout.readline()
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=300) == 0, err
    assert "Traceback" not in err
    ckpt = torch.load(tmp_path / "dnn" / "checkpoint.pt", weights_only=True)
    assert ckpt["finished"] and ckpt["iteration"] == 12


def test_a_second_train_into_the_same_folder_is_refused(world, tmp_path):
    first = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "archlab",
            "train",
            "dnn",
            "--epochs",
            "50",
            "--out",
            tmp_path,
            "--data-dir",
            world["data"],
        ],
        env=env(world["md5"], ARCHLAB_TEST_STEP_SLEEP="0.05"),
        cwd=world["root"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        lock = tmp_path / "dnn" / ".lock"
        deadline = time.monotonic() + 120
        while f"pid {first.pid}" not in (lock.read_text() if lock.exists() else ""):
            assert first.poll() is None and time.monotonic() < deadline, first.stderr.read()
            time.sleep(0.2)
        second = cli(
            ["train", "dnn", "--epochs", "1", "--out", tmp_path, "--data-dir", world["data"]],
            environ=env(world["md5"]),
            cwd=world["root"],
        )
        check(second, 1, f"pid {first.pid}", "is being trained into")
        assert first.poll() is None  # the first run goes on
        first.terminate()  # SIGTERM: it saves, then exits 130
        assert first.wait(timeout=120) == 130
    finally:
        if first.poll() is None:
            first.kill()
    assert torch.load(tmp_path / "dnn" / "checkpoint.pt", weights_only=True)["iteration"] > 0


@pytest.fixture
def no_override(world):
    prefix = drop_file_permission_override()
    if prefix is None:
        pytest.skip("root without setpriv (or CAP_SETPCAP): cannot make a file unreadable")
    return prefix


def test_an_unreadable_checkpoint_is_not_called_damaged(world, tmp_path, no_override):
    run = copy_run(world["runs"] / "dnn", tmp_path / "dnn")
    (run / "checkpoint.pt").chmod(0)
    before = digest(tmp_path)
    try:
        result = cli(
            ["filters", "--model", "dnn", "--runs", tmp_path],
            environ=env(),
            cwd=world["root"],
            prefix=no_override,
        )
    finally:
        (run / "checkpoint.pt").chmod(0o644)
    check(result, 1, "cannot read", "permission denied")
    assert "delete" not in result.stderr and "damaged" not in result.stderr
    assert digest(tmp_path) == before


@pytest.mark.parametrize(
    "command",
    [
        ["filters", "--model", "dnn", "--runs", "{tmp}"],
        ["train", "dnn", "--out", "{tmp}", "--data-dir", "{data}"],
    ],
)
def test_an_unreadable_run_folder_is_one_line(world, tmp_path, no_override, command):
    run = copy_run(world["runs"] / "dnn", tmp_path / "dnn")
    run.chmod(0)
    try:
        result = cli(
            [a.format(tmp=tmp_path, data=world["data"]) for a in command],
            environ=env(world["md5"]),
            cwd=world["root"],
            prefix=no_override,
        )
    finally:
        run.chmod(0o755)
    check(result, 1, "permission denied")


def test_an_unreadable_data_folder_is_one_line(world, tmp_path, no_override):
    raw = tmp_path / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    for f in world["data"].glob("*-ubyte"):
        (raw / f.name).write_bytes(f.read_bytes())
    (raw / "t10k-images-idx3-ubyte").chmod(0)
    try:
        one = cli(
            ["data", "--data-dir", tmp_path],
            environ=env(world["md5"]),
            cwd=world["root"],
            prefix=no_override,
        )
        raw.chmod(0)
        folder = cli(
            ["data", "--data-dir", tmp_path],
            environ=env(world["md5"]),
            cwd=world["root"],
            prefix=no_override,
        )
    finally:
        raw.chmod(0o755)
        (raw / "t10k-images-idx3-ubyte").chmod(0o644)
    check(one, 1, "cannot read", "t10k-images-idx3-ubyte", "permission denied")
    check(folder, 1, "permission denied")


# -- full and read-only disks: a small tmpfs where the machine allows mounting -------------


@pytest.fixture
def mount(tmp_path):
    """Mount a small tmpfs (root only, and only where the container allows it)."""
    mounted = []

    def make(size: str, files: dict | None = None, read_only: bool = False):
        point = tmp_path / f"mnt{len(mounted)}"
        point.mkdir()
        run = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(point)],
            capture_output=True,
        )
        if run.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {run.stderr.decode().strip()}")
        mounted.append(point)
        for name, blob in (files or {}).items():
            (point / name).parent.mkdir(parents=True, exist_ok=True)
            (point / name).write_bytes(blob)
        if read_only:
            subprocess.run(["mount", "-o", "remount,ro", str(point)], check=True)
        return point

    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    yield make
    for point in mounted:
        subprocess.run(["umount", "-l", str(point)], capture_output=True)


def _gz_files(world) -> dict:
    import gzip

    return {f"{f.name}.gz": gzip.compress(f.read_bytes(), 1) for f in world["data"].glob("*-ubyte")}


def test_data_on_a_read_only_file_system_is_one_line(world, mount):
    point = mount("4m", _gz_files(world), read_only=True)
    result = cli(["data", "--data-dir", point], environ=env(world["md5"]), cwd=world["root"])
    check(result, 1, "read-only file system", "--data-dir")


def test_decompressing_onto_a_full_disk_is_one_line(world, mount):
    point = mount("600k", _gz_files(world))
    result = cli(["data", "--data-dir", point], environ=env(world["md5"]), cwd=world["root"])
    check(result, 1, "no space left on device")
    assert not list(point.rglob("*.partial"))


def test_a_full_disk_while_saving_keeps_the_good_checkpoint(world, mount):
    point = mount("4m")  # room for the old dnn run (2.8 MB), not for a second checkpoint
    copy_run(world["runs"] / "dnn", point / "dnn")
    (point / "dnn" / "curves.png").unlink()
    before = (point / "dnn" / "checkpoint.pt").read_bytes()
    result = cli(
        [
            "train",
            "dnn",
            "--out",
            point,
            "--data-dir",
            world["data"],
            "--epochs",
            "1",
            "--seed",
            "3",
        ],
        environ=env(world["md5"]),
        cwd=world["root"],
    )
    check(result, 1, "no space left on device")
    assert "unexpected pos" not in result.stderr
    assert (point / "dnn" / "checkpoint.pt").read_bytes() == before
    assert not list(point.rglob("*.partial"))


# -- ENOSPC injected at every write of a run (in-process: the same code, no mount needed) --


@pytest.mark.parametrize(
    "target", ["checkpoint.prev.pt", "checkpoint.pt", "history.json", "curves.png", ".lock"]
)
def test_no_space_at_any_write_is_one_error_and_keeps_the_good_run(
    world, tmp_path, monkeypatch, target
):
    import archlab
    from archlab import _exclusive as exclusive
    from archlab.training import runs as runs_module
    from archlab.training.data import load_fashion_mnist

    run = copy_run(world["runs"] / "dnn", tmp_path / "dnn")
    good = torch.load(run / "checkpoint.pt", weights_only=True)
    real_replace, real_open = os.replace, open

    def full(path):
        return OSError(errno.ENOSPC, "No space left on device", str(path))

    def replace(src, dst):
        if os.path.basename(dst) == target:
            raise full(dst)
        return real_replace(src, dst)

    def open_lock(path, *args, **kwargs):
        if os.path.basename(path) == target:
            raise full(path)
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(os, "replace", replace)
    monkeypatch.setattr(runs_module, "open", open_lock, raising=False)
    monkeypatch.setattr(exclusive, "open", open_lock, raising=False)  # the lock's opener
    data = load_fashion_mnist(world["data"], checksums=json.loads(world["md5"].read_text()))
    with pytest.raises(archlab.ArchlabError) as caught:
        archlab.train("dnn", data=data, runs=tmp_path, epochs=1, seed=5, log=lambda s: None)
    assert caught.value.exit_code == 1
    assert "no space left on device" in str(caught.value) and "\n" not in str(caught.value)
    monkeypatch.undo()
    now = archlab.training.checkpoint.load_checkpoint(run / "checkpoint.pt")
    if (run / "history.json").exists():  # never another run's history beside it
        history = json.loads((run / "history.json").read_text())
        assert history == json.loads(json.dumps(now["history"]))
    assert now["config"]["seed"] in (good["config"]["seed"], 5)
    assert not list(tmp_path.rglob("*.partial"))


def test_stale_partials_of_dead_processes_are_removed(world, tmp_path):
    from archlab.training.data import load_fashion_mnist

    raw = tmp_path / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    for f in world["data"].glob("*-ubyte"):
        (raw / f.name).write_bytes(f.read_bytes())
    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = raw / f".train-images-idx3-ubyte.{dead.pid}.partial"
    live = raw / f".train-images-idx3-ubyte.{os.getpid()}.partial"
    for partial in (stale, live):
        partial.write_bytes(b"half of 47 MB")
    load_fashion_mnist(tmp_path, checksums=json.loads(world["md5"].read_text()), download=False)
    assert not stale.exists() and live.exists()  # a live writer's file is left alone


# -- issue 24: nothing archlab reads can be turned against its user ------------------------

EVIL_SPECS = {
    # the spec a checkpoint records: shell syntax in every form a paste could run
    "evil": "tools/$(touch PWNED-1)`touch PWNED-2`'; touch PWNED-3; '\"$HOME\".py:Net",
    "evil-newline": "tools/x\n$(touch PWNED-4).py:Net",
}


@pytest.fixture(scope="module")
def evil(world, tmp_path_factory):
    """Run folders whose checkpoints record specs full of shell syntax."""
    runs = tmp_path_factory.mktemp("evil")
    dnn = torch.load(world["runs"] / "dnn" / "checkpoint.pt", weights_only=True)
    for name, spec in EVIL_SPECS.items():
        payload = copy.deepcopy(dnn)
        payload.update(model=name, spec=spec, overrides=["drop.p=0.5"])
        (runs / name).mkdir()
        torch.save(payload, runs / name / "checkpoint.pt")
    return runs


def _run_in_bash(command: str, scratch) -> list[str]:
    """``command`` (an `archlab ...` line as printed) run by bash in ``scratch`` with
    ``archlab`` a function that only prints its words: what the paste would do."""
    script = 'archlab() { printf "%s\\0" "$@"; }\n' + command
    done = subprocess.run(
        ["bash", "-c", script], cwd=scratch, capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in scratch.iterdir()) == [], "the pasted command made files"
    return done.stdout.split("\0")[:-1]


@pytest.mark.parametrize(
    "command",
    [
        ["filters", "--model", "evil", "--runs", "{evil}"],
        ["explore", "evil", "--runs", "{evil}", *D],
        ["compare", "evil", "dnn", "--runs", "{evil}", *D],
        ["attack", "evil", "--runs", "{evil}", *D],
        ["faithfulness", "evil", "--runs", "{evil}", *D],
        ["dynamics", "evil", "--runs", "{evil}"],
        ["train", "evil", "--out", "{evil}", *D],
        ["train", "evil", "--resume", "--out", "{evil}", *D],
    ],
    ids=lambda c: "-".join(c[:3]),
)
def test_a_spec_from_a_checkpoint_is_shown_as_data_never_as_a_command(
    world, evil, tmp_path, command
):
    """A recorded spec is code: it was printed as a command to paste (``archlab train
    'os:system(command=...)'``, ``--model`` to commands that have none)."""
    argv = [a.format(evil=evil, **world) for a in command]
    before = digest(evil)
    result = cli(argv, environ=env(world["md5"], world["home"]), cwd=tmp_path)
    check(result, 2, "imports a model's code only when you name it", "read that code")
    assert digest(evil) == before
    assert repr(EVIL_SPECS["evil"]) in result.stderr  # shown whole, as data
    assert "archlab train" not in result.stderr and "--model" not in result.stderr
    assert "`" not in result.stderr.replace(repr(EVIL_SPECS["evil"]), "")  # nothing to paste


def test_a_spec_no_line_can_carry_is_shown_escaped_on_one_line(world, evil, tmp_path):
    result = cli(
        ["filters", "--model", "evil-newline", "--runs", evil],
        environ=env(world["md5"], world["home"]),
        cwd=tmp_path,
    )
    check(result, 2, repr(EVIL_SPECS["evil-newline"]))


# -- links where a run keeps its own files --------------------------------------------------


@pytest.mark.parametrize(
    "link", [".lock", "checkpoint.pt", "history.json", "curves.png", "checkpoint.prev.pt"]
)
def test_a_link_in_a_run_folder_is_refused_and_its_target_untouched(world, tmp_path, link):
    run = copy_run(world["runs"] / "dnn", tmp_path / "runs" / "dnn")
    target = tmp_path / "outside.bin"
    target.write_bytes(b"a file that is not archlab's")
    (run / link).unlink(missing_ok=True)
    (run / link).symlink_to(target)
    before = digest(run)
    result = cli(
        ["train", "dnn", "--out", tmp_path / "runs", *_fill(D, world)],
        environ=env(world["md5"], world["home"]),
        cwd=world["root"],
    )
    check(result, 1, "is a symbolic link", link)
    assert target.read_bytes() == b"a file that is not archlab's"
    assert digest(run) == before and (run / link).is_symlink()


def test_links_at_a_running_trains_temporary_files_are_refused(world, tmp_path):
    out = tmp_path / "runs"
    target = tmp_path / "outside.bin"
    target.write_bytes(b"a file that is not archlab's")
    proc = subprocess.Popen(
        [sys.executable, "-m", "archlab", "train", "dnn", "--out", out, *_fill(D, world)],
        env=env(world["md5"], world["home"], ARCHLAB_TEST_STEP_SLEEP="0.2"),
        cwd=world["root"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    (out / "dnn").mkdir(parents=True)  # before the run can start: it takes seconds
    for name in ("checkpoint.pt", "history.json", "curves.png"):
        (out / "dnn" / f".{name}.{proc.pid}.partial").symlink_to(target)
    err = proc.stderr.read()
    assert proc.wait(timeout=300) == 1, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert "is a symbolic link" in err and ".partial" in err, err
    assert target.read_bytes() == b"a file that is not archlab's"


def test_a_figure_over_a_link_replaces_the_link_not_its_target(world, tmp_path):
    run = copy_run(world["runs"] / "cnn", tmp_path / "cnn")
    target = tmp_path / "outside.png"
    target.write_bytes(b"a file that is not archlab's")
    (run / "figures").mkdir(exist_ok=True)
    figure = run / "figures" / "filters-layer1.0.png"
    figure.symlink_to(target)
    result = cli(
        ["filters", "--runs", tmp_path], environ=env(home=world["home"]), cwd=world["root"]
    )
    check(result, 0, lines=0)
    assert target.read_bytes() == b"a file that is not archlab's"
    assert not figure.is_symlink() and figure.read_bytes().startswith(b"\x89PNG")


def test_a_run_folders_name_works_as_trains_model(world, tmp_path):
    train_in_process("dnn", world["data"], world["md5"], tmp_path, overrides=["drop.p=0.5"])
    environ = env(world["md5"], world["home"])
    resumed = cli(
        ["train", "dnn+drop.p=0.5", "--resume", "--out", tmp_path, *_fill(D, world)],
        environ=environ,
        cwd=world["root"],
    )
    check(resumed, 0, lines=None)
    assert "already finished" in resumed.stdout + resumed.stderr
    again = cli(
        ["train", "dnn+drop.p=0.5", "--seed", "3", "--out", tmp_path, *_fill(D, world)],
        environ=environ,
        cwd=world["root"],
    )
    check(again, 0, lines=None)
    payload = torch.load(tmp_path / "dnn+drop.p=0.5" / "checkpoint.pt", weights_only=True)
    assert payload["overrides"] == ["drop.p=0.5"] and payload["config"]["seed"] == 3


# -- a run that learned nothing -------------------------------------------------------------


LR_1000 = ("--batch-size", "6", "--lr", "1000")  # 100 iterations an epoch: judged


@pytest.mark.parametrize("epochs", ["1", "2"])  # 2: the run had replaced checkpoint.pt
def test_a_run_that_learned_nothing_fails_and_keeps_the_good_run(world, tmp_path, epochs):
    run = copy_run(world["runs"] / "dnn", tmp_path / "dnn")
    before = digest(run)
    result = cli(  # random labels: training reaches chance level at best
        ["train", "dnn", "--out", tmp_path, "--epochs", epochs, *LR_1000, *_fill(D, world)],
        environ=env(world["md5"], world["home"]),
        cwd=world["root"],
    )
    check(result, 1, "dnn learned nothing", "chance level", "checkpoint.failed.pt", "--lr")
    now = digest(run)
    for name in ("checkpoint.pt", "history.json", "curves.png"):  # where commands look
        assert now[name] == before[name], f"{name} is not the good run's"
    failed = torch.load(run / "checkpoint.failed.pt", weights_only=True)
    assert failed["iteration"] == 100 * int(epochs) and failed["config"]["lr"] == 1000
    history = json.loads((run / "history.failed.json").read_text())
    assert history["config"]["lr"] == 1000 and (run / "curves.failed.png").is_file()
    run = archlab.load_run("dnn", runs=tmp_path)  # as every command loads it
    assert run.config.lr == 0.001


def test_a_first_run_that_learned_nothing_writes_no_checkpoint(world, tmp_path):
    result = cli(
        ["train", "dnn", "--out", tmp_path, "--epochs", "2", *LR_1000, *_fill(D, world)],
        environ=env(world["md5"], world["home"]),
        cwd=world["root"],
    )
    check(result, 1, "learned nothing", "no checkpoint.pt was written")
    names = sorted(p.name for p in (tmp_path / "dnn").iterdir() if p.name != ".lock")
    assert names == ["checkpoint.failed.pt", "curves.failed.png", "history.failed.json"]


# -- messages that name the right thing -----------------------------------------------------


@pytest.mark.parametrize("name", ["curves.png", "history.json"])
def test_a_folder_where_a_run_file_goes_is_named_before_training(world, tmp_path, name):
    run = copy_run(world["runs"] / "dnn", tmp_path / "dnn")
    (run / name).unlink()
    (run / name).mkdir()
    before = digest(tmp_path)
    result = cli(
        ["train", "dnn", "--out", tmp_path, *_fill(D, world)],
        environ=env(world["md5"], world["home"]),
        cwd=world["root"],
    )
    check(result, 1, f"{run / name} is a folder", "nothing was written")
    assert ".partial" not in result.stderr and digest(tmp_path) == before


def test_a_folder_appearing_at_the_end_names_the_file_and_the_safe_checkpoint(world, tmp_path):
    from archlab.errors import ArchlabError
    from archlab.training.runs import write_run_files

    payload = torch.load(world["runs"] / "dnn" / "checkpoint.pt", weights_only=True)
    (tmp_path / "curves.png").mkdir()
    with pytest.raises(ArchlabError) as caught:
        write_run_files(tmp_path, payload, figures=True)
    message = str(caught.value)
    assert f"cannot write {tmp_path / 'curves.png'}" in message and ".partial" not in message
    assert "checkpoint.pt is saved and complete" in message
    assert torch.load(tmp_path / "checkpoint.pt", weights_only=True)["iteration"] > 0


def test_resuming_a_finished_run_writes_nothing(world, tmp_path, no_override):
    run = copy_run(world["runs"] / "dnn", tmp_path / "dnn")
    for folder in (run, tmp_path):
        folder.chmod(0o555)
    try:
        result = cli(
            ["train", "dnn", "--resume", "--out", tmp_path, *_fill(D, world)],
            environ=env(world["md5"], world["home"]),
            cwd=world["root"],
            prefix=no_override,
        )
    finally:
        for folder in (tmp_path, run):
            folder.chmod(0o755)
    check(result, 0, lines=None)
    assert "already finished" in result.stdout + result.stderr


def test_resuming_a_finished_run_on_a_read_only_disk(world, mount):
    files = {
        f"dnn/{p.name}": p.read_bytes()
        for p in (world["runs"] / "dnn").iterdir()
        if p.is_file() and p.name != ".lock"
    }
    point = mount("8m", files, read_only=True)
    result = cli(
        ["train", "dnn", "--resume", "--out", point, *_fill(D, world)],
        environ=env(world["md5"], world["home"]),
        cwd=world["root"],
    )
    check(result, 0, lines=None)


def test_confusion_writes_where_out_says(world, tmp_path):
    D_OUT = ["--out", tmp_path / "c.svg", *_fill(D, world)]
    before = digest(world["runs"])
    result = cli(
        ["confusion", "dnn", "cnn", "--mistakes", "3", "--runs", world["runs"], *D_OUT],
        environ=env(world["md5"], world["home"]),
        cwd=world["root"],
    )
    check(result, 0, lines=0)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "c-cnn-mistakes.svg",
        "c-cnn.svg",
        "c-dnn-mistakes.svg",
        "c-dnn.svg",
    ]
    assert digest(world["runs"]) == before


@pytest.mark.parametrize("command", [["shapes", "cnn"], ["models"]])
def test_the_c_locale_without_utf8_coercion_gets_ascii(world, command):
    locale = {"PYTHONUTF8": "0", "LC_ALL": "C", "LANG": "C", "PYTHONCOERCECLOCALE": "0"}
    result = cli(command, environ=env(**locale), cwd=world["root"], encoding="ascii")
    check(result, 0, lines=0)
    assert "x" in result.stdout and "BUG" not in result.stderr
    if command == ["shapes", "cnn"]:
        assert "1x28x28" in result.stdout and "floor(" in result.stdout


# -- every command archlab suggests works when pasted ---------------------------------------


def _interrupted_what_if(world, runs) -> str:
    """Ctrl-C a `--set` run; the stderr of its exit 130."""
    argv = ["train", "dnn", "--set", "drop.p=0.5", "--epochs", "3", "--out", runs]
    proc = subprocess.Popen(
        [sys.executable, "-m", "archlab", *map(str, argv), *_fill(D, world)],
        env=env(world["md5"], world["home"], ARCHLAB_TEST_STEP_SLEEP="0.1"),
        cwd=world["root"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        for line in proc.stdout:  # the first log line: it is training
            if line.startswith("dnn+drop.p=0.5: recipe"):
                break
        time.sleep(0.5)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    return err


def test_every_suggested_command_works(world, tmp_path):
    """Every `archlab ...` the fault table's messages suggested, and the advice after a
    Ctrl-C of a what-if run, is run as printed (in a copy of the world): it is accepted."""
    if not SUGGESTED:  # run alone: provoke the table's messages here
        for _, argv, _, _ in CASES:
            result = cli(_fill(argv, world), environ=env(world["md5"]), cwd=world["root"])
            for command in suggestions(result.stderr):
                SUGGESTED.setdefault(command, " ".join(_fill(argv, world)))
    root = tmp_path / "world"
    shutil.copytree(world["root"], root, symlinks=True)
    here = str(world["root"])
    suggested = {c.replace(here, str(root)): why for c, why in SUGGESTED.items()}
    for command in suggestions(_interrupted_what_if(world, root / "runs")):
        suggested[command] = "Ctrl-C of train dnn --set drop.p=0.5"
    assert any("--resume" in c for c in suggested), suggested
    assert any(c.startswith("archlab train cnn --set") for c in suggested), suggested
    environ = env(world["md5"], world["home"], ARCHLAB_DATA=str(root / "data"))
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    for command, why in suggested.items():
        # pasted into bash, it is archlab with exactly the printed words, and nothing runs
        words = ["archlab", *_run_in_bash(command, scratch)]
        assert words == shlex.split(command), f"{command} (suggested by {why})"
        asked = why.split()
        for flag in ("--runs", "--out"):  # the runs folder the user named is kept
            if flag in asked and runs_flag(words[1]) in command_options(words[1]):
                folder = asked[asked.index(flag) + 1].replace(here, str(root))
                assert folder in words, f"{command} (suggested by {why}) lost {flag}"
        result = cli(words[1:], environ=environ, cwd=root)
        err = result.stderr
        assert "Traceback" not in err, f"{command} (suggested by {why}):\n{err}"
        expected = (0,) if words[1] == "train" else (0, 1)  # shapes shows a diagnosis: 1
        assert result.returncode in expected, f"{command} (suggested by {why}):\n{err}"
