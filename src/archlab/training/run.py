"""A trained run as one object: what :func:`archlab.train` returns and :func:`load_run`
loads, and what every analysis of a trained model takes.

A :class:`Run` carries its model (eval mode, on the CPU), the spec and what-ifs it was
built from, the (mean, std) its inputs were normalised with, its history, its test
accuracy, its settings and its folder; nobody passes ``normalize`` by hand.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from torch import nn

from archlab._report import Report, jsonable
from archlab._table import Table
from archlab._text import plural
from archlab.errors import ArchlabError
from archlab.models.spec import ModelSpec
from archlab.training.recipes import TrainConfig


@dataclass(repr=False, eq=False)
class Run(Report):
    """A trained (or partly trained) run: its model and everything it was trained with.

    ``str(run)`` is a table of its facts; ``run.plot(ax=None)`` draws its training curves
    (loss and test accuracy; on a given ``ax``, the test accuracy alone);
    ``run.save("curves.png")``; ``run.to_dict()`` has every number but the weights.

    Example::

        >>> run = archlab.load_run("cnn")                     # doctest: +SKIP
        >>> run.test_accuracy, run.epochs, run.recipe         # doctest: +SKIP
        (0.9172, 5, 'careful')
    """

    name: str  # the run folder's name, e.g. cnn+layer2.0.padding=1
    folder: Path
    spec: ModelSpec
    model: nn.Module
    config: TrainConfig
    normalize: tuple[float, float] | None  # (mean, std) of the inputs, or None
    history: dict
    test_accuracy: float | None
    iteration: int
    finished: bool
    params: int
    seconds: float = 0.0  # in training steps
    eval_seconds: float = 0.0  # in test-set evaluations
    device: str = "cpu"  # where it was trained
    # the training that returned this run was stopped by Ctrl-C or SIGTERM (its checkpoint
    # is saved); a run loaded from its folder says False: ``finished`` says whether it ended
    interrupted: bool = False
    files: list[Path] = field(default_factory=list)  # written by the training that made it
    # the iteration of the snapshot this is (archlab.snapshots: named run@iteration, its
    # folder the run's), or None for the run itself
    snapshot: int | None = None

    @property
    def label(self) -> str:
        """The spec with its what-ifs, for titles."""
        return self.spec.label

    @property
    def overrides(self) -> tuple[str, ...]:
        return tuple(self.spec.overrides)

    @property
    def epochs(self) -> int:
        return self.config.epochs

    @property
    def recipe(self) -> str:
        return self.config.recipe

    @property
    def checkpoint(self) -> Path:
        return self.folder / "checkpoint.pt"

    @property
    def card(self):
        """The registry's :class:`~archlab.ModelCard` of an unedited registered model, or None."""
        if not self.spec.registered or self.spec.overrides:
            return None
        from archlab.models import model_card

        return model_card(self.spec.source)

    @property
    def what(self) -> str:
        """How it was trained, in a few words: ``5 epochs, careful``."""
        epochs = plural(self.epochs, "epoch")
        done = "" if self.finished else f", stopped at iteration {self.iteration:,}"
        return f"{epochs}, {self.recipe}{done}"

    def __repr__(self) -> str:
        acc = f"{100 * self.test_accuracy:.2f} %" if self.test_accuracy is not None else "no test"
        return f"<archlab.Run {self.name}: {acc} after {self.what}; {self.folder}>"

    @property
    def held_out(self) -> int | None:
        """The class it never saw (``archlab train --hold-out``), or None."""
        return getattr(self.config, "held_out", None)

    def own_data(self, data):
        """``data`` as the run was trained and tested: without the class it held out, so
        that an analysis's accuracy is over the same nine classes as its test accuracy
        (``archlab ood`` is where the unseen class is asked about); ``data`` itself when
        it held none out.

        Args:
            data: a :class:`~archlab.FashionMNIST`.

        Returns:
            A :class:`~archlab.FashionMNIST`.
        """
        if self.held_out is None:
            return data
        from archlab.training.data import without_class

        return without_class(data, self.held_out)

    @property
    def accuracy_over(self) -> str:
        """What its test accuracy is over: ``""`` for all ten classes, else
        ``" (9 classes, Shirt held out)"``."""
        return held_out_note(self.held_out)

    def _parts(self) -> list[Table | str]:
        acc = f"{100 * self.test_accuracy:.2f} %" if self.test_accuracy is not None else "-"
        acc += self.accuracy_over if self.test_accuracy is not None else ""
        norm = self.normalize
        rows = [
            ["run", self.name],
            ["model", self.label],
            ["trained", self.what],
            [
                "settings",
                f"batch {self.config.batch_size}, lr {self.config.lr:g}, seed {self.config.seed}",
            ],
            ["test accuracy", acc],
            ["parameters", f"{self.params:,}"],
            ["inputs", f"(x − {norm[0]:.4f}) / {norm[1]:.4f}" if norm else "pixels in [0, 1]"],
            ["folder", str(self.folder)],
        ]
        return [Table(["", ""], rows)]

    def plot(self, ax=None, *, color=None, label: str | None = None):
        """Training loss and test accuracy against iteration; on ``ax``, the accuracy
        alone, labelled by the run in the axes' next colour (or ``color``/``label``), so
        that ``a.plot(ax); b.plot(ax); ax.legend()`` overlays two runs."""
        from archlab.viz.curves import plot_curves

        return plot_curves(self.history, ax, name=self.name, color=color, label=label)

    def to_dict(self) -> dict:
        data = {
            "name": self.name,
            "spec": self.spec.base,
            "overrides": list(self.overrides),
            "config": jsonable(self.config),
            "folder": str(self.folder),
        }
        for key in (
            "normalize",
            "history",
            "test_accuracy",
            "iteration",
            "finished",
            "params",
            "seconds",
            "eval_seconds",
            "device",
            "interrupted",
        ):
            data[key] = jsonable(getattr(self, key))
        return data

    @classmethod
    def from_checkpoint(
        cls, folder: Path, payload: dict, spec: ModelSpec, model: nn.Module, **extra
    ) -> Run:
        """The run a validated checkpoint describes, with ``model`` holding its weights."""
        from archlab.training.checkpoint import check_normalize

        return cls(
            name=folder.name,
            folder=folder,
            spec=spec,
            model=model.eval(),
            config=TrainConfig.from_dict(payload["config"]),
            normalize=check_normalize(payload.get("normalize")),
            history=payload.get("history") or {},
            test_accuracy=payload.get("test_accuracy"),
            iteration=int(payload.get("iteration", 0)),
            finished=bool(payload.get("finished")),
            params=int(payload.get("params") or sum(p.numel() for p in model.parameters())),
            seconds=float(payload.get("seconds", 0.0)),
            eval_seconds=float(payload.get("eval_seconds", 0.0)),
            **extra,
        )


