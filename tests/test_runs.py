"""archlab/training/runs.py and run.py: which folder a model's run lives in, how its
files are written, and the trained run as one object."""

import importlib
import inspect

import pytest

import archlab
from archlab.errors import ArchlabError
from archlab.training.runs import find_run, write_run_files


def test_a_spec_and_its_what_ifs_name_the_folder(tmp_path):
    ref = find_run("cnn", tmp_path, ["layer2.0.padding=1"])
    assert ref.folder == tmp_path / "cnn+layer2.0.padding=1"
    assert ref.checkpoint == ref.folder / "checkpoint.pt"
    assert find_run("cnn", tmp_path, name="mine").folder == tmp_path / "mine"


def test_a_run_folders_name_is_a_model_wherever_a_spec_is(tmp_path):
    (tmp_path / "cnn+layer2.0.padding=1").mkdir()
    ref = find_run("cnn+layer2.0.padding=1", tmp_path)
    assert ref.spec is None and ref.name == "cnn+layer2.0.padding=1"


@pytest.mark.parametrize("name", ["..", "a/b", "."])
def test_a_run_name_cannot_leave_the_runs_folder(tmp_path, name):
    with pytest.raises(ArchlabError, match="a run name is one folder name") as caught:
        find_run("cnn", tmp_path, name=name)
    assert str(caught.value).startswith(f"name={name!r}: ")  # Python's words
    assert caught.value.cli_message.startswith(f"--name {name!r}: ")  # the CLI's


def test_a_run_folders_what_ifs_are_its_own(tmp_path):
    (tmp_path / "mine").mkdir()
    with pytest.raises(ArchlabError, match=r"so drop the overrides$") as caught:
        find_run("mine", tmp_path, ["fc1.out_features=5"])
    assert caught.value.cli_message.endswith("so drop --set")


def test_the_training_export_table_resolves():
    import archlab.training as T
    import archlab.training.train  # noqa: F401  (binds the submodule on the package)
    from archlab.training.run import Run, load_run

    # the public door wraps load_run in the argument check; the function behind it is run.py's
    assert T.Run is Run and inspect.unwrap(T.load_run) is load_run
    for name in T.__all__:  # each name is what its export table says, not a submodule
        found = inspect.unwrap(getattr(T, name))
        assert found is getattr(importlib.import_module(T._EXPORTS[name]), name)


def test_history_and_curves_are_written_beside_the_checkpoint(tmp_path):
    history = {
        "model": "dnn",
        "train": [{"iteration": 50, "loss": 1.0}],
        "eval": [{"iteration": 50, "test_accuracy": 0.5, "test_loss": 1.2}],
    }
    payload = {"format": 1, "history": history, "state_dict": {}}
    written = write_run_files(tmp_path / "run", payload)
    assert [p.name for p in written] == ["checkpoint.pt", "history.json", "curves.png"]
    assert not list((tmp_path / "run").glob(".*partial"))


def test_load_run_without_a_run_says_how_to_train_it(tmp_path):
    with pytest.raises(ArchlabError, match=r"no checkpoint at .*archlab train dnn"):
        archlab.load_run("dnn", runs=tmp_path)


def test_an_analysis_needs_a_run_not_a_bare_module():
    from archlab.training.run import as_run

    with pytest.raises(ArchlabError, match="needs a trained run"):
        as_run(archlab.create_model("cnn"))
