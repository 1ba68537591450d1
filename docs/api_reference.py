"""Write the Python API page from ``archlab._GROUPS`` at build time, so the page lists
exactly the public surface, by group, and can never fall out of step with it."""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path

HEADER = """Python API
==========

Generated from ``archlab._GROUPS`` each time the docs are built: this page is the
public surface, and everything on it is imported from ``archlab`` (the modules behind
it are implementation details).

Each answer is a report. ``print(report)`` gives the terminal's tables; in Jupyter it
renders itself (its tables as HTML, and its picture where a picture is the answer);
``report.plot(ax=None)`` draws it and returns the matplotlib ``Figure`` (a report of
several panels draws its main panel on a given ``ax``); ``report.save(path)`` writes
``.png``, ``.svg``, ``.pdf``, ``.json``, ``.txt`` or ``.html``; ``report.to_dict()``
gives its numbers, ready for JSON.
"""

# One paragraph per group of archlab._GROUPS: the signature convention its functions share
# (tests/test_api.py checks that every group has one).
GROUP_TEXT = {
    "Models": """\
One door to a model: ``create_model(model, overrides=())`` builds any spec untrained: a
registered name (``"cnn"``), a class in a file (``"path/net.py:Net"``), a class or
factory in a package (``"torchvision.models:resnet18(num_classes=10)"``), with what-ifs
that rebuild one layer with one argument changed (``["layer2.0.padding=1"]``, the CLI's
``--set``). The registry lists the models and their cards; ``register_model`` adds one.
""",
    "Architecture": """\
Every function that looks at a model takes ``(model, input_shape=None, overrides=(), *,
depth=None, ...)``: ``model`` is a spec, an ``nn.Module`` (left as it was) or a trained
:class:`Run`; ``input_shape`` is one sample's ``(C, H, W)``, by default the model's own;
``overrides`` are what-ifs applied to a copy. A chain that does not fit is diagnosed,
not raised: the report says which layer, what it expected and what it got.
""",
    "Data and training": """\
``train(model, overrides=(), *, runs="runs", data=None, epochs=None, reuse=False, ...)``
trains one model and returns a :class:`Run`; ``reuse=True`` returns the finished run
already in the folder instead of training again (notebooks, these docs).
``load_run(model="cnn", overrides=(), *, runs="runs", name=None)`` loads a run trained
earlier (by ``archlab train``). A run carries its model (eval mode, on the CPU), spec,
normalisation, history, test accuracy, settings, card and folder; ``run.plot()`` draws
its curves. ``data`` is the dataset in memory, by default :func:`load_fashion_mnist`'s.
""",
    "Training dynamics and the learning rate": """\
``lr_find(model, input_shape=None, overrides=(), *, data=None, ...)`` sweeps the learning
rate on any model, as the architecture functions take it, and suggests one (the rule is
stated on the report); nothing is written. ``dynamics(models, *, runs="runs")``
draws what ``train(..., watch=50)`` recorded inside one or more runs: activation
statistics, dead ReLUs, gradient norms and update ratios, layer by layer.
""",
    "Inside a trained run": """\
Every function that looks at a trained run takes ``(run, ..., *, runs="runs",
data=None)``: ``run`` is a :class:`Run` or the name of one (a spec or a run folder's
name, loaded from ``runs``); ``data`` is the dataset, by default
:func:`load_fashion_mnist`'s. Inputs are normalised as the run was trained: nobody passes
``normalize`` by hand. ``filters`` and ``activations`` also take an ``nn.Module`` as it is.
The functions that look at several runs (``compare``, ``explore``, ``attack``,
``dynamics``) take them as ``models``: one run or a list, each a :class:`Run`, a spec, a
run folder's name or a group (``"lecture"``, ``"zoo"``); by default the lecture's two.
""",
    "Trusting a trained run": """\
``faithfulness(run, *, images=..., fill="zero", runs="runs", data=None)`` measures
whether each attribution method's map ranks the pixels the score depends on (deletion and
insertion curves, against random, edge and constant control maps);
``attack(models, *, eps=..., runs="runs", data=None)`` measures how accuracy
falls under FGSM and PGD (the cross-entropy of the logits; ε in pixel units, 0 to 1, for
every run whatever its normalisation; PGD from a random start in the ε-ball);
``calibration(models, *, bins=15, runs="runs", data=None)`` compares confidence with
accuracy before and after temperature scaling; ``ood(models, *, sets=..., runs="runs",
data=None)`` measures how well the confidence flags images from elsewhere
(``without_class(data, 6)`` is the data to train a run that never saw Shirts, for
``ood(..., held_out=6)``). All take runs as the trained-run functions do.
""",
    "Where the classes come apart": """\
``probes(models, *, images=10000, runs="runs", data=None)`` trains a linear classifier on
every trace row's output (pooled to at most 2,048 features) and tests it: where each model
makes the classes linearly separable, pixels first. ``embedding(run, layer=None, *,
method="pca", runs="runs", data=None)`` projects one layer's features of the test images
to 2-D beside the raw pixels, with the k-NN (k = 10) accuracy in each map.
""",
    "Errors": """\
Every failure archlab foresees is an :class:`ArchlabError`: one line saying what is wrong
and what to do; its ``code`` is the command line's exit status (1: the model, data or run
is wrong; 2: bad usage).
""",
}


def _objects(groups: dict[str, dict[str, str]]):
    for group, names in groups.items():
        yield group, [(n, getattr(importlib.import_module(m), n)) for n, m in names.items()]


def render() -> str:
    import archlab

    parts = [HEADER]
    for group, objects in _objects(archlab._GROUPS):
        parts.append(f"{group}\n{'-' * len(group)}\n")
        if group in GROUP_TEXT:
            parts.append(GROUP_TEXT[group])
        for name, obj in objects:
            if inspect.isclass(obj):
                parts.append(f".. autoclass:: archlab.{name}\n   :members:\n")
            else:
                parts.append(f".. autofunction:: archlab.{name}\n")
    return "\n".join(parts)


def _write(app) -> None:
    target = Path(app.srcdir) / "api.rst"
    text = render()
    if not target.exists() or target.read_text(encoding="utf-8") != text:
        target.write_text(text, encoding="utf-8")


def setup(app):
    app.connect("builder-inited", _write)
    return {"parallel_read_safe": True, "version": "1"}
