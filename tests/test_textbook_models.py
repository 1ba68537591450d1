"""Textbook-style models (tests/corpus/textbook.py: lazy layers, loops, F.* in forward)
through every command: shapes, draw, params, train, and the analyses of the trained run."""

from pathlib import Path

import pytest

import archlab
from archlab.cli import main

from .synthetic import learnable_dataset

BOOK = Path(__file__).parent / "corpus" / "textbook.py"
MODELS = ["LazyLeNet", "LoopMLP", "FunctionalCNN"]
QUIET = {"log": lambda line: None, "progress": False, "figures": False}


@pytest.mark.parametrize("name", MODELS)
def test_shapes_draw_and_params_take_a_textbook_model(name, tmp_path, capsys):
    spec = f"{BOOK}:{name}"
    assert main(["shapes", spec]) == 0
    assert main(["draw", spec, "--out", str(tmp_path / "net.svg")]) == 0
    assert main(["params", spec]) == 0
    assert archlab.trace_shapes(spec).output_shape == (10,)


@pytest.mark.parametrize("name", MODELS)
def test_train_materialises_lazy_layers_and_the_run_loads_back(name, tmp_path):
    spec = f"{BOOK}:{name}"
    data = learnable_dataset()
    run = archlab.train(spec, runs=tmp_path, data=data, epochs=1, **QUIET)
    loaded = archlab.load_run(spec, runs=tmp_path)
    assert loaded.spec == run.spec and loaded.iteration == run.iteration
    params = sum(p.numel() for p in loaded.model.parameters())  # none uninitialised
    assert params == run.params == archlab.count_params(spec).total_params
