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
from tests.synthetic import learnable_dataset

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
    # a function comes with its arguments checked: the module's own is what it wraps
    assert inspect.unwrap(getattr(archlab, name)) is getattr(importlib.import_module(module), name)
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


def _export_tables():
    """(package, name, module) for every ``_EXPORTS`` table in archlab and its subpackages."""
    import pkgutil

    found = []
    packages = ["archlab"] + [
        f"archlab.{m.name}" for m in pkgutil.iter_modules(archlab.__path__) if m.ispkg
    ]
    for package in packages:
        table = getattr(importlib.import_module(package), "_EXPORTS", {})
        found += [(package, name, module) for name, module in table.items()]
    return found


def test_the_subpackages_have_export_tables():
    packages = {package for package, _, _ in _export_tables()}
    assert {"archlab", "archlab.trace", "archlab.training"} <= packages


@pytest.mark.parametrize("package,name,module", _export_tables())
def test_every_name_of_every_export_table_resolves(package, name, module):
    """``archlab.training.load_run`` and ``archlab.training.Run`` pointed at a module that
    defines neither (AttributeError)."""
    defined = getattr(importlib.import_module(module), name)  # the table's module has it
    value = getattr(importlib.import_module(package), name)
    assert not inspect.ismodule(value), f"{package}.{name} is a module, not the export"
    assert inspect.unwrap(value) is defined
    assert name in dir(importlib.import_module(package))


def test_every_export_resolves_in_a_fresh_interpreter_too():
    """In this process earlier tests imported modules; a notebook starts clean."""
    code = (
        "import importlib, inspect, sys\n"
        f"for package, name, module in {_export_tables()!r}:\n"
        "    value = getattr(importlib.import_module(package), name)\n"
        "    assert inspect.unwrap(value) is getattr(importlib.import_module(module), name)\n"
    )
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


# --- every public function refuses a wrong type with one ArchlabError naming the argument

FUNCTIONS = [n for n in PUBLIC if inspect.isfunction(inspect.unwrap(getattr(archlab, n)))]
# a valid value for each required parameter, so that only the one under test is wrong
REQUIRED = {
    "model": "cnn",
    "run": "cnn",
    "name": "my-net",
    "description": "a net",
    "layer": "layer2",
    "label": 6,
    "data": learnable_dataset(n_train=20, n_test=10),
}


def _top_terms(annotation: str) -> set[str]:
    """The test's own reading of an annotation: its top-level words (``Sequence[str] | str``
    -> {"Sequence", "str"})."""
    depth, out, word = 0, set(), ""
    for char in annotation + "|":
        depth += char == "["
        depth -= char == "]"
        if char == "|" and depth == 0:
            out.add(word.strip().split("[")[0])
            word = ""
        else:
            word += char
    return out


def _wrong_values(func):
    """(parameter, wrong value) pairs read from the signature by this test: a module for
    every checked parameter, and a str, an int and None where the annotation says none."""
    from archlab._check import UNANNOTATED

    for param in inspect.signature(func).parameters.values():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        annotation = param.annotation
        if annotation is inspect.Parameter.empty:
            annotation = UNANNOTATED.get(param.name)
        if annotation is None or "object" in _top_terms(annotation):
            continue
        terms = _top_terms(annotation)
        yield param.name, sys
        if "str" not in terms:
            yield param.name, "layer1.0.padding=1"
        if not terms & {"int", "float", "object"}:
            yield param.name, 7
        if "None" not in terms:
            yield param.name, None


CASES = [
    (name, param, value)
    for name in FUNCTIONS
    for param, value in _wrong_values(inspect.unwrap(getattr(archlab, name)))
]


def test_every_public_function_is_checked():
    assert {name for name, _, _ in CASES} == set(FUNCTIONS)
    assert len(CASES) > 100


@pytest.mark.parametrize(
    "name,param,value", CASES, ids=[f"{n}-{p}-{type(v).__name__}" for n, p, v in CASES]
)
def test_a_wrong_type_is_one_error_naming_the_argument(name, param, value, tmp_path):
    func = getattr(archlab, name)
    params = inspect.signature(func).parameters
    kwargs = {
        p: REQUIRED[p] for p, info in params.items() if info.default is info.empty and p in REQUIRED
    }
    if "runs" in params and param != "runs":
        kwargs["runs"] = tmp_path  # should the check ever let it through: no real run is used
    kwargs[param] = value
    with pytest.raises(archlab.ArchlabError) as caught:
        func(**kwargs)
    assert str(caught.value).startswith(f"{name}(): {param}=")
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("name", FUNCTIONS)
def test_every_default_satisfies_its_own_annotation(name):
    from archlab._check import rules

    func = inspect.unwrap(getattr(archlab, name))
    for param, rule in rules(func).items():
        default = inspect.signature(func).parameters[param].default
        if default is not inspect.Parameter.empty:
            assert rule.accepts(default), f"{name}'s {param}={default!r} is not {rule.words}"


