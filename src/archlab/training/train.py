"""Training any model on Fashion-MNIST: :func:`train` one model, ``train_models`` several.

Two recipes (``archlab.training.recipes``), both Adam at lr 1e-3, batch 100, cross-entropy,
5 epochs (3,000 iterations). Each model's run is planned and checked before any model
takes a step (:mod:`archlab.training.plan`: a model that cannot take a 1×28×28 image, or
does not output one score per class, is refused with the shape diagnosis), then trained
by the loop (:mod:`archlab.training.loop`) into its run folder
(:mod:`archlab.training.runs`), and judged at its end: a run that learned nothing is kept
aside as ``*.failed.*``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import replace

from archlab.models.spec import ModelSpec
from archlab.training.data import CLASSES, FashionMNIST, load_fashion_mnist
from archlab.training.loop import Trainer, _Progress, stop_flag
from archlab.training.plan import Finished, TrainPlan, make_plan
from archlab.training.recipes import TrainSettings, spoken
from archlab.training.run import Run
from archlab.training.runs import RunRef, find_run, lock_run


def held_out_ref(ref: RunRef, settings: TrainSettings, name: str | None) -> RunRef:
    """``ref``, its default name given ``-no-<class>`` when a class is held out
    (``cnn-no-Shirt``, ``cnn-no-T-shirt-top``); a name given, or a run folder's, stays."""
    from archlab.training.recipes import safe_class_name

    held_out = settings.given().get("held_out")
    if held_out is None or name is not None or ref.spec is None:
        return ref
    return RunRef(ref.runs, f"{ref.name}-no-{safe_class_name(CLASSES[held_out])}", ref.spec)


