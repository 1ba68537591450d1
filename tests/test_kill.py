"""kill -9 during training, at chosen and at random moments: the run folder always holds a
loadable ``checkpoint.pt``, and ``history.json`` (when there is one) belongs to it.

A fresh run (seed 2, 3 epochs of 6 iterations) is started over an earlier good run
(seed 1) and killed: by the hooks of ``tests/fault_hooks.py`` at a named point (half-way
through a checkpoint's bytes, after its fsync, after the old files were moved aside,
between the checkpoint and the history), or by SIGKILL from outside after a random delay.
"""

from __future__ import annotations

import json
import random
import shutil
import signal
import subprocess
import sys
import time

import pytest
import torch

from archlab.training.checkpoint import load_checkpoint
from tests.faults import cli, env, make_data, train_in_process


@pytest.fixture(scope="module")
def old_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("kill")
    data = root / "data"
    md5 = make_data(data)
    train_in_process("dnn", data, md5, root / "template", seed=1)
    return {"root": root, "data": data, "md5": md5, "template": root / "template" / "dnn"}


def _fresh(old_run, tmp_path):
    runs = tmp_path / "runs"
    shutil.copytree(old_run["template"], runs / "dnn")
    return runs


def _train_args(old_run, runs, *extra):
    return ["train", "dnn", "--epochs", "3", "--seed", "2", "--out", runs,
            "--data-dir", old_run["data"], *extra]  # fmt: skip


def _assert_consistent(folder) -> dict:
    """A loadable checkpoint, and a history.json that is the checkpoint's or a prefix of it
    (the checkpoint is written first), never another run's."""
    ckpt = load_checkpoint(folder / "checkpoint.pt")
    history_file = folder / "history.json"
    if history_file.exists():
        history = json.loads(history_file.read_text())
        mine = json.loads(json.dumps(ckpt["history"]))
        assert history["config"] == mine["config"], "history.json is another run's"
        for key in ("train", "eval"):
            assert history[key] == mine[key][: len(history[key])], "history ahead of checkpoint"
    return ckpt


# point: (the Nth time it is reached, the seed of the checkpoint that must be current)
POINTS = {
    "kept:1": 1,  # the old files moved aside, the new checkpoint not yet written
    "checkpoint-half:1": 1,  # the first checkpoint of the new run half-written
    "checkpoint-synced:2": 2,  # the second written and synced, not renamed
    "history:1": 2,  # the first renamed into place, its history not yet written
    "history:2": 2,  # the second renamed, the history still the first's
}


@pytest.mark.parametrize("point", POINTS)
def test_kill_at_a_chosen_moment(old_run, tmp_path, point):
    runs = _fresh(old_run, tmp_path)
    result = cli(
        _train_args(old_run, runs),
        environ=env(old_run["md5"], ARCHLAB_TEST_KILL=point),
        cwd=tmp_path,
    )
    assert result.returncode == -signal.SIGKILL, result.stderr
    ckpt = _assert_consistent(runs / "dnn")
    assert ckpt["config"]["seed"] == POINTS[point]

    # the next run cleans what the killed one left half-written and completes
    again = cli(_train_args(old_run, runs, "--resume") if POINTS[point] == 2 else
                _train_args(old_run, runs), environ=env(old_run["md5"]), cwd=tmp_path)  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert not list((runs / "dnn").glob(".*.partial"))
    final = _assert_consistent(runs / "dnn")
    assert final["finished"] and final["iteration"] == 18


def test_kill_at_random_moments(old_run, tmp_path):
    runs = _fresh(old_run, tmp_path)
    rng = random.Random(12)
    for _ in range(3):
        proc = subprocess.Popen(
            [sys.executable, "-m", "archlab", *map(str, _train_args(old_run, runs))],
            env=env(old_run["md5"], ARCHLAB_TEST_STEP_SLEEP="0.02"),
            cwd=tmp_path,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        # after the start-up (about 3 s here), while it trains and saves
        time.sleep(rng.uniform(2.0, 6.0))
        proc.kill()
        proc.wait(timeout=60)
        _assert_consistent(runs / "dnn")


@pytest.fixture(scope="module")
def finished_run(old_run):
    """A finished 1-epoch run (6 iterations, seed 1): what a warm restart continues."""
    folder = old_run["template"]
    ckpt = load_checkpoint(folder / "checkpoint.pt")
    assert ckpt["finished"] and ckpt["iteration"] == 6 and ckpt["test_accuracy"] is not None
    return ckpt


def _assert_finished_run_whole(folder, finished) -> None:
    """The finished run is still in the folder, whole: as checkpoint.pt (nothing of the
    continuation written yet) or kept as checkpoint.prev.pt; and the current checkpoint
    records no accuracy its weights did not earn."""
    current = _assert_consistent(folder)
    kept = current if current["finished"] and current["iteration"] == 6 else None
    if kept is None:
        kept = load_checkpoint(folder / "checkpoint.prev.pt")
        if not current["finished"]:  # a continuation cut between evaluations
            assert current["test_accuracy"] is None
    assert kept["finished"] and kept["iteration"] == 6
    assert kept["test_accuracy"] == finished["test_accuracy"]
    assert all(torch.equal(kept["state_dict"][k], v) for k, v in finished["state_dict"].items())


def _warm_restart_args(old_run, runs):
    return ["train", "dnn", "--resume", "--epochs", "3", "--out", runs,
            "--data-dir", old_run["data"]]  # fmt: skip


# a warm restart of 6 → 18 iterations saves at iteration 12 (an epoch's end) and 18
WARM_POINTS = ["kept:1", "checkpoint-half:1", "checkpoint-synced:1", "history:1", "history:2"]


@pytest.mark.parametrize("signal_name", ["SIGKILL", "SIGINT"])
@pytest.mark.parametrize("point", WARM_POINTS)
def test_a_warm_restart_killed_or_interrupted_at_each_save_keeps_the_finished_run(
    old_run, finished_run, tmp_path, point, signal_name
):
    runs = _fresh(old_run, tmp_path)
    result = cli(
        _warm_restart_args(old_run, runs),
        environ=env(old_run["md5"], ARCHLAB_TEST_KILL=point, ARCHLAB_TEST_KILL_SIGNAL=signal_name),
        cwd=tmp_path,
    )
    expected = -signal.SIGKILL if signal_name == "SIGKILL" else 130
    if signal_name == "SIGINT" and point == "history:2":
        expected = 130  # after the loop: the final write is cut, the checkpoint is whole
    assert result.returncode == expected, result.stderr
    _assert_finished_run_whole(runs / "dnn", finished_run)

    # continuing again finishes the run and keeps the finished one aside
    again = cli(_warm_restart_args(old_run, runs), environ=env(old_run["md5"]), cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    final = _assert_consistent(runs / "dnn")
    assert final["finished"] and final["iteration"] == 18
    _assert_finished_run_whole(runs / "dnn", finished_run)
