"""archlab/training/checkpoint.py: written atomically, loaded safely (weights_only=True),
and every way a file can be wrong told apart in one line."""

import pickle

import pytest
import torch

from archlab.errors import ArchlabError
from archlab.training import checkpoint as C


def test_an_interrupted_write_leaves_the_previous_checkpoint_intact(tmp_path, monkeypatch):
    path = tmp_path / "checkpoint.pt"
    C.save_checkpoint(
        {"format": C.FORMAT, "model": "dnn", "value": 1, "state_dict": {"w": torch.zeros(1)}}, path
    )

    def broken_save(obj, handle):
        handle.write(b"half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError):
        C.save_checkpoint(
            {"format": C.FORMAT, "model": "dnn", "value": 2, "state_dict": {"w": torch.zeros(1)}},
            path,
        )
    monkeypatch.undo()
    assert C.load_checkpoint(path)["value"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.pt"]


def test_a_pickle_that_runs_code_is_refused_and_runs_nothing(tmp_path):
    marker = tmp_path / "ran"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    path = tmp_path / "checkpoint.pt"
    path.write_bytes(pickle.dumps({"format": C.FORMAT, "state_dict": Evil()}, protocol=2))
    with pytest.raises(ArchlabError, match="not a readable checkpoint"):
        C.load_checkpoint(path)
    assert not marker.exists()


def test_missing_folder_and_damaged_files_are_told_apart(tmp_path):
    with pytest.raises(ArchlabError, match="no checkpoint at"):
        C.load_checkpoint(tmp_path / "none.pt")
    (tmp_path / "dir.pt").mkdir()
    with pytest.raises(ArchlabError, match="is a folder, not a checkpoint"):
        C.load_checkpoint(tmp_path / "dir.pt")
    (tmp_path / "half.pt").write_bytes(b"PK\x03\x04 half a zip")
    with pytest.raises(ArchlabError, match="not a readable checkpoint"):
        C.load_checkpoint(tmp_path / "half.pt")


def test_a_round_trip_keeps_every_tensor(tmp_path):
    payload = {"format": C.FORMAT, "model": "dnn", "state_dict": {"w": torch.arange(6.0)}}
    C.save_checkpoint(payload, tmp_path / "c.pt")
    assert torch.equal(C.load_checkpoint(tmp_path / "c.pt")["state_dict"]["w"], torch.arange(6.0))


def _valid() -> dict:
    return {
        "format": C.FORMAT,
        "model": "dnn",
        "state_dict": {"w": torch.zeros(2)},
        "params": 2,
        "history": {
            "train": [{"iteration": 50, "loss": 0.5}],
            "eval": [
                {"iteration": 50, "train_loss": 0.5, "test_loss": 0.4, "test_accuracy": 0.8},
            ],
            "dynamics": {
                "every": 5,
                "layers": ["fc1", "relu"],
                "types": ["Linear", "ReLU"],
                "points": [{"iteration": 5, "mean": [0.1, 0.2], "grad_norm": [1.0, None]}],
            },
        },
    }


def _damage(payload: dict, path: tuple, value) -> dict:
    where = payload
    for key in path[:-1]:
        where = where[key]
    where[path[-1]] = value
    return payload


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (("params",), "235146", "its 'params' is a str"),
        (("params",), True, "its 'params' is a bool"),
        (("params",), -1, "its 'params' -1 is not a count"),
        (("seconds",), "fast", "its 'seconds' is a str"),
        (("window",), ["x", 1], "'window'"),
        (("history", "eval", 0, "test_accuracy"), "88%", "evaluation has test_accuracy '88%'"),
        (("history", "eval", 0, "test_accuracy"), 1.5, "evaluation has test_accuracy 1.5"),
        (("history", "train", 0, "loss"), None, "training point without numbers"),
        (("history", "train"), "abc", "'train' is not a list of points"),
        (("history", "dynamics"), "x", "dynamics record is not a dict"),
        (("history", "dynamics", "every"), 0, "'every' 0"),
        (("history", "dynamics", "points"), "abc", "'points' is not a list"),
        (("history", "dynamics", "points", 0, "mean"), [0.1], "'mean' does not have one value"),
    ],
)
def test_damaged_fields_are_refused_at_load(tmp_path, path, value, message):
    C.validate_checkpoint(_valid())  # the undamaged one passes
    payload = _damage(_valid(), path, value)
    C.save_checkpoint(payload, tmp_path / "c.pt")
    with pytest.raises(ArchlabError, match=message):
        C.load_checkpoint(tmp_path / "c.pt")


def test_a_foreign_pickle_is_refused_without_torchs_warning(tmp_path, recwarn):
    """A protocol-4 pickle made torch print two lines of warning before the refusal."""
    path = tmp_path / "checkpoint.pt"
    path.write_bytes(pickle.dumps({"a": 1}, protocol=4))
    with pytest.raises(ArchlabError, match="not a readable checkpoint"):
        C.load_checkpoint(path)
    assert [str(w.message) for w in recwarn] == []
