import math
import os
import signal

import pytest
import torch

import archlab
from archlab.device import pick_device
from archlab.errors import ArchlabError
from archlab.training import checkpoint as C
from archlab.training.predict import evaluate, to_input
from archlab.training.train import train

from .synthetic import learnable_dataset

QUIET = {"log": lambda line: None, "progress": False}


@pytest.fixture(scope="module")
def tiny():
    return learnable_dataset()


def _run(tiny, out, **kw):
    settings = {"epochs": 2, "batch_size": 50, "log_every": 10, **QUIET, **kw}
    return train("dnn", data=tiny, runs=out, **settings)


def _states_equal(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_loss_falls_and_files_are_written(tiny, tmp_path):
    result = _run(tiny, tmp_path, epochs=3)
    evals = result.history["eval"]
    assert evals[-1]["train_loss"] < 0.5 * evals[0]["train_loss"]
    assert evals[-1]["test_loss"] < evals[0]["test_loss"]
    assert result.test_accuracy > 0.5 and result.iteration == 36
    for name in ("checkpoint.pt", "history.json", "curves.png"):
        assert (tmp_path / "dnn" / name).stat().st_size > 0


def test_log_lines_are_the_lectures(tiny, tmp_path):
    lines = []
    _run(tiny, tmp_path, log=lines.append)
    logged = [line for line in lines if line.startswith("Iteration")]
    assert logged[0].startswith("Iteration: 10, Loss: ") and logged[0].endswith("%")
    assert logged[-1].startswith("Iteration: 24, ")  # the last iteration is always logged


def test_checkpoint_round_trips(tiny, tmp_path):
    result = _run(tiny, tmp_path)
    run = archlab.load_run("dnn", runs=tmp_path)
    assert run.finished and run.iteration == 24 and run.config.batch_size == 50
    assert C.load_checkpoint(run.checkpoint)["versions"]["torch"]
    accuracy, _ = evaluate(run.model, tiny.test_images, tiny.test_labels, run.normalize)
    assert accuracy == pytest.approx(result.test_accuracy)
    assert run.normalize == result.normalize and run.normalize is not None


def test_same_seed_same_result(tiny, tmp_path):
    a = _run(tiny, tmp_path / "a")
    b = _run(tiny, tmp_path / "b")
    assert a.test_accuracy == b.test_accuracy
    assert _states_equal(
        C.load_checkpoint(a.checkpoint)["state_dict"], C.load_checkpoint(b.checkpoint)["state_dict"]
    )


@pytest.mark.parametrize("model", ["dnn", "cnn"])
def test_resume_equals_an_uninterrupted_run(tiny, tmp_path, model):
    kw = {"epochs": 2, "batch_size": 50, "log_every": 5, **QUIET}
    whole = train(model, data=tiny, runs=tmp_path / "whole", **kw)
    part = train(model, data=tiny, runs=tmp_path / "part", max_iterations=7, **kw)
    assert not C.load_checkpoint(part.checkpoint)["finished"]
    resumed = train(model, data=tiny, runs=tmp_path / "part", resume=True, **QUIET)
    a = C.load_checkpoint(whole.checkpoint)
    b = C.load_checkpoint(resumed.checkpoint)
    assert _states_equal(a["state_dict"], b["state_dict"])
    assert a["history"]["eval"][-1]["test_accuracy"] == b["history"]["eval"][-1]["test_accuracy"]
    assert [p["loss"] for p in a["history"]["train"]] == [p["loss"] for p in b["history"]["train"]]


def test_a_watched_run_resumed_goes_on_recording_its_dynamics(tiny, tmp_path):
    """An outside test found the dynamics record of a resumed run ending at the
    interruption: a resume without --watch now watches as the run did."""
    kw = {"epochs": 2, "batch_size": 50, "log_every": 5, "watch": 2}
    whole = train("dnn", data=tiny, runs=tmp_path / "whole", **kw, **QUIET)
    train("dnn", data=tiny, runs=tmp_path / "part", max_iterations=7, **kw, **QUIET)
    said = []
    resumed = train("dnn", data=tiny, runs=tmp_path / "part", resume=True, log=said.append)
    points = [
        C.load_checkpoint(r.checkpoint)["history"]["dynamics"]["points"] for r in (whole, resumed)
    ]
    assert [p["iteration"] for p in points[1]] == [p["iteration"] for p in points[0]]
    assert points[1] == points[0]
    assert any("recording the dynamics every 2 iterations" in line for line in said)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_stop_during_the_final_save_waits_for_it(tiny, tmp_path, monkeypatch, signum):
    """A SIGTERM as the last step ended lost the finished run (its save was cut short):
    now the save finishes, the run is whole, and no further model starts (outside test)."""
    from archlab.training.loop import Trainer

    real_save = Trainer.save
    calls = []

    def save(self, payload, **kw):
        calls.append(payload["finished"])
        if payload["finished"]:
            os.kill(os.getpid(), signum)  # handled at once: the flag is set mid-save
        return real_save(self, payload, **kw)

    monkeypatch.setattr(Trainer, "save", save)
    from archlab.training.recipes import TrainSettings
    from archlab.training.train import train_models

    settings = TrainSettings(epochs=1, batch_size=50, progress=False)
    runs = train_models(["dnn", "cnn"], runs=tmp_path, data=tiny, settings=settings, log=str)
    assert [r.name for r in runs] == ["dnn"] and runs[0].interrupted and runs[0].finished
    saved = C.load_checkpoint(tmp_path / "dnn" / "checkpoint.pt")
    assert saved["finished"] and (tmp_path / "dnn" / "history.json").is_file()
    assert not (tmp_path / "cnn").exists()


def test_a_stop_after_the_last_steps_reading_finishes_the_run(tiny, tmp_path, monkeypatch):
    """A SIGTERM as the last step's line was printed saved the run as unfinished, 'continue
    with --resume' (outside test): every step done, the run finishes and says so."""
    from archlab.training.loop import Trainer

    real = Trainer._log_point

    def log_point(self, regular=True):
        real(self, regular)
        if self.progress.iteration == self.total:
            os.kill(os.getpid(), signal.SIGTERM)

    monkeypatch.setattr(Trainer, "_log_point", log_point)
    run = train("dnn", data=tiny, runs=tmp_path, epochs=1, batch_size=50, **QUIET)
    assert run.finished and run.interrupted  # finished, and no further model would start
    assert C.load_checkpoint(tmp_path / "dnn" / "checkpoint.pt")["finished"]


def test_ctrl_c_saves_and_resume_finishes_the_same(tiny, tmp_path):
    def interrupt(line):
        if line.startswith("Iteration: 5,"):
            os.kill(os.getpid(), signal.SIGINT)

    whole = _run(tiny, tmp_path / "whole", log_every=5)
    stopped = _run(tiny, tmp_path / "part", log_every=5, log=interrupt)
    assert stopped.interrupted and stopped.iteration == 5
    resumed = _run(
        tiny, tmp_path / "part", resume=True, epochs=None, batch_size=None, log_every=None
    )
    assert _states_equal(
        C.load_checkpoint(whole.checkpoint)["state_dict"],
        C.load_checkpoint(resumed.checkpoint)["state_dict"],
    )


def test_a_fresh_run_keeps_the_previous_checkpoint(tiny, tmp_path):
    _run(tiny, tmp_path, epochs=1)
    _run(tiny, tmp_path, epochs=1, seed=1)
    assert (tmp_path / "dnn" / "checkpoint.prev.pt").is_file()
    assert C.load_checkpoint(tmp_path / "dnn" / "checkpoint.prev.pt")["config"]["seed"] == 0


@pytest.mark.parametrize(
    ("kw", "message", "flag"),
    [
        ({"epochs": 0}, "epochs=0: train for 1 to 10,000", "--epochs 0: train for"),
        ({"epochs": -2}, "epochs=-2: ", "--epochs -2: "),
        ({"batch_size": 0}, "batch_size=0: use a batch", "--batch-size 0: use a batch"),
        ({"lr": -0.1}, r"lr=-0\.1: the learning rate", r"--lr -0\.1: the learning rate"),
        ({"recipe": "magic"}, "recipe='magic': choose one of careful, lecture", None),
        ({"watch": 0}, "watch=0: record every 1 to 1,000,000", "--watch 0: record every 1 to"),
        ({"watch": -1}, "watch=-1: ", "--watch -1: "),
        ({"watch": 10**9}, "watch=1000000000: ", "--watch 1000000000: "),
        ({"max_iterations": 0}, "max_iterations=0: stop after at least 1", None),
    ],
)
def test_bad_settings(tiny, tmp_path, kw, message, flag):
    """The library names its arguments; the CLI says the same with its flags."""
    with pytest.raises(ArchlabError, match=message) as caught:
        _run(tiny, tmp_path, **kw)
    assert "--" not in str(caught.value)
    assert not (tmp_path / "dnn").exists()
    if flag is not None:
        from archlab.cli import main

        args = [str(a) for k, v in kw.items() for a in (f"--{k.replace('_', '-')}", v)]
        assert main(["train", "dnn", "--out", str(tmp_path), *args]) == 2
        assert not (tmp_path / "dnn").exists()
        assert caught.value.cli_message.startswith(flag.replace("\\", ""))


def test_unwritable_out(tiny, tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(ArchlabError, match="cannot create the folder"):
        _run(tiny, tmp_path / "file")


def test_resume_problems(tiny, tmp_path):
    with pytest.raises(ArchlabError, match=r"no checkpoint at .*run `archlab train dnn --out "):
        _run(tiny, tmp_path, resume=True)
    (tmp_path / "dnn").mkdir()
    (tmp_path / "dnn" / "checkpoint.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ArchlabError, match="not a readable checkpoint"):
        _run(tiny, tmp_path, resume=True)
    _run(tiny, tmp_path / "other", epochs=1)
    os.replace(tmp_path / "other" / "dnn" / "checkpoint.pt", tmp_path / "dnn" / "checkpoint.pt")
    (tmp_path / "cnn").mkdir()
    (tmp_path / "cnn" / "checkpoint.pt").write_bytes(
        (tmp_path / "dnn" / "checkpoint.pt").read_bytes()
    )
    with pytest.raises(
        ArchlabError, match=r"cnn holds a run of dnn, not cnn; give another name= \(or runs=\)"
    ):
        train("cnn", data=tiny, runs=tmp_path, resume=True, **QUIET)
    with pytest.raises(ArchlabError, match=r"trained with lr=0\.001, not 0\.5"):
        _run(tiny, tmp_path, resume=True, lr=0.5, epochs=None, batch_size=None, log_every=None)


def test_lecture_recipe_scales_to_unit_range_and_careful_normalises():
    images = torch.tensor([[[0, 255]]], dtype=torch.uint8)
    assert to_input(images).flatten().tolist() == [0.0, 1.0]
    x = to_input(images, (0.5, 0.25)).flatten()
    assert x.tolist() == pytest.approx([-2.0, 2.0])
    assert to_input(images, None, channels_last=True).shape == (1, 1, 1, 2)


@pytest.mark.parametrize(
    ("cuda", "mps", "expected"),
    [(True, True, "cuda"), (True, False, "cuda"), (False, True, "mps"), (False, False, "cpu")],
)
def test_auto_picks_cuda_then_mps_then_cpu(monkeypatch, cuda, mps, expected):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: mps)
    assert pick_device("auto").type == expected


def test_device_choice(monkeypatch):
    assert pick_device("cpu").type == "cpu"
    with pytest.raises(ArchlabError, match="is not a device"):
        pick_device("gpu0")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ArchlabError, match="no CUDA GPU"):
        pick_device("cuda")


@pytest.mark.realdata
def test_a_short_real_run_learns(real_data, tmp_path):
    result = train("dnn", data=real_data, runs=tmp_path, max_iterations=300, log_every=300, **QUIET)
    assert result.iteration == 300
    assert result.test_accuracy > 0.75


def test_resume_refuses_other_data(tmp_path):
    from pathlib import Path

    from archlab.training.data import DataSource

    data = learnable_dataset()
    data.source = DataSource(Path("x"), "test", md5={"train-images-idx3-ubyte": "aaa"})
    _run(data, tmp_path, max_iterations=3)
    data.source = DataSource(Path("x"), "test", md5={"train-images-idx3-ubyte": "bbb"})
    with pytest.raises(ArchlabError, match="trained on other data"):
        _run(data, tmp_path, resume=True, epochs=None, batch_size=None, log_every=None)


def test_resume_of_a_finished_run_checks_its_weights(tiny, tmp_path):
    result = _run(tiny, tmp_path, epochs=1)
    payload = torch.load(result.checkpoint, weights_only=True)
    payload["state_dict"]["fc1.weight"] = torch.zeros(3, 3)  # loadable, but not a dnn's
    torch.save(payload, result.checkpoint)
    with pytest.raises(ArchlabError, match="does not fit the dnn architecture"):
        train("dnn", data=tiny, runs=tmp_path, resume=True, **QUIET)


def _record_lrs(monkeypatch) -> list[float]:
    """The learning rate of every optimiser step taken, read from the optimiser itself."""
    from archlab.training._adam import Adam

    used = []
    step = Adam.step

    def recording(self, *args, **kwargs):
        used.append(float(self.param_groups[0]["lr"]))
        return step(self, *args, **kwargs)

    monkeypatch.setattr(Adam, "step", recording)
    return used


def test_the_optimiser_follows_the_cosine(tiny, tmp_path, monkeypatch):
    used = _record_lrs(monkeypatch)
    _run(tiny, tmp_path, epochs=2)  # 24 steps
    expected = [1e-3 * 0.5 * (1 + math.cos(math.pi * i / 24)) for i in range(24)]
    assert used == pytest.approx(expected, rel=1e-12, abs=1e-15)
    used.clear()
    _run(tiny, tmp_path / "lecture", epochs=1, recipe="lecture")
    assert used == [1e-3] * 12  # the lecture's constant rate


def test_a_finished_run_continues_for_more_epochs_with_a_warm_restart(tiny, tmp_path, monkeypatch):
    first = _run(tiny, tmp_path, epochs=1)
    assert first.finished and first.iteration == 12 and first.config.restart == 0
    used = _record_lrs(monkeypatch)
    more = _run(tiny, tmp_path, resume=True, epochs=3, batch_size=None, log_every=None)
    assert more.finished and more.iteration == 36 and more.epochs == 3
    assert more.config.restart == 12  # recorded in the run's settings
    # the added epochs start again at the recipe's rate and decay to 0 over 24 iterations
    expected = [1e-3 * 0.5 * (1 + math.cos(math.pi * i / 24)) for i in range(24)]
    assert used == pytest.approx(expected, rel=1e-12, abs=1e-15)
    assert [p["iteration"] for p in more.history["eval"]][:2] == [10, 12]
    # the finished run was kept aside before the continuation wrote anything
    kept = C.load_checkpoint(tmp_path / "dnn" / "checkpoint.prev.pt")
    assert kept["finished"] and kept["iteration"] == 12
    assert kept["test_accuracy"] == first.test_accuracy
    # the same again is "already finished"; fewer epochs are refused
    again = _run(tiny, tmp_path, resume=True, epochs=3, batch_size=None, log_every=None)
    assert again.iteration == 36 and not again.files
    with pytest.raises(ArchlabError, match="trained with epochs=3, not 2"):
        _run(tiny, tmp_path, resume=True, epochs=2, batch_size=None, log_every=None)


def _interrupt_at(monkeypatch, iteration: int) -> None:
    """Ctrl-C (SIGINT) right after step ``iteration``, away from any evaluation."""
    from archlab.training.loop import Trainer

    step = Trainer._step

    def stepping(self, idx, loss_fn):
        step(self, idx, loss_fn)
        if self.progress.iteration == iteration:
            os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(Trainer, "_step", stepping)


def test_ctrl_c_in_a_warm_restart_keeps_the_finished_run_and_no_stale_accuracy(
    tiny, tmp_path, monkeypatch
):
    first = _run(tiny, tmp_path, epochs=1, log_every=12)
    _interrupt_at(monkeypatch, 14)
    stopped = _run(tiny, tmp_path, resume=True, epochs=3, batch_size=None, log_every=None)
    assert stopped.interrupted and stopped.iteration == 14
    current = C.load_checkpoint(tmp_path / "dnn" / "checkpoint.pt")
    assert not current["finished"] and current["iteration"] == 14
    # evaluated at 12, two steps ago: the checkpoint claims no accuracy for these weights
    assert current["test_accuracy"] is None and stopped.test_accuracy is None
    kept = C.load_checkpoint(tmp_path / "dnn" / "checkpoint.prev.pt")
    assert kept["finished"] and kept["iteration"] == 12
    assert kept["test_accuracy"] == first.test_accuracy
    assert _states_equal(kept["state_dict"], first.model.state_dict())
    # the continuation resumes and finishes; the finished run stays kept
    monkeypatch.undo()
    done = _run(tiny, tmp_path, resume=True, epochs=3, batch_size=None, log_every=None)
    assert done.finished and done.iteration == 36 and done.test_accuracy is not None
    assert C.load_checkpoint(tmp_path / "dnn" / "checkpoint.prev.pt")["iteration"] == 12


def test_an_epoch_end_checkpoint_records_no_accuracy_its_weights_did_not_earn(
    tiny, tmp_path, monkeypatch
):
    _interrupt_at(monkeypatch, 13)
    stopped = _run(tiny, tmp_path, log_every=5)  # evaluated at 5, 10: not at 12 or 13
    saved = C.load_checkpoint(stopped.checkpoint)
    assert saved["iteration"] == 13 and saved["test_accuracy"] is None
    assert [p["iteration"] for p in saved["history"]["eval"]] == [5, 10]


def test_reuse_returns_the_finished_run_without_training(tiny, tmp_path):
    first = _run(tiny, tmp_path, epochs=1)
    lines = []
    again = _run(tiny, tmp_path, epochs=1, reuse=True, log=lines.append)
    assert not lines and not again.files  # nothing trained, nothing written
    assert again.test_accuracy == first.test_accuracy and again.normalize == first.normalize
    assert _states_equal(again.model.state_dict(), first.model.state_dict())
    other = _run(tiny, tmp_path, epochs=1, seed=3, reuse=True, log=lines.append)
    assert lines and other.config.seed == 3  # other settings: trained afresh


def test_a_run_is_a_report(tiny, tmp_path):
    run = _run(tiny, tmp_path, epochs=1)
    text = str(run)
    assert "1 epoch, careful" in text and f"{run.params:,}" in text
    assert repr(run).startswith("<archlab.Run dnn: ")
    data = run.to_dict()
    assert data["config"]["epochs"] == 1 and data["history"]["eval"]
    fig = run.plot()
    assert [ax.get_title() for ax in fig.axes] == ["dnn: loss", "dnn: test accuracy"]
    assert run.save(tmp_path / "run.json").read_text().startswith("{")
    assert "<img" in run._repr_html_() or "<table>" in run._repr_html_()


_NAN_AT_15 = """
import torch
from torch import nn


class NanAt15(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(784, 10)
        self.calls = 0

    def forward(self, x):
        out = self.fc(x.flatten(1))
        if self.training and x.shape[0] == 50:
            self.calls += 1
            if self.calls == 15:
                out = out * float("nan")
        return out
"""


def test_a_diverging_loss_names_its_iteration_and_saves_nothing_after_it(tiny, tmp_path):
    """Losses are read from the device in groups, not per step: the error must still
    name the first bad iteration, and no checkpoint may hold a state after it."""
    (tmp_path / "nan15.py").write_text(_NAN_AT_15)
    spec = f"{tmp_path / 'nan15.py'}:NanAt15"
    with pytest.raises(ArchlabError, match=r"became nan at iteration 15 \(training diverged\)"):
        train(spec, data=tiny, runs=tmp_path / "runs", epochs=3, batch_size=50, **QUIET)
    saved = C.load_checkpoint(next((tmp_path / "runs").glob("*/checkpoint.pt")))
    assert saved["iteration"] == 12  # the first epoch's end
    assert all(torch.isfinite(t).all() for t in saved["state_dict"].values())


def test_a_run_diverging_before_its_first_save_says_nothing_was_saved(tiny, tmp_path):
    """It named a checkpoint that did not exist as 'the last good state' (outside test)."""
    with pytest.raises(ArchlabError, match=r"nothing was saved \(it diverged before its first"):
        train("dnn", data=tiny, runs=tmp_path, lr=1e300, epochs=1, batch_size=50, **QUIET)
    assert not (tmp_path / "dnn" / "checkpoint.pt").exists()


def test_the_determinism_mode_is_recorded_and_changes_nothing_on_the_cpu(tiny, tmp_path):
    kw = {"epochs": 2, "batch_size": 50, "log_every": 10, **QUIET}
    exact = train("dnn", data=tiny, runs=tmp_path / "a", **kw)
    fast = train("dnn", data=tiny, runs=tmp_path / "b", deterministic=False, **kw)
    a = C.load_checkpoint(exact.folder / "checkpoint.pt")
    b = C.load_checkpoint(fast.folder / "checkpoint.pt")
    assert a["config"]["deterministic"] is True and b["config"]["deterministic"] is False
    assert _states_equal(a["state_dict"], b["state_dict"])
    assert "cuda" not in a["history"]  # what a CUDA run records of its mode and its step
    with pytest.raises(ArchlabError, match="trained with deterministic=True, not False"):
        train("dnn", data=tiny, runs=tmp_path / "a", resume=True, deterministic=False, **QUIET)


def test_a_run_that_learns_is_judged_and_passes(tiny, tmp_path):
    # 100 iterations at batch 6: long enough to be judged (train.JUDGED_AFTER)
    result = _run(tiny, tmp_path, epochs=1, batch_size=6, log_every=50)
    assert result.iteration == 100 and result.test_accuracy > 0.5
    assert sorted(p.name for p in (tmp_path / "dnn").iterdir() if p.name != ".lock") == [
        "checkpoint.pt",
        "curves.png",
        "history.json",
    ]


def test_learned_nothing_reasons():
    from archlab.training.loop import _Progress
    from archlab.training.train import _learned_nothing

    def progress(iteration, accuracy, losses):
        return _Progress(
            iteration=iteration,
            test_accuracy=accuracy,
            history={
                "train": [{"iteration": 50 * (i + 1), "loss": v} for i, v in enumerate(losses)]
            },
        )

    assert "chance level" in _learned_nothing(progress(600, 0.1032, [2.3, 2.2]))
    assert "above its start" in _learned_nothing(progress(600, 0.6, [1.0, 0.5, 1.2]))
    assert _learned_nothing(progress(600, 0.6, [1.0, 0.5, 0.9])) is None
    assert _learned_nothing(progress(99, 0.1, [2.3])) is None  # too short to judge


def test_each_model_is_built_and_traced_once_and_trains_as_checked(tiny, tmp_path, monkeypatch):
    from archlab.models.spec import ModelSpec
    from archlab.trace import shapes
    from archlab.training.recipes import TrainSettings
    from archlab.training.train import train_models

    traced, built = [], []
    real_trace, real_build = shapes.trace_shapes, ModelSpec.build
    monkeypatch.setattr(
        shapes, "trace_shapes", lambda m, *a, **k: traced.append(m) or real_trace(m, *a, **k)
    )
    monkeypatch.setattr(
        ModelSpec,
        "build",
        lambda self, *a, **k: built.append(real_build(self, *a, **k)) or built[-1],
    )
    settings = TrainSettings(epochs=1, batch_size=50, log_every=12, progress=False)
    runs = train_models(["dnn", "cnn"], runs=tmp_path, data=tiny, settings=settings, log=len)
    assert len(traced) == 2 and len(built) == 2  # each model: built once, checked once
    assert [r.model for r in runs] == built == traced  # the checked model is the one trained
    train("dnn", runs=tmp_path / "again", data=tiny, epochs=1, batch_size=50, **QUIET)
    assert len(traced) == 3 and len(built) == 3  # a later call checks afresh


def test_reuse_returns_a_run_cut_short_at_max_iterations(tiny, tmp_path):
    first = _run(tiny, tmp_path, max_iterations=5)
    assert first.iteration == 5 and not first.finished
    lines = []
    again = _run(tiny, tmp_path, max_iterations=5, reuse=True, log=lines.append)
    assert not lines and not again.files  # the run cut there is reused, not retrained
    assert _states_equal(again.model.state_dict(), first.model.state_dict())
    longer = _run(tiny, tmp_path, max_iterations=7, reuse=True, log=lines.append)
    assert lines and longer.iteration == 7  # asked for more: trained


def test_resume_of_a_what_if_that_does_not_fit_advises_no_train_that_fails(tiny, tmp_path):
    from archlab.cli import main

    with pytest.raises(ArchlabError, match="cannot be trained on 1×28×28") as caught:
        train("cnn", ["layer2.0.padding=1"], data=tiny, runs=tmp_path, resume=True, **QUIET)
    assert "archlab train" not in str(caught.value) and "--set" not in str(caught.value)
    assert "--set fc1.in_features=3136" in caught.value.cli_message
    assert (
        main(["train", "cnn", "--set", "layer2.0.padding=1", "--resume", "--out", str(tmp_path)])
        == 1
    )


@pytest.mark.parametrize(
    ("field", "value"),
    [("params", "1,000"), ("history.eval.-1.test_accuracy", "88%"), ("history.dynamics", [1])],
)
def test_a_damaged_checkpoint_is_refused_before_a_warm_restart_trains(tiny, tmp_path, field, value):
    first = _run(tiny, tmp_path, epochs=1)
    payload = torch.load(first.checkpoint, weights_only=True)
    *path, last = field.split(".")
    where = payload
    for key in path:
        where = where[int(key)] if key.lstrip("-").isdigit() else where[key]
    where[int(last) if last.lstrip("-").isdigit() else last] = value
    torch.save(payload, first.checkpoint)
    before = first.checkpoint.read_bytes()
    lines = []
    with pytest.raises(ArchlabError, match=r"is invalid: .*; delete it or train again"):
        _run(
            tiny, tmp_path, resume=True, epochs=3, batch_size=None, log_every=None, log=lines.append
        )
    assert not lines and first.checkpoint.read_bytes() == before
    with pytest.raises(ArchlabError, match="is invalid"):
        archlab.load_run("dnn", runs=tmp_path)


def test_a_held_out_class_is_never_trained_on_nor_tested_and_is_said(tiny, tmp_path):
    lines = []
    run = _run(tiny, tmp_path, hold_out="shirt", log=lines.append)
    kept = tiny.train_labels != 6
    # the run's own folder and record; an epoch is the nine kept classes' images only
    assert run.name == "dnn-no-Shirt" and run.folder == tmp_path / "dnn-no-Shirt"
    assert run.config.held_out == 6
    assert run.iteration == 2 * math.ceil(int(kept.sum()) / 50)
    # inputs normalised by the kept images' pixels, computed here directly
    pixels = tiny.train_images[kept].double() / 255
    assert run.normalize == pytest.approx((float(pixels.mean()), float(pixels.std())), abs=1e-6)
    # its test accuracy is over the nine classes' test images (a direct argmax here)
    test = tiny.test_labels != 6
    x = (tiny.test_images[test].float() / 255 - run.normalize[0]) / run.normalize[1]
    with torch.no_grad():
        predicted = run.model.eval()(x.unsqueeze(1)).argmax(1)
    expected = (predicted == tiny.test_labels[test]).double().mean().item()
    assert run.test_accuracy == pytest.approx(expected, abs=1e-6)
    assert any("class 6 (Shirt) held out" in line for line in lines)
    assert "(9 classes, Shirt held out)" in str(run)
    from archlab.training.table import TrainSummary

    row = TrainSummary([run])._rows()[0]  # nine classes: no lecture number beside it
    assert row[-2].endswith("% (9 classes, Shirt held out)") and row[-1] == "-"
    assert archlab.load_run("dnn-no-Shirt", runs=tmp_path).config.held_out == 6
    # ood takes the class from the run: its Shirts become the held-out set
    report = archlab.ood([run], sets=["flip"], resamples=0, data=tiny)
    assert report.sets == ["flip", "held-out"]
    assert report.set_sizes["held-out"] == int((tiny.test_labels == 6).sum())


def test_hold_out_by_number_name_or_folder_name_and_resume(tiny, tmp_path):
    from archlab.training.recipes import TrainConfig, held_out_class

    assert [held_out_class(v) for v in (0, "9", "T-shirt/top", "t-shirt-top", "Ankle boot")] == [
        0,
        9,
        0,
        0,
        9,
    ]
    _run(tiny, tmp_path, hold_out=0, max_iterations=5)
    assert archlab.load_run("dnn-no-T-shirt-top", runs=tmp_path).iteration == 5
    # the resume finds the run by the same words, and keeps the class it recorded
    run = _run(tiny, tmp_path, hold_out="T-shirt/top", resume=True)
    assert run.finished and run.name == "dnn-no-T-shirt-top" and run.config.held_out == 0
    with pytest.raises(ArchlabError, match="trained with held_out=0, not 3"):
        _run(tiny, tmp_path, name="dnn-no-T-shirt-top", hold_out=3, resume=True)
    # a checkpoint written before hold-out existed loads as a run of all ten classes
    assert TrainConfig.from_dict({"model": "cnn", "epochs": 5}).held_out is None


@pytest.mark.parametrize("value", [10, -1, "Shrt", True, 2.5])
def test_a_bad_hold_out_is_one_line_for_python_and_the_command_line(tiny, tmp_path, value):
    with pytest.raises(ArchlabError, match=r"^hold_out=") as caught:
        _run(tiny, tmp_path, hold_out=value)
    assert caught.value.cli_message.startswith("--hold-out ")
    assert not (tmp_path / "dnn").exists() and not list(tmp_path.glob("dnn-no-*"))


@pytest.mark.realdata
def test_every_command_accepts_a_held_out_run(real_data, tmp_path, capsys):
    from archlab.cli import main

    train("dnn", data=real_data, runs=tmp_path, hold_out=6, max_iterations=30, **QUIET)
    data_dir = ["--data-dir", str(real_data.source.root)]
    runs = ["--runs", str(tmp_path)]
    assert main(["confusion", "dnn-no-Shirt", *runs, *data_dir]) == 0
    assert main(["calibration", "dnn-no-Shirt", *runs, *data_dir]) == 0
    assert main(["ood", "dnn-no-Shirt", "--sets", "flip", *runs, *data_dir]) == 0
    assert "held-out" in capsys.readouterr().out
