"""Any model through the whole pipeline: a user's file, a factory with arguments and a
--set what-if are trained, reloaded as the same architecture, explained, looked inside
and compared; and each way of getting it wrong is one line."""

from pathlib import Path

import pytest
import torch

import archlab
from archlab.cli import main
from archlab.errors import ArchlabError
from archlab.training.train import train

from .synthetic import learnable_dataset

LAB = Path(__file__).parent / "user_lab.py"
LENET = f"{LAB}:SmallLeNet"
MLP = "tests.user_lab:small_mlp(hidden=16)"
VARIANT = ["layer2.0.padding=1", "fc1.in_features=3136"]  # 14 → 14 → 7: 64·7·7 = 3136
QUIET = {"log": lambda line: None, "progress": False, "figures": False}


@pytest.fixture(scope="module")
def tiny():
    return learnable_dataset()


@pytest.fixture(scope="module")
def runs(tmp_path_factory, tiny):
    out = tmp_path_factory.mktemp("runs")
    for spec, overrides in ((LENET, []), (MLP, []), ("cnn", VARIANT)):
        train(spec, data=tiny, overrides=overrides, runs=out, epochs=1, **QUIET)
    return out


def test_each_model_gets_its_own_readable_run_folder(runs):
    names = sorted(p.name for p in runs.iterdir())
    assert names == [
        "cnn+layer2.0.padding=1+fc1.in_features=3136",
        "tests.user_lab.small_mlp-hidden=16",
        "user_lab.SmallLeNet",
    ]


def test_a_user_file_goes_through_every_analysis(runs, tiny):
    run = archlab.load_run(LENET, runs=runs)
    net = run.model
    assert run.spec.base == LENET and type(net).__name__ == "SmallLeNet"
    e = archlab.explain(run, 3, data=tiny, methods="saliency,gradcam")
    assert [a.method for a in e.attributions] == ["saliency", "gradcam"]
    assert "Grad-CAM on features" in e.attributions[1].title  # its last block, after its ReLU
    assert tuple(e.attributions[1].native.shape) == (8, 8)
    kernels = archlab.filters(run)
    assert kernels.layer == "features.0" and tuple(kernels.weights.shape) == (4, 1, 5, 5)
    acts = archlab.activations(LENET, 0, runs=runs, data=tiny).maps
    # one flat block: after its pooling (4@24×24 → 4@12×12) and at its last map, 8@8×8
    assert {k: tuple(v.shape) for k, v in acts.items()} == {
        "features.2": (4, 12, 12),
        "features": (8, 8, 8),
    }
    report = archlab.evaluate(run, data=tiny)
    assert int(report.matrix.sum()) == len(tiny.test_labels)
    assert report.accuracy == pytest.approx(run.test_accuracy)


def test_a_factory_is_rebuilt_with_its_arguments(runs, tiny):
    run = archlab.load_run(MLP, runs=runs)
    assert run.spec.base == "tests.user_lab:small_mlp(hidden=16)"
    assert run.model[1].out_features == 16
    with pytest.raises(ArchlabError, match="has no convolution"):
        archlab.filters(run)
    e = archlab.explain(MLP, 0, runs=runs, data=tiny, methods="gradcam")
    assert "no convolution" in e.skipped["gradcam"]
    acts = archlab.activations(run, 0, data=tiny).maps
    assert [tuple(a.shape) for a in acts.values()] == [(16,)]


def test_a_variant_is_rebuilt_with_the_edited_layer(runs):
    by_spec = archlab.load_run("cnn", VARIANT, runs=runs)
    by_name = archlab.load_run("cnn+layer2.0.padding=1+fc1.in_features=3136", runs=runs)
    for run in (by_spec, by_name):
        assert run.model.layer2[0].padding == (1, 1) and run.model.fc1.in_features == 3136
        assert list(run.overrides) == VARIANT
    assert torch.equal(by_spec.model.fc1.weight, by_name.model.fc1.weight)


def test_two_user_models_and_a_variant_side_by_side(runs, tiny):
    comparison = archlab.compare(
        [LENET, MLP, "cnn+layer2.0.padding=1+fc1.in_features=3136"], runs=runs, data=tiny
    )
    text = str(comparison)
    assert [m.name for m in comparison.models] == [
        "user_lab.SmallLeNet",
        "tests.user_lab.small_mlp-hidden=16",
        "cnn+layer2.0.padding=1+fc1.in_features=3136",
    ]
    assert "tests.user_lab.small_mlp-hidden=16 − user_lab.SmallLeNet" in text
    assert comparison.models[1].params == 784 * 16 + 16 + 16 * 10 + 10


