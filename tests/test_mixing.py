"""Models that mix the images of a batch (archlab/trace/_mixing.py), against a direct check.

The reference is written here, apart from archlab's: change each image of a batch in turn
and see whether any other image's output moves. archlab must flag exactly the models the
reference flags, over the mixing corpus, the textbook and good corpora, user models and
the registry, and name where the images first meet.
"""

import copy
import inspect
import re
import warnings
from pathlib import Path

import pytest
import torch
from torch import nn

import archlab
from archlab.cli import main
from archlab.errors import ArchlabError
from archlab.trace._batch import BATCH
from archlab.trace._mixing import _masks
from archlab.trace.fixes import Fix
from archlab.training.train import train
from tests import user_models
from tests.corpus import good, mixing, textbook

from .synthetic import learnable_dataset

CORPUS = Path(__file__).parent / "corpus"
QUIET = {"log": lambda line: None, "progress": False, "figures": False}


def _classes(module) -> list[type]:
    return [
        c
        for _, c in inspect.getmembers(module, inspect.isclass)
        if c.__module__ == module.__name__ and issubclass(c, nn.Module)
    ]


MIXING = _classes(mixing)
OTHERS = [c for c in _classes(good) + _classes(textbook) if hasattr(c, "input_shape")] + [
    c
    for c in _classes(user_models)
    if not inspect.signature(c).parameters  # built bare
]


def depends_on_others(model: nn.Module, shape, dtype=torch.float32, n: int = BATCH) -> bool:
    """True when changing one image of an n-image batch moves another image's output."""
    model = copy.deepcopy(model).eval()
    g = torch.Generator().manual_seed(123)

    def images(k: int) -> torch.Tensor:
        if dtype.is_floating_point:
            return torch.rand((k, *shape), generator=g)
        return torch.randint(0, 100, (k, *shape), generator=g)

    def run(x: torch.Tensor) -> torch.Tensor:
        torch.manual_seed(0)  # a model's own noise the same every pass
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Dropout2d on a flat tensor: not this test's
            out = model(x)
        return out[0] if isinstance(out, tuple) else out

    x = images(n)
    base = run(x)
    for j in range(n):
        y = x.clone()
        y[j] = images(1)[0]
        out = run(y)
        others = [i for i in range(n) if i != j]
        if not torch.allclose(out[others], base[others], rtol=1e-4, atol=1e-5):
            return True
    return False


@pytest.mark.parametrize("cls", MIXING + OTHERS, ids=lambda c: c.__name__)
def test_archlab_flags_exactly_the_models_a_direct_perturbation_flags(cls):
    shape = getattr(cls, "input_shape", (1, 28, 28))
    dtype = getattr(cls, "dtype", torch.float32)
    model = cls()
    mixes = depends_on_others(model, shape, dtype)
    assert mixes == bool(getattr(cls, "mixes", None)), "the corpus itself is wrong"
    report = archlab.trace_shapes(model, shape)
    assert report.ok == (not mixes), report.error
    if mixes:  # where the images first meet, named; the trace's own batch never shown
        assert (report.error.layer, report.error.type) == cls.mixes
        assert not re.search(rf"\b{BATCH}\b", str(report.error)), report.error


@pytest.mark.parametrize("name", archlab.list_models())
def test_no_registered_model_mixes_images(name):
    report = archlab.trace_shapes(name)
    assert report.ok, report.error
    assert not depends_on_others(archlab.create_model(name), (1, 28, 28), n=4)


def test_a_gru_without_batch_first_gets_a_tried_fix():
    report = archlab.trace_shapes(mixing.GRUOverRows(), (1, 28, 28), expect=(10,))
    assert report.error.fix == Fix("set", "gru", "batch_first", True)
    assert "runs along the batch" in str(report.error)
    assert report.error.render(flags=True).endswith("fix: --set gru.batch_first=True")
    fixed = archlab.trace_shapes(mixing.GRUOverRows(), (1, 28, 28), ["gru.batch_first=True"])
    assert fixed.ok and fixed.output_shape == (10,)
    model = mixing.GRUOverRows()
    model.gru.batch_first = True
    assert not depends_on_others(model, (1, 28, 28))


def test_an_lstm_keeps_its_arguments_in_the_tried_fix():
    report = archlab.trace_shapes(mixing.LSTMOverRows(), (1, 28, 28), expect=(10,))
    assert report.error.fix == Fix("set", "lstm", "batch_first", True)
    fixed = archlab.trace_shapes(mixing.LSTMOverRows(), (1, 28, 28), ["lstm.batch_first=True"])
    assert fixed.ok


def test_shapes_and_train_refuse_a_model_that_mixes(tmp_path, capsys):
    spec = f"{CORPUS / 'mixing.py'}:GRUOverRows"
    assert main(["shapes", spec]) == 1
    assert "fix: --set gru.batch_first=True" in capsys.readouterr().err
    with pytest.raises(ArchlabError, match="runs along the batch") as info:
        train(spec, data=learnable_dataset(60, 20), runs=tmp_path, epochs=1, **QUIET)
    assert info.value.exit_code == 1
    assert not any(tmp_path.iterdir())  # refused before any work


def test_batchnorm_in_train_mode_mixes_by_design_and_is_not_flagged():
    model = mixing.BatchNormTrainMode()
    x = torch.rand(4, 1, 28, 28)
    y = x.clone()
    y[0] = 0
    with torch.no_grad():
        assert not torch.allclose(model(x)[1:], model(y)[1:])  # train mode: batch statistics
    report = archlab.trace_shapes(model, (1, 28, 28))
    assert report.ok and model.training and model.bn.training  # traced in eval, mode restored


@pytest.mark.parametrize("n", range(2, 40))
def test_every_pair_of_images_is_split_by_some_mask(n):
    masks = _masks(n)
    assert len(masks) <= max(1, (n - 1).bit_length())
    for i in range(n):
        for j in range(i + 1, n):
            assert any(bool(m[i]) != bool(m[j]) for m in masks), (i, j)


@pytest.mark.parametrize("name", archlab.list_models())
def test_registered_models_are_proved_per_image_without_the_value_check(name, monkeypatch):
    """The trace's proof (every layer per image, every operation keeping dim 0 apart) spares
    the registry the check on values; the mixing corpus above shows the proof never
    covers a model that mixes."""
    from archlab.trace import _mixing

    def fail(*args):
        raise AssertionError("checked on values")

    monkeypatch.setattr(_mixing, "_mixes", fail)
    assert archlab.trace_shapes(name).ok