def train(
    model: str | ModelSpec,
    overrides: Sequence[str] = (),
    *,
    runs: str | os.PathLike = "runs",
    data: FashionMNIST | None = None,
    name: str | None = None,
    recipe: str | None = None,
    epochs: int | None = None,
    batch_size: int | None = None,
    lr: float | None = None,
    seed: int | None = None,
    log_every: int | None = None,
    deterministic: bool | None = None,
    validation: int | None = None,
    device: str = "auto",
    data_dir: str | os.PathLike | None = None,
    resume: bool = False,
    reuse: bool = False,
    progress: bool | None = None,
    log: Callable[[str], None] = print,
    max_iterations: int | None = None,
    figures: bool = True,
    watch: int | None = None,
    hold_out: int | str | None = None,
    snapshots: int | None = None,
    target: float | None = None,
    target_confidence: float | None = None,
) -> Run:
    """Train one model on Fashion-MNIST, write its files under ``runs/<run name>`` and
    return the trained :class:`~archlab.Run`.

    Files: ``checkpoint.pt`` (atomically, at each epoch end, on Ctrl-C and at the end),
    ``history.json`` (every logged point) and ``curves.png`` (loss and accuracy). A fresh
    run over an earlier one keeps the earlier files as ``checkpoint.prev.pt``,
    ``history.prev.json`` and ``curves.prev.png``.

    Args:
        model: a spec: ``"cnn"``, ``"path/net.py:Net"``, ``"module:factory(k=v)"``...
        overrides: ``--set`` what-ifs such as ``["layer2.0.padding=1"]``. Default: none.
        runs: the runs folder. Default: ``"runs"``.
        data: the dataset in memory. Default: :func:`~archlab.load_fashion_mnist`.
        name: the run folder's name. Default: from the spec (``cnn+layer2.0.padding=1``).
        recipe: ``"careful"``, ``"lecture"`` or ``"onecycle"`` (``archlab.training.recipes``;
            onecycle without ``lr`` peaks at the rate :func:`~archlab.lr_find` suggests).
            Default: careful.
        epochs: passes over the 60,000 training images. Default: 5.
        batch_size: images per step. Default: 100.
        lr: Adam's learning rate. Default: 1e-3.
        seed: seeds initialisation, shuffling and dropout. Default: 0.
        log_every: iterations between test-set evaluations and log lines. Default: 500.
        deterministic: on CUDA, deterministic kernels, so that a seed reproduces the run
            on the same GPU and software; False picks the fastest kernels instead
            (``archlab train --fast``). No effect on the CPU, whose kernels are
            deterministic. Default: True.
        validation: hold out the last this-many training images (0 to 50,000), never
            trained on: :func:`archlab.calibration` fits its temperature on them.
            Default: 0, all 60,000 trained on (as the lecture).
        device: ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"mps"``. Default: auto.
        data_dir: where to find or put the data when ``data`` is None. Default: see
            :func:`~archlab.training.data.default_data_dir`.
        resume: continue from the run's checkpoint; the result equals an uninterrupted
            run with the same seed. A finished run given more ``epochs`` continues with a
            warm restart: a new cosine from the recipe's rate over the added epochs
            (recorded in its settings as ``restart``); the finished run is kept as
            ``checkpoint.prev.pt`` before anything of the continuation is written.
            Default: False.
        reuse: return the finished run already in the folder, trained with these
            settings, instead of training again (notebooks, the docs). Default: False.
        progress: show a progress bar. Default: only when stderr is a terminal.
        log: where the ``Iteration: 500, Loss: ..., Accuracy: ...%`` lines go. Default: print.
        max_iterations: stop after this many iterations (quick demos, benchmarks).
            Default: run all epochs.
        figures: draw ``curves.png`` at the end. Default: True.
        watch: every this many iterations (1 to 1,000,000), record each layer's activation
            statistics, dead units, gradient norm and update ratio in the history
            (:mod:`archlab.training.dynamics`; read by :func:`archlab.dynamics`).
            Default: None, not recorded.
        hold_out: a class never trained on, by number or name (``6`` or ``"Shirt"``):
            its training and test images are left out (:func:`~archlab.without_class`),
            so the run's test accuracy is over the nine other classes; recorded in its
            settings as ``held_out``, which :func:`archlab.ood` reads. The run's default
            name gains ``-no-<class>`` (``cnn-no-Shirt``). Default: None, all ten.
        snapshots: keep this many (2 to 10,000) intermediate states of the model at
            log-spaced iterations, the first step and the last among them, each with its
            test accuracy (:mod:`archlab.training.snapshots`; read by
            :func:`archlab.snapshots`). Default: None, none kept.
        target: stop at the first evaluation on held-out validation images (every half
            epoch) whose accuracy surely reaches this percentage (``target_confidence``),
            log the training time to it, then read the test set once (``archlab train
            speednet --recipe fast --target 93``). Without ``validation``, the last
            5,000 training images are held out. Default: None, train every epoch.
        target_confidence: how sure the validation images must make it that the
            accuracy reached ``target``: a run stops when the one-sided lower bound of
            this confidence (Wilson's) reaches it, 0.5 to stop at the first reading that
            does (:mod:`archlab.training.stopping`). Default: 0.9.

    Returns:
        The trained :class:`~archlab.Run` (``run.interrupted`` after Ctrl-C).

    Example::

        >>> run = archlab.train("cnn", ["layer2.0.padding=1", "fc1.in_features=3136"],
        ...                     epochs=1)  # doctest: +SKIP
        Iteration: 500, Loss: 0.4123, Accuracy: 86.01%
        >>> run.test_accuracy  # doctest: +SKIP
    """
    settings = TrainSettings(
        recipe=recipe,
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        seed=seed,
        log_every=log_every,
        deterministic=deterministic,
        validation=validation,
        device=device,
        data_dir=data_dir,
        resume=resume,
        reuse=reuse,
        max_iterations=max_iterations,
        watch=watch,
        figures=figures,
        progress=progress,
        hold_out=hold_out,
        snapshots=snapshots,
        target=target,
        target_confidence=target_confidence,
    )
    settings.validate()
    ref = held_out_ref(find_run(model, runs, overrides, name), settings, name)
    return _train_plans([make_plan(ref, settings)], data, settings, log)[0]