@pytest.mark.parametrize(
    ("spec", "overrides", "code", "message"),
    [
        ("tests.user_lab:small_mlp(hidden=8, classes=5)", [], 1, "outputs 5 per image, not 10"),
        (
            f"{Path(__file__).parent / 'user_models.py'}:TinyNet",
            [],
            1,
            "cannot be trained on 1×28×28",
        ),
        ("tests.user_lab:small_mlp", [], 2, "small_mlp needs the arguments hidden"),
        ("cnn", ["layer2.0.padding=1"], 1, "expects 2304 input features but receives 3136"),
        ("cnn", ["nope.padding=1"], 2, "no layer 'nope'"),
        ("tests.user_lab:NoParameters", [], 1, r"has no parameters to train \(it has none\)"),
        ("tests.user_lab:frozen_linear", [], 1, r"\(none requires a gradient\)"),
        ("tests.user_lab:IntegerScores", [], 1, "outputs int64 scores; the loss needs floating"),
        ("tests.user_lab:DictScores", [], 1, r"return it alone \(e.g. return out\['logits'\]\)"),
    ],
)
def test_untrainable_models_are_refused_before_any_work(
    tmp_path, tiny, spec, overrides, code, message
):
    with pytest.raises(ArchlabError, match=message) as info:
        train(spec, data=tiny, overrides=overrides, runs=tmp_path, **QUIET)
    assert info.value.exit_code == code
    assert not any(tmp_path.iterdir())  # nothing written


def test_bad_run_references_are_one_line(runs, capsys):
    for argv, code, message in [
        (["compare", "cnn", "nope", "--runs", str(runs)], 2, "unknown model 'nope'"),
        (["compare", "dnn", LENET, "--runs", str(runs)], 1, "no checkpoint at"),
        (
            ["filters", "--model", "cnn", "--set", "nope.padding=1", "--runs", str(runs)],
            2,
            "no layer 'nope'",
        ),
        (
            ["filters", "--model", "user_lab.SmallLeNet", "--runs", str(runs)],
            2,
            "archlab imports a model's code only when you name it",
        ),
    ]:
        assert main(argv) == code, argv
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and message in err[0], (argv, err)


def test_another_model_never_overwrites_a_run(runs, tiny):
    before = (runs / "user_lab.SmallLeNet" / "checkpoint.pt").read_bytes()
    with pytest.raises(ArchlabError, match=r"holds a run of .*SmallLeNet, not dnn; give another"):
        train("dnn", data=tiny, runs=runs, name="user_lab.SmallLeNet", **QUIET)
    assert (runs / "user_lab.SmallLeNet" / "checkpoint.pt").read_bytes() == before


def test_groups_expand_from_the_registry():
    from archlab.models import is_model
    from archlab.models.spec import expand_models

    assert [str(s) for s in expand_models([])] == ["dnn", "cnn"]
    assert [str(s) for s in expand_models(["cnn", "lecture"])] == ["cnn", "dnn"]
    assert all(is_model(str(s)) for s in expand_models(["all"]))


def test_a_models_prints_never_reach_stdout(capsys):
    assert main(["shapes", f"{LAB}:Talkative", "--json"]) == 0
    captured = capsys.readouterr()
    import json

    assert json.loads(captured.out)["ok"] is True
    assert "forward!" in captured.err


def test_compare_draws_the_confusion_grid_and_the_tradeoff(runs, tiny, tmp_path):
    from archlab.viz import plot_comparison, plot_tradeoff, save_figure

    names = [LENET, MLP, "cnn+layer2.0.padding=1+fc1.in_features=3136"]
    comparison = archlab.compare(names, runs=runs, data=tiny)
    assert "the hardest classes (recall):" in str(comparison)
    fig = plot_tradeoff(comparison)
    xs = [float(c.get_offsets()[0][0]) for c in fig.axes[0].collections]
    assert xs == [m.params for m in comparison.models]
    labels = [t.get_text().replace("\n", "") for t in fig.axes[1].texts]  # long names wrap
    assert labels == [m.name for m in comparison.models]
    grid = plot_comparison(comparison)
    assert len([a for a in grid.axes if a.get_title().endswith(" params")]) == 3
    save_figure(fig, tmp_path / "t.svg")
    assert (tmp_path / "t.svg").read_text().lstrip().startswith("<?xml")


def test_a_model_that_views_its_activations_trains_and_evaluates_in_nchw(tiny, tmp_path):
    # .view(N, -1) after a convolution fails on NHWC tensors ("view size is not
    # compatible"): archlab runs such a model as written and says why it is slower
    spec = f"{LAB}:ViewingLeNet"
    lines = []
    result = train(spec, data=tiny, runs=tmp_path, epochs=1, **{**QUIET, "log": lines.append})
    assert any("NCHW layout" in line and ".view" in line for line in lines)
    report = archlab.evaluate(spec, runs=tmp_path, data=tiny)
    assert report.accuracy == pytest.approx(result.test_accuracy)
    flat = []  # the same network with flatten(1) trains in NHWC, to about the same accuracy
    lenet = train(LENET, data=tiny, runs=tmp_path, epochs=1, **{**QUIET, "log": flat.append})
    assert flat and not any("NCHW" in line for line in flat)
    assert lenet.test_accuracy == pytest.approx(result.test_accuracy, abs=0.05)


