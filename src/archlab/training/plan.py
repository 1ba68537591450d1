"""A training's plan: every decision made and checked once, before the first step.

:func:`make_plan` turns a run folder and the caller's :class:`TrainSettings` into a
:class:`TrainPlan` (the spec, the validated config, the device, the built and checked
model, the checkpoint a resume continues) or, when there is nothing to train, into a
:class:`Finished` run. ``train_models`` makes every model's plan before any model trains,
and hands each plan to the loop (:mod:`archlab.training.loop`) as it is.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch
from torch import nn

from archlab.device import pick_device
from archlab.errors import ArchlabError
from archlab.models.spec import ModelSpec
from archlab.training.check import check_trainable
from archlab.training.checkpoint import load_checkpoint
from archlab.training.recipes import TrainConfig, TrainSettings, spoken
from archlab.training.run import Run, weights_into
from archlab.training.runs import RunRef, check_same_model, train_hint


@dataclass
class TrainPlan:
    """One run to train, decided and checked: nothing in it is looked up again."""

    ref: RunRef  # the run folder, its name and the spec (never None here)
    config: TrainConfig  # validated; the checkpoint's on a resume
    device: torch.device
    model: nn.Module  # built with config.seed on the CPU and traced; it is what trains
    rng: torch.Tensor  # the CPU random state right after building (and materialising) it
    payload: dict | None = None  # the checkpoint a resume continues
    warm_restart: bool = False  # a finished run given more epochs
    find_lr: bool = False  # onecycle without lr: the peak comes from lr-find first
    seen: tuple | None = None  # the checkpoint's identity when planned (see `changed`)

    @property
    def spec(self) -> ModelSpec:
        assert self.ref.spec is not None
        return self.ref.spec

    def changed(self) -> bool:
        """Whether the run folder's checkpoint is not the one this plan read: another
        process trained into the folder since (checked again under the folder's lock)."""
        return _identity(self.ref.checkpoint) != self.seen


@dataclass
class Finished:
    """A run with nothing to train: reused, or resumed with no more epochs."""

    run: Run
    note: str | None = None  # the line to log when its turn comes


def _identity(path: Path) -> tuple | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns)


def make_plan(ref: RunRef, settings: TrainSettings) -> TrainPlan | Finished:
    """The plan of one run, or the finished run there is nothing to do for.

    Args:
        ref: the run folder and the spec to train in it (None: the spec its checkpoint
            records).
        settings: what the caller asked for, already validated
            (:meth:`TrainSettings.validate`).

    Returns:
        A :class:`TrainPlan` whose model is built and checked, or a :class:`Finished`
        run (reused, or resumed with no more epochs). Anything that would stop the run
        raises :class:`~archlab.ArchlabError` here, before anything is written.
    """
    seen = _identity(ref.checkpoint)
    if settings.reuse and not settings.resume:
        reused = _reusable(ref, settings)
        if reused is not None:
            return Finished(reused)
    if settings.resume:
        return _resume_plan(ref, settings, seen)
    if ref.spec is None:  # a run folder's name: train the spec it records
        ref = _named(ref)
    config = settings.config(ref.name)
    refuse_other_model(ref)
    device = pick_device(settings.device)
    model, rng = _checked_model(ref.spec, config, device)
    find_lr = config.recipe == "onecycle" and settings.lr is None
    return TrainPlan(ref, config, device, model, rng, find_lr=find_lr, seen=seen)


def _named(ref: RunRef) -> RunRef:
    from archlab.training.runs import named_run

    return named_run(ref)


def _checked_model(spec: ModelSpec, config: TrainConfig, device: torch.device):
    """The model built as its run starts it (seeded with the run's seed), checked by one
    trace, and the random state after it: the loop starts from that state, so the
    numbers are those of a model built just before its first step."""
    if device.type == "cuda":
        from archlab.training._cuda import prepare

        prepare(device, config.deterministic)  # before the first cuBLAS call
    torch.manual_seed(config.seed)
    model = check_trainable(spec, spec.build())  # the trace materialises a lazy model
    return model, torch.get_rng_state()


def _resume_plan(ref: RunRef, settings: TrainSettings, seen) -> TrainPlan | Finished:
    if ref.spec is not None and not ref.checkpoint.exists():
        check_trainable(ref.spec)  # never advise training what `train` refuses
    payload = load_checkpoint(ref.checkpoint, hint=train_hint(ref))
    spec = check_same_model(ref, payload, training=True)
    ref = RunRef(ref.runs, ref.name, spec)
    config = resume_config(payload, settings.given())
    device = pick_device(settings.device)
    warm = bool(payload.get("finished"))
    if warm and config.epochs == payload["config"]["epochs"]:
        note = (
            f"{ref.name}: already finished at iteration {payload['iteration']:,}; "
            "nothing to resume (give more --epochs to continue it)"
        )
        run = Run.from_checkpoint(
            ref.folder, payload, spec, weights_into(spec, payload, ref), device=str(device)
        )
        return Finished(run, note)
    model, rng = _checked_model(spec, config, device)
    if warm:
        weights_into(spec, payload, ref, model)  # its weights must still fit, as on every load
        payload = {**payload, "finished": False, "config": asdict(config)}
    return TrainPlan(ref, config, device, model, rng, payload, warm_restart=warm, seen=seen)


def _reusable(ref: RunRef, settings: TrainSettings) -> Run | None:
    """The run in ``ref``'s folder when it was trained with these settings as far as
    asked: finished, or stopped at ``max_iterations``."""
    if not ref.checkpoint.is_file():
        return None
    try:
        payload = load_checkpoint(ref.checkpoint)
        spec = check_same_model(ref, payload)
    except ArchlabError:
        return None  # damaged, or another model's: training says why
    stop = settings.max_iterations
    if not (payload.get("finished") or (stop is not None and payload.get("iteration") == stop)):
        return None
    config = payload.get("config") or {}
    if any(config.get(k) != v for k, v in settings.given().items()):
        return None
    device = str(pick_device(settings.device))
    return Run.from_checkpoint(
        ref.folder, payload, spec, weights_into(spec, payload, ref), device=device
    )


def refuse_other_model(ref: RunRef) -> None:
    """A fresh run may replace an earlier run of the same spec, never another model's."""
    if not ref.checkpoint.is_file():
        return
    try:
        payload = load_checkpoint(ref.checkpoint)
    except ArchlabError:
        return  # a damaged file: the new run replaces it (the old one is kept as .prev)
    check_same_model(ref, payload, training=True)


def resume_config(payload: dict, given: dict) -> TrainConfig:
    """The checkpoint's config; more ``epochs`` for a finished run make a warm restart,
    any other setting that differs is refused."""
    config = TrainConfig.from_dict(payload.get("config"))
    more = given.get("epochs")
    if payload.get("finished") and more is not None and more > config.epochs:
        # a finished run continued: a warm restart at the iteration it finished
        config = replace(config, epochs=more, restart=int(payload["iteration"]))
        given = {**given, "epochs": None}
    for key, value in given.items():
        if value is not None and getattr(config, key) != value:
            was = getattr(config, key)
            more_ok = " (a finished run can be given more {})" if key == "epochs" else ""
            tail = "; drop that {} or start afresh without {}"
            raise spoken(
                f"resume=True: the checkpoint was trained with {key}={was}, not {value}"
                + more_ok.format("epochs")
                + tail.format("argument", "resume=True"),
                f"--resume: the checkpoint was trained with {key}={was}, not {value}"
                + more_ok.format("--epochs")
                + tail.format("option", "--resume"),
            )
    return config