def train_models(
    models: Sequence[str | ModelSpec],
    overrides: Sequence[str] = (),
    *,
    runs: str | os.PathLike = "runs",
    data: FashionMNIST | None = None,
    name: str | None = None,
    settings: TrainSettings | None = None,
    log: Callable[[str], None] = print,
) -> list[Run]:
    """Train several models on one copy of the data with one recipe, checking them all
    before the first step (``archlab train dnn cnn``).

    Args:
        models: specs (or group names, see :func:`archlab.models.spec.expand_models`).
        overrides: what-ifs applied to every model. Default: none.
        runs, data, name, log: as in :func:`train` (``name`` for one model only).
        settings: everything else :func:`train` takes, as one
            :class:`~archlab.training.recipes.TrainSettings`. Default: the defaults.

    Returns:
        One :class:`~archlab.Run` per model trained; it stops after one was interrupted.

    Example::

        >>> runs = archlab.training.train.train_models(
        ...     ["dnn", "cnn"], settings=TrainSettings(epochs=1))  # doctest: +SKIP
    """
    from archlab.models.spec import expand_run_names

    settings = settings if settings is not None else TrainSettings()
    settings.validate()
    specs = expand_run_names(models, overrides)  # a run folder's name stays a name
    if name and len(specs) > 1:
        raise spoken(
            "name= names one run; train one model with it",
            "--name names one run; train one model with it",
        )
    found = [find_run(s, runs, overrides if isinstance(s, str) else (), name) for s in specs]
    refs = [held_out_ref(ref, settings, name) for ref in found]
    if not settings.resume:
        from archlab.training.runs import named_run

        refs = [named_run(ref) for ref in refs]  # a run folder's name: the spec it records
    folders = [r.folder for r in refs]
    if len(set(folders)) < len(folders):
        raise spoken(
            "two of these models would write the same run folder; train them one at a time "
            "with name=",
            "two of these models would write the same run folder; train them one at a time "
            "with --name",
        )
    plans = [make_plan(ref, settings) for ref in refs]  # every model checked first
    return _train_plans(plans, data, settings, log)


def _train_plans(
    plans: list[TrainPlan | Finished], data, settings: TrainSettings, log
) -> list[Run]:
    """Train each plan in turn on one copy of the data; stop after an interrupted one."""
    results = []
    for plan in plans:
        if isinstance(plan, TrainPlan) and data is None:
            data = load_fashion_mnist(settings.data_dir)
        run = _train_plan(plan, data, settings, log)
        results.append(run)
        if run.interrupted:
            break
    return results


def _train_plan(plan: TrainPlan | Finished, data, settings: TrainSettings, log) -> Run:
    """One plan trained under its folder's lock: the plan's model trains, one snapshot
    of it is written and returned as the :class:`~archlab.Run`."""
    if isinstance(plan, Finished):
        if plan.note:
            log(plan.note)
        return plan.run
    with lock_run(plan.ref.folder):
        if plan.changed():  # another process trained here since it was planned
            plan = make_plan(plan.ref, settings)
            if isinstance(plan, Finished):
                return _train_plan(plan, data, settings, log)
        if plan.find_lr:
            plan = replace(
                plan, config=replace(plan.config, lr=_finder_peak(plan, data, settings, log))
            )
        if plan.warm_restart:
            log(
                f"{plan.ref.name}: continuing a finished run from epoch "
                f"{plan.payload['epoch']} to {plan.config.epochs}, with a warm restart of "
                "the learning-rate schedule"
            )
        if plan.device.type == "cpu":
            from archlab.training._alloc import keep_freed_memory

            keep_freed_memory()
        trainer = Trainer(plan, data, log, settings.progress, settings.watch)
        stop = settings.max_iterations
        stop_at = trainer.total if stop is None else min(trainer.total, stop)
        with stop_flag() as flag:  # a stop asked for during the final save waits for it
            run = _run_and_save(trainer, plan, stop_at, flag, settings)
        if flag["stop"] and not run.interrupted:  # asked for after its last step: it was
            run.interrupted = True  # saved whole, and no further model starts
        return run