def load_run(
    model: str | ModelSpec = "cnn",
    overrides: Sequence[str] = (),
    *,
    runs: str | os.PathLike = "runs",
    name: str | None = None,
) -> Run:
    """The trained run of a model spec (or a run folder's name), its model in eval mode on
    the CPU.

    Args:
        model: a spec (``"cnn"``, ``"net.py:Net"``, ``"torchvision.models:resnet18"``)
            or the name of a run folder (``"cnn+layer2.0.padding=1"``). Default: cnn.
        overrides: the ``--set`` what-ifs it was trained with. Default: none.
        runs: the runs folder (``archlab train --out``). Default: ``"runs"``.
        name: the run folder, when it was trained with ``--name``. Default: from the spec.

    Returns:
        A :class:`Run`.

    Example::

        >>> run = archlab.load_run("cnn")   # doctest: +SKIP
        >>> run.normalize                   # doctest: +SKIP
        (0.2860, 0.3530)
    """
    from archlab.training.checkpoint import load_checkpoint
    from archlab.training.runs import check_same_model, find_run, train_hint

    if Path(runs).exists() and not Path(runs).is_dir():  # never advise training into a file
        raise ArchlabError(f"{runs} is a file, not a folder of runs")
    ref = find_run(model, runs, overrides, name)
    spec = ref.spec
    if spec is not None and (spec.overrides or not spec.registered) and not ref.checkpoint.exists():
        from archlab.training.check import check_trainable

        check_trainable(spec)  # never advise training what `train` refuses
    payload = load_checkpoint(ref.checkpoint, hint=train_hint(ref))
    spec = check_same_model(ref, payload)
    return Run.from_checkpoint(ref.folder, payload, spec, weights_into(spec, payload, ref))


