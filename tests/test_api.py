"""The public surface: archlab._GROUPS lists it, the API page is generated from it, every
name on it is importable and documented with an example, and CLI plumbing stays off it."""

import importlib
import importlib.util
import inspect
import subprocess
import sys
from pathlib import Path

import pytest

import archlab

DOCS = Path(__file__).parent.parent / "docs"
PUBLIC = [name for group in archlab._GROUPS.values() for name in group]


def _api_reference():
    spec = importlib.util.spec_from_file_location("api_reference", DOCS / "api_reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_all_is_the_groups_and_the_version_each_name_once():
    assert len(PUBLIC) == len(set(PUBLIC)), "a name is listed in two groups"
    assert set(archlab.__all__) == {*PUBLIC, "__version__"}
    assert len(archlab.__all__) == len(PUBLIC) + 1


@pytest.mark.parametrize("name", PUBLIC)
def test_every_public_name_is_what_its_module_defines(name):
    module = next(m for group in archlab._GROUPS.values() for n, m in group.items() if n == name)
    assert getattr(archlab, name) is getattr(importlib.import_module(module), name)
    assert name in dir(archlab)


@pytest.mark.parametrize("name", PUBLIC)
def test_every_public_name_has_a_docstring_with_an_example(name):
    doc = inspect.getdoc(getattr(archlab, name)) or ""
    assert doc.strip(), f"{name} has no docstring"
    assert "Example" in doc, f"{name}'s docstring has no example"


def test_the_api_page_lists_every_group_and_name_in_order():
    page = _api_reference().render()
    lines = page.splitlines()
    where = []
    for group, names in archlab._GROUPS.items():
        heading = lines.index(group)
        assert lines[heading + 1] == "-" * len(group)
        where.append(heading)
        for name in names:
            kind = "autoclass" if inspect.isclass(getattr(archlab, name)) else "autofunction"
            directive = f".. {kind}:: archlab.{name}"
            assert directive in lines, f"{name} is missing from the API page"
            where.append(lines.index(directive))
    assert where == sorted(where), "the page's order is not _GROUPS' order"
    assert page.count(".. auto") == len(PUBLIC)


def test_every_group_has_its_paragraph_and_no_paragraph_is_stale():
    text = _api_reference().GROUP_TEXT
    missing = [g for g in archlab._GROUPS if g not in text]
    assert not missing, f"add a paragraph for {missing} to docs/api_reference.py"
    assert set(text) <= set(archlab._GROUPS), "a paragraph for a group that is gone"


def test_the_two_signature_conventions_are_written_down_and_kept():
    text = _api_reference().GROUP_TEXT
    assert "input_shape=None, overrides=(), *,\ndepth=None" in text["Architecture"]
    assert '(run, ..., *, runs="runs",\ndata=None)' in text["Inside a trained run"]
    for fn in (archlab.trace_shapes, archlab.count_params, archlab.draw):
        assert list(inspect.signature(fn).parameters)[:3] == [
            "model",
            "input_shape",
            "overrides",
        ]
    for fn in (archlab.explain, archlab.evaluate, archlab.activations, archlab.filters):
        params = inspect.signature(fn).parameters
        assert params["runs"].kind is inspect.Parameter.KEYWORD_ONLY
        assert params["runs"].default == "runs"
    for fn in (archlab.explain, archlab.evaluate, archlab.activations, archlab.compare):
        assert inspect.signature(fn).parameters["data"].default is None


# CLI plumbing and the old API's names: none of them is on the surface any more
GONE = (
    "expand_run_names",
    "expand_models",
    "pick_device",
    "set_hyperparameter",
    "model_description",
    "is_model",
    "load_model",
    "load_trained_model",
    "load_or_train",
    "train_model",
    "train_models",
    "TrainResult",
    "explain_image",
    "explain_test_image",
    "evaluate_report",
    "classification_report",
    "confusion_matrix",
    "compare_models",
    "compare_params",
    "model_table",
    "filter_weights",
)


@pytest.mark.parametrize("name", GONE)
def test_cli_plumbing_and_old_names_are_not_exported(name):
    assert name not in archlab.__all__
    with pytest.raises(AttributeError):
        getattr(archlab, name)


def test_no_free_plot_function_is_exported():
    assert not [n for n in archlab.__all__ if n.startswith("plot")]


def test_importing_archlab_imports_no_torch():
    code = "import sys, archlab; sys.exit(1 if 'torch' in sys.modules else 0)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_unknown_attribute():
    with pytest.raises(AttributeError):
        archlab.no_such_thing  # noqa: B018