def _run_and_save(trainer, plan: TrainPlan, stop_at: int, flag: dict, settings) -> Run:
    """Train, then write the run's files and return it as a :class:`~archlab.Run`."""
    interrupted = trainer.run(stop_at, flag)
    finished = not interrupted and (
        trainer.progress.iteration == trainer.total or trainer.reached_target()
    )
    payload = trainer.snapshot(finished)
    failure = _learned_nothing(trainer.progress) if finished else None
    if failure is not None:
        _refuse_failed_run(trainer, payload, failure, settings.figures)
    files = trainer.save(payload, figures=settings.figures)
    if trainer.keeper is not None and trainer.keeper.entries:
        files = [*files, trainer.keeper.dir / "index.json"]  # and the files it names
    return Run.from_checkpoint(
        plan.ref.folder,
        payload,
        plan.spec,
        trainer.trained_model(),
        device=str(plan.device),
        interrupted=interrupted,
        files=list(files),
    )


# a run this long has had time to learn something: judged at its end
JUDGED_AFTER = 100


def _learned_nothing(progress: _Progress) -> str | None:
    """Why a finished run learned nothing (its test accuracy at chance level, or its
    training loss ending above where it began), or None. Runs shorter than
    ``JUDGED_AFTER`` iterations are not judged: chance is normal after a few steps."""
    if progress.iteration < JUDGED_AFTER:
        return None
    chance = 1 / len(CLASSES)
    accuracy = progress.test_accuracy
    if accuracy is not None and accuracy < 2 * chance:
        return (
            f"its test accuracy {100 * accuracy:.2f}% is chance level "
            f"({100 * chance:.0f}% for {len(CLASSES)} classes)"
        )
    losses = [point["loss"] for point in progress.history.get("train", [])]
    if len(losses) >= 2 and losses[-1] > losses[0]:
        return f"its training loss ended at {losses[-1]:.4g}, above its start ({losses[0]:.4g})"
    return None


def _refuse_failed_run(trainer: Trainer, payload: dict, failure: str, figures: bool) -> None:
    """Keep a run that learned nothing as ``*.failed.*`` beside the previous good run,
    which stays ``checkpoint.pt``, and stop with one line (exit 1)."""
    from archlab.training.runs import keep_failed_run

    ref = trainer.ref
    kept = keep_failed_run(ref.folder, payload, trainer.backed_up, figures)
    if trainer.keeper is not None or trainer.snapshots_moved:
        from archlab.training.snapshots import keep_failed_snapshots

        keep_failed_snapshots(ref.folder, trainer.snapshots_moved)
    current = (
        f"{ref.checkpoint} is still the previous run"
        if ref.checkpoint.is_file()
        else f"no {ref.checkpoint.name} was written"
    )
    text = (
        f"{ref.name} learned nothing: {failure}; its files are kept for inspection as "
        f"{kept[0]} (and {', '.join(p.name for p in kept[1:])}), {current}; try another "
    )
    lr = f"{trainer.config.lr:g}"
    raise spoken(f"{text}lr than {lr}", f"{text}--lr than {lr}", 1)


def _finder_peak(plan: TrainPlan, data, settings: TrainSettings, log) -> float:
    """The one-cycle recipe's peak rate when none is given: what lr-find suggests."""
    from archlab.training.lr_find import lr_find

    found = lr_find(plan.spec, data=data, device=settings.device, data_dir=settings.data_dir)
    if not found.moved:  # no rate to take: the peak would be NaN
        raise spoken(
            f"{plan.ref.name}: lr-find saw the loss never move, so it suggests no one-cycle "
            "peak; give one with lr=",
            f"{plan.ref.name}: lr-find saw the loss never move, so it suggests no one-cycle "
            "peak; give one with --lr",
            1,
        )
    log(
        f"{plan.ref.name}: lr-find suggests {found.suggested:.2g} ({found.rule}): "
        "the one-cycle peak"
    )
    return float(f"{found.suggested:.2g}")