def test_a_named_run_of_ones_own_model_opens_as_model_at_run(tmp_path, tiny, capsys):
    """A run of a user's code trained under another name (--name, --hold-out) is opened
    as MODEL@RUN by every command; the refusal of its bare name says so (it said 'name it
    as the model', which opened the model's other run). Found by an outside test."""
    train(LENET, data=tiny, runs=tmp_path, name="lenet-b", epochs=1, **QUIET)
    with pytest.raises(ArchlabError, match=r"name it as the model and the run: MODEL@lenet-b"):
        archlab.evaluate("lenet-b", runs=tmp_path, data=tiny)
    report = archlab.evaluate(f"{LENET}@lenet-b", runs=tmp_path, data=tiny)
    assert report.accuracy >= 0
    with pytest.raises(ArchlabError, match="no checkpoint at"):  # not the other run
        archlab.evaluate(LENET, runs=tmp_path, data=tiny)
    assert main(["compare", f"{LENET}@lenet-b", "dnn@x", "--runs", str(tmp_path)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"no checkpoint at {tmp_path / 'x'}" in err[0]


@pytest.mark.parametrize("name", ["a:b", "a@b", " ", "", " lead", "tab\there", "..", "a/b"])
def test_a_run_name_no_command_could_name_again_is_refused(tmp_path, tiny, name):
    with pytest.raises(ArchlabError, match="a run name is one folder name") as info:
        train("dnn", data=tiny, runs=tmp_path, name=name, epochs=1, **QUIET)
    assert info.value.cli_message.startswith("--name ")
    assert not any(tmp_path.iterdir())


def test_the_dynamics_hint_names_the_model_as_trained(runs):
    """Its hint was `archlab train user_lab.SmallLeNet --watch`, a command train refuses
    (a run folder's name, not the model's code)."""
    with pytest.raises(ArchlabError, match="has no training dynamics") as info:
        archlab.dynamics([LENET], runs=runs)
    assert f"archlab train {LAB}:SmallLeNet --out {runs} --watch 50" in str(info.value)


def test_model_at_run_opens_a_what_if_run_of_the_model(runs, tiny):
    """MODEL@RUN of a what-if run: the model's code, the run's recorded what-ifs (it was
    refused as another model, so a file model's what-if run could not be opened)."""
    folder = "cnn+" + "+".join(VARIANT)
    report = archlab.evaluate(f"cnn@{folder}", runs=runs, data=tiny)
    assert report.accuracy == archlab.evaluate(folder, runs=runs, data=tiny).accuracy
    run = archlab.load_run(f"cnn@{folder}", runs=runs)
    assert run.model.layer2[0].padding == (1, 1) and list(run.overrides) == VARIANT


def test_model_at_run_names_its_faults_and_takes_the_file_by_any_path(tmp_path, tiny, monkeypatch):
    """Outside tests: 'MODEL@' blamed a --name never given; the same file named by its
    absolute path was 'another model'; a missing file was advised to be trained."""
    monkeypatch.chdir(LAB.parent)
    train("user_lab.py:SmallLeNet", data=tiny, runs=tmp_path, name="mine", epochs=1, **QUIET)
    for spec in (f"{LAB}:SmallLeNet@mine", "./user_lab.py:SmallLeNet@mine"):
        assert archlab.evaluate(spec, runs=tmp_path, data=tiny).accuracy >= 0
    with pytest.raises(ArchlabError, match=r"SmallLeNet@: after the @ goes the run's folder"):
        archlab.evaluate("user_lab.py:SmallLeNet@", runs=tmp_path, data=tiny)
    with pytest.raises(ArchlabError, match=r"no file nofile.py") as info:
        archlab.evaluate("nofile.py:SmallLeNet@mine", runs=tmp_path, data=tiny)
    assert info.value.exit_code == 2


@pytest.mark.parametrize("spec", ["cnn@mine", f"{LENET}@mine"])
def test_a_run_given_where_a_model_is_asked_for_says_which_model(spec, capsys):
    """shapes and params read an architecture: MODEL@RUN there named the spec malformed
    (outside test); now the line says to give the model."""
    for command in ("shapes", "params"):
        assert main([command, spec]) == 2
        err = capsys.readouterr().err.strip()
        assert "names a trained run (MODEL@RUN)" in err and "\n" not in err
        assert f"give '{spec.rpartition('@')[0]}'" in err