def test_the_audits_cases():
    """A str where a list goes was read a character at a time (``--set 'l'``)."""
    with pytest.raises(archlab.ArchlabError, match=r"overrides='layer1.0.padding=1' is a str"):
        archlab.create_model("cnn", "layer1.0.padding=1")
    with pytest.raises(archlab.ArchlabError, match=r"model=archlab is a module"):
        archlab.create_model(archlab)
    with pytest.raises(archlab.ArchlabError, match=r"missing a required argument: 'model'"):
        archlab.create_model()
    with pytest.raises(archlab.ArchlabError, match=r"unexpected keyword argument 'epoch'"):
        archlab.train("dnn", epoch=1)
    with pytest.raises(archlab.ArchlabError, match=r"index=True is a bool; give an int"):
        archlab.explain("cnn", True)
    assert archlab.create_model("cnn", ["layer1.0.padding=1"]).layer1[0].padding == (1, 1)


# --- one name and one default for "which runs", groups expanded everywhere

SEVERAL_RUNS = ("compare", "explore", "attack", "dynamics")


@pytest.mark.parametrize("name", SEVERAL_RUNS)
def test_every_analysis_of_several_runs_takes_models_with_one_default(name):
    """They were runs_to_compare, runs_to_attack and runs_to_show; dynamics defaulted to
    the CNN alone."""
    first = next(iter(inspect.signature(getattr(archlab, name)).parameters.values()))
    assert (first.name, first.default) == ("models", ("dnn", "cnn"))


@pytest.mark.parametrize("name", SEVERAL_RUNS)
@pytest.mark.parametrize("models", ["zoo", ["zoo"], ["dnn", "zoo"]])
def test_a_group_is_its_models_everywhere(name, models, tmp_path):
    """Only explore expanded a group; compare("zoo") looked for a run folder named zoo."""
    first = "dnn" if models == ["dnn", "zoo"] else archlab.list_models("zoo")[0]
    with pytest.raises(archlab.ArchlabError, match=f"no checkpoint at {tmp_path}/{first}/"):
        getattr(archlab, name)(models, runs=tmp_path)


# --- the image shape has one home, in models, and models needs nothing from training


def test_models_imports_nothing_from_training():
    code = (
        "import sys, archlab.models\n"
        "sys.exit(1 if [m for m in sys.modules if m.startswith('archlab.training')] else 0)"
    )
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_the_image_shape_is_written_once():
    """``(1, 28, 28)`` was written in seven places, and IMAGE_SHAPE lived in training."""
    import ast

    from archlab.models import IMAGE_SHAPE

    package = Path(archlab.__file__).parent
    written = []
    for path in sorted(package.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Tuple) and [
                getattr(e, "value", None) for e in node.elts
            ] == list(IMAGE_SHAPE):
                written.append(f"{path.relative_to(package)}:{node.lineno}")
    assert written == [w for w in written if w.startswith("models/_registry.py:")], written
    assert len(written) == 1


def test_the_checker_takes_what_the_functions_take():
    """A right value of another container (a numpy array, torch.Size, a Path) passes."""
    from pathlib import PurePosixPath

    import numpy as np
    import torch

    from archlab._check import rules

    def accepts(name, param, value):
        return rules(inspect.unwrap(getattr(archlab, name)))[param].accepts(value)

    assert accepts("attack", "eps", np.array([0.0, 0.1]))
    assert accepts("trace_shapes", "input_shape", torch.Size([1, 28, 28]))
    assert accepts("explore", "out", PurePosixPath("site"))
    assert accepts("train", "lr", 1)  # an int where a float goes
    assert accepts("create_model", "model", torch.nn.Linear(2, 2))
    assert not accepts("attack", "eps", {"eps": 0.1})  # a dict would be read by its keys
    assert not accepts("train", "epochs", 2.0)  # an int is asked for: 2.5 would be silent


def test_a_model_where_a_run_goes_is_one_line():
    """A model's repr spans lines: the refusal showed all of them (outside test)."""
    with pytest.raises(archlab.ArchlabError) as info:
        archlab.evaluate(archlab.create_model("cnn"))
    assert "\n" not in str(info.value)
    assert str(info.value).startswith("evaluate(): run=FashionCNN(... is a FashionCNN; give a Run")


def test_explore_takes_at_most_the_test_sets_images():
    with pytest.raises(archlab.ArchlabError, match="images=10001"):
        archlab.explore(["dnn"], images=10_001, out="never-written")