def weights_into(spec: ModelSpec, payload: dict, ref, net: nn.Module | None = None) -> nn.Module:
    """``net`` (default: ``spec`` built) given the checkpoint's weights, or one line saying
    they don't fit."""
    if net is None:
        net = spec.build()
    try:
        net.load_state_dict(payload["state_dict"])
    except (RuntimeError, KeyError, TypeError) as exc:
        from archlab.training.runs import RunRef, train_command

        command = train_command(RunRef(ref.runs, ref.name, spec))
        raise ArchlabError(
            f"{ref.checkpoint} does not fit the {spec.label} architecture; "
            + (f"retrain with `{command}`" if command else "train it again"),
            1,
        ) from exc
    return net


def as_run(run: Run | str | ModelSpec, runs: str | os.PathLike = "runs") -> Run:
    """``run`` itself, or the run a spec or run-folder name names under ``runs``."""
    if isinstance(run, Run):
        return run
    if isinstance(run, nn.Module):
        raise ArchlabError(
            "this analysis needs a trained run (its model and how its inputs were "
            "normalised): pass archlab.load_run(...) or what archlab.train(...) returned"
        )
    if not isinstance(run, (str, ModelSpec)):
        raise ArchlabError(
            f"a run is a Run, a spec or a run folder's name (e.g. 'cnn'), not {type(run).__name__}"
        )
    if not isinstance(runs, (str, os.PathLike)):
        raise ArchlabError(f"runs={runs!r}: give the runs folder as a path, e.g. 'runs'")
    return load_run(run, runs=runs)


LECTURE_RUNS = ("dnn", "cnn")  # what every analysis of several runs looks at by default


def run_items(models, runs: str | os.PathLike = "runs") -> list:
    """The runs an analysis of several runs looks at, named and checked but not loaded:
    ``models`` is one item or a list of them, each a :class:`Run`, a spec, a run folder's
    name or a group (``lecture``, ``zoo``, ``all``: its models), groups expanded; a name
    with no run folder is refused here, before any run is loaded.

    Example:

        >>> run_items("lecture", "runs")  # doctest: +SKIP
        ['dnn', 'cnn']
    """
    from archlab.models.spec import expand_run_names
    from archlab.training.runs import find_run

    items = [models] if isinstance(models, (str, Run, ModelSpec)) else list(models)
    found: list = []
    for item in items:
        found += expand_run_names([item]) if isinstance(item, str) else [item]
    if not found:
        raise ArchlabError("models: name at least one trained run (default: dnn and cnn)")
    for item in found:
        if not isinstance(item, (Run, nn.Module, str, ModelSpec)):
            raise ArchlabError(
                f"models: {item!r} is not a run; give Run objects, specs, groups or run "
                "folder names"
            )
        if not isinstance(item, (Run, nn.Module)):
            find_run(item, runs)
    return found


def as_runs(models, runs: str | os.PathLike = "runs") -> list[Run]:
    """:func:`run_items`, each loaded (a :class:`Run` stays itself).

    Example:

        >>> [r.name for r in as_runs("lecture", "runs")]  # doctest: +SKIP
        ['dnn', 'cnn']
    """
    return [as_run(item, runs) for item in run_items(models, runs)]


def held_out_note(k: int | None) -> str:
    """What a count of test images is over: ``""`` for all ten classes, else
    ``" (9 classes, Shirt held out)"``."""
    if k is None:
        return ""
    from archlab.training.data import CLASSES

    return f" ({len(CLASSES) - 1} classes, {CLASSES[k]} held out)"


def shared_data(loaded: Sequence[Run], data):
    """The test and training data several runs are judged on together: ``data`` without
    the class they all held out (:meth:`Run.own_data`), so that one table's accuracies
    are over the classes the runs were trained on.

    Args:
        loaded: the runs.
        data: a :class:`~archlab.FashionMNIST`.

    Returns:
        A :class:`~archlab.FashionMNIST`. Runs that held out different classes (or one
        held one out and another none) raise :class:`ArchlabError`: their accuracies would
        be over different images.
    """
    held = {run.held_out for run in loaded}
    if len(held) > 1:
        from archlab.training.data import CLASSES

        said = ", ".join(
            f"{r.name}: {'none' if r.held_out is None else CLASSES[r.held_out]}" for r in loaded
        )
        raise ArchlabError(
            f"these runs held out different classes ({said}), so their test sets differ; "
            "look at them one at a time"
        )
    return loaded[0].own_data(data) if loaded else data
