import itertools
import json

import numpy as np
import pytest
import torch

import archlab
from archlab.errors import ArchlabError
from archlab.training.snapshots import snapshot_iterations
from archlab.training.train import train

from .synthetic import learnable_dataset

QUIET = {"log": lambda line: None, "progress": False}


@pytest.fixture(scope="module")
def tiny():
    return learnable_dataset()


def _run(tiny, out, **kw):
    settings = {"epochs": 2, "batch_size": 50, "log_every": 10, **QUIET, **kw}
    return train("dnn", data=tiny, runs=out, **settings)


def _accuracy(model, images, labels, normalize):
    """The test's own accuracy: scale, normalise, argmax (not archlab's evaluate)."""
    x = images.float() / 255
    if normalize is not None:
        x = (x - normalize[0]) / normalize[1]
    with torch.no_grad():
        predicted = model.eval()(x.unsqueeze(1)).argmax(1)
    return (predicted == labels).double().mean().item()


def test_the_iterations_are_log_spaced_from_the_first_step_to_the_last():
    # where nothing collides, exactly numpy's geometric spacing, rounded
    expected = np.round(np.geomspace(1, 3000, 10)).astype(int).tolist()
    assert snapshot_iterations(10, 3000) == expected == [1, 2, 6, 14, 35, 85, 208, 506, 1232, 3000]
    for count, total in [(2, 2), (5, 5), (10, 12), (10, 100), (50, 60), (7, 3000), (100, 101)]:
        points = snapshot_iterations(count, total)
        assert len(points) == count and points[0] == 1 and points[-1] == total
        assert all(b > a for a, b in itertools.pairwise(points))
        # a repeat only moves up to the step after its predecessor
        geo = np.round(np.geomspace(1, total, count)).astype(int)
        assert all(p >= g for p, g in zip(points, geo, strict=True))
    with pytest.raises(ArchlabError, match=r"snapshots=11: keep 2 to 10, the run's iterations"):
        snapshot_iterations(11, 10)


def test_snapshots_load_and_reproduce_their_recorded_test_accuracy(tiny, tmp_path):
    run = _run(tiny, tmp_path / "a", snapshots=5)
    folder = run.folder / "snapshots"
    index = json.loads((folder / "index.json").read_text())
    assert list(index) == ["snapshots"]
    entries = index["snapshots"]
    assert [e["iteration"] for e in entries] == [1, 2, 5, 11, 24]
    for entry in entries:
        assert set(entry) == {"iteration", "epoch", "test_accuracy", "file"}
        assert entry["file"] == f"it-{entry['iteration']:06d}.pt"
        assert entry["epoch"] == pytest.approx(entry["iteration"] / 12)
        state = torch.load(folder / entry["file"], weights_only=True)["state_dict"]
        assert state.keys() == run.model.state_dict().keys()
    shots = archlab.snapshots(run)
    assert [s.name for s in shots] == ["dnn@1", "dnn@2", "dnn@5", "dnn@11", "dnn@24"]
    images, labels = tiny.test_images[::5], tiny.test_labels[::5]
    for shot, entry in zip(shots, entries, strict=True):
        assert shot.iteration == shot.snapshot == entry["iteration"]
        assert shot.test_accuracy == entry["test_accuracy"]
        assert shot.folder == run.folder
        assert _accuracy(shot.model, images, labels, run.normalize) == pytest.approx(
            entry["test_accuracy"], abs=1e-9
        )
    # the state kept at iteration 5 is the state of a run stopped there, and taking
    # snapshots changes nothing of the training
    stopped = _run(tiny, tmp_path / "b", max_iterations=5)
    s5 = shots[2].model.state_dict()
    assert all(torch.equal(s5[k], v) for k, v in stopped.model.state_dict().items())
    plain = _run(tiny, tmp_path / "c")
    last = shots[-1].model.state_dict()
    assert all(torch.equal(last[k], v) for k, v in plain.model.state_dict().items())
    assert shots[-1].finished and not shots[0].finished
    # by name, as every command finds runs
    assert [s.iteration for s in archlab.snapshots("dnn", runs=tmp_path / "a")][-1] == 24


def test_a_resumed_run_keeps_its_snapshots_consistent(tiny, tmp_path):
    whole = _run(tiny, tmp_path / "whole", snapshots=6)
    _run(tiny, tmp_path / "cut", snapshots=6, max_iterations=7)
    cut = tmp_path / "cut" / "dnn" / "snapshots"
    assert [e["iteration"] for e in archlab.training.snapshots.read_index(cut.parent)] == [
        1,
        2,
        4,
        7,
    ]
    # a snapshot written after the checkpoint (a killed run) is dropped and taken again
    index = json.loads((cut / "index.json").read_text())
    index["snapshots"].append({"iteration": 9, "epoch": 0.75, "test_accuracy": 0.5,
                               "file": "it-000009.pt"})  # fmt: skip
    (cut / "index.json").write_text(json.dumps(index))
    resumed = _run(tiny, tmp_path / "cut", resume=True)
    assert resumed.finished and resumed.config.snapshots == 6
    a, b = archlab.snapshots(whole), archlab.snapshots(resumed)
    assert [(s.iteration, s.test_accuracy) for s in a] == [
        (s.iteration, s.test_accuracy) for s in b
    ]
    assert [s.iteration for s in a] == [1, 2, 4, 7, 13, 24]
    for x, y in zip(a, b, strict=True):
        sx, sy = x.model.state_dict(), y.model.state_dict()
        assert all(torch.equal(sx[k], sy[k]) for k in sx)


def test_a_snapshot_file_deleted_before_a_resume_leaves_the_index(tiny, tmp_path):
    """Fails on the old code: the resumed run's index still named the deleted file, so
    archlab.snapshots (and every --snapshot) refused the whole run afterwards."""
    _run(tiny, tmp_path, snapshots=6, max_iterations=7)
    folder = tmp_path / "dnn" / "snapshots"
    (folder / "it-000002.pt").unlink()
    resumed = _run(tiny, tmp_path, resume=True)
    kept = archlab.snapshots(resumed)
    assert [s.iteration for s in kept] == [1, 4, 7, 13, 24]  # 2 cannot be taken again
    assert sorted(p.name for p in folder.glob("it-*.pt")) == [
        f"it-{i:06d}.pt" for i in (1, 4, 7, 13, 24)
    ]


def test_a_fresh_run_keeps_an_earlier_runs_snapshots_aside(tiny, tmp_path):
    _run(tiny, tmp_path, snapshots=3)
    run = _run(tiny, tmp_path, epochs=1)  # no snapshots: the earlier ones must not pose as its
    assert not (run.folder / "snapshots").exists()
    assert (run.folder / "snapshots.prev" / "index.json").is_file()
    with pytest.raises(ArchlabError, match=r"run dnn kept no snapshots; train it with --snapshots"):
        archlab.snapshots(run)


def test_snapshot_settings_and_choices_are_refused_in_one_line(tiny, tmp_path):
    from archlab.training.snapshots import pick_snapshots

    with pytest.raises(ArchlabError, match=r"^snapshots=1: keep 2 to 10,000") as caught:
        _run(tiny, tmp_path, snapshots=1)
    assert caught.value.cli_message.startswith("--snapshots 1: ")
    with pytest.raises(ArchlabError, match=r"^snapshots=25: keep 2 to 24, the run's") as caught:
        _run(tiny, tmp_path, snapshots=25)
    assert caught.value.cli_message.startswith("--snapshots 25: ")
    run = _run(tiny, tmp_path, snapshots=3)
    assert [s.iteration for s in pick_snapshots(run, "all")] == [1, 5, 24]
    assert [s.name for s in pick_snapshots(run, "5")] == ["dnn@5"]
    assert pick_snapshots(run, None) == [run]
    with pytest.raises(ArchlabError) as caught:
        pick_snapshots(run, "4")
    assert caught.value.cli_message == (
        "--snapshot 4: dnn kept snapshots at iterations 1, 5, 24; pick one, or all"
    )
    (run.folder / "snapshots" / "it-000005.pt").write_bytes(b"not a snapshot")
    with pytest.raises(ArchlabError, match=r"it-000005.pt is not a readable snapshot"):
        archlab.snapshots(run)


@pytest.mark.realdata
def test_the_commands_show_a_snapshot(real_data, tmp_path, capsys):
    from archlab.cli import main

    train("cnn", data=real_data, runs=tmp_path, max_iterations=12, snapshots=3, **QUIET)
    # 12 of 3,000 iterations were run: the snapshot at 1 is kept, 55 is still ahead
    assert [s.iteration for s in archlab.snapshots("cnn", runs=tmp_path)] == [1]
    train("cnn", data=real_data, runs=tmp_path, max_iterations=60, resume=True, **QUIET)
    assert [s.iteration for s in archlab.snapshots("cnn", runs=tmp_path)] == [1, 55]
    common = ["--runs", str(tmp_path), "--data-dir", str(real_data.source.root)]
    assert main(["filters", "--model", "cnn", "--snapshot", "all", "--runs", str(tmp_path)]) == 0
    figures = tmp_path / "cnn" / "figures"
    assert (figures / "filters-layer1.0@1.png").is_file()
    assert (figures / "filters-layer1.0@55.png").is_file()
    assert main(["confusion", "cnn", "--snapshot", "55", *common]) == 0
    assert (figures / "confusion@55.png").is_file()
    assert main(["map", "cnn", "--snapshot", "1", "--images", "300", *common]) == 0
    assert (tmp_path / "cnn" / "map@1.png").is_file()
    capsys.readouterr()
    assert main(["map", "cnn", "--snapshot", "all", "--images", "300", "--json", *common]) == 0
    maps = json.loads(capsys.readouterr().out)
    assert [m["model"] for m in maps] == ["cnn@1", "cnn@55"]
    args = ["--images", "200", "--test-images", "200", "--steps", "3"]
    assert main(["probes", "cnn", "--snapshot", "all", *args, *common]) == 0
    out = capsys.readouterr().out
    assert "cnn@1" in out and "cnn@55" in out
    assert not (tmp_path / "cnn@1").exists() and not (tmp_path / "cnn@55").exists()
    assert main(["confusion", "cnn", "--snapshot", "2", *common]) == 2
    assert "--snapshot 2: cnn kept snapshots at iterations 1, 55" in capsys.readouterr().err


def test_a_run_that_learned_nothing_keeps_its_snapshots_aside_and_the_good_runs_in_place(
    tiny, tmp_path
):
    from dataclasses import replace

    good = _run(tiny, tmp_path, snapshots=3)
    before = (good.folder / "snapshots" / "index.json").read_text()
    g = torch.Generator().manual_seed(1)
    noise = replace(  # random labels: nothing to learn
        tiny,
        train_labels=torch.randint(0, 10, tiny.train_labels.shape, generator=g),
        test_labels=torch.randint(0, 10, tiny.test_labels.shape, generator=g),
    )
    with pytest.raises(ArchlabError, match="learned nothing"):
        train("dnn", data=noise, runs=tmp_path, epochs=2, batch_size=6, lr=1000.0,
              snapshots=4, **QUIET)  # fmt: skip
    assert (good.folder / "snapshots" / "index.json").read_text() == before
    assert (good.folder / "snapshots.failed" / "index.json").is_file()
    assert [s.iteration for s in archlab.snapshots("dnn", runs=tmp_path)] == [1, 5, 24]
