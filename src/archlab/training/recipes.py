"""Training recipes and a run's settings: the one place their descriptions live.

The CLI's help, the README and ``archlab train``'s first line all read these texts.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, fields

from archlab.errors import ArchlabError
from archlab.training.stopping import TARGET_CONFIDENCE


@dataclass(frozen=True)
class Recipe:
    """How the data is fed and the learning rate moves; the architecture never changes."""

    name: str
    shuffle: bool
    normalize: bool
    schedule: str  # "constant" or "cosine"
    summary: str  # one line, for the log
    explanation: str  # a paragraph, for --help and the docs
    # the fast recipe's tricks (archlab.training.speed); the lecture's recipes leave them off
    pad: int | None = None  # random crops of up to pad pixels (0: none); None: no augmentation
    flip: bool = False  # with pad: alternating horizontal flips too (airbench's)
    label_smoothing: float = 0.0  # CrossEntropyLoss(label_smoothing=...)
    tta: bool = False  # evaluate the mean probabilities of the image and its mirror image
    # the run's final test accuracy read over the image shifted by up to this many pixels
    # ((2k + 1)² views; the log points before read the image alone) (0: none)
    shift_tta: int = 0
    ema: float | None = None  # evaluate (and keep) an EMA of the weights with this decay
    # forward passes in bfloat16 autocast where the device computes bfloat16 natively
    # (archlab.training.speed.bf16_native); elsewhere float32, unchanged
    bf16: bool = False
    # a fresh run's first convolution starts as whitening filters of the training images'
    # patches (archlab.training.whiten)
    whiten: bool = False
    defaults: tuple = ()  # the recipe's own (setting, value) defaults, e.g. (("epochs", 8),)


RECIPES = {
    "careful": Recipe(
        "careful",
        shuffle=True,
        normalize=True,
        schedule="cosine",
        summary="shuffled every epoch, inputs normalised by the training set's mean and std, "
        "learning rate decaying to 0 along a cosine",
        explanation="(default) three changes, each measured to pay on the lecture's models: "
        "shuffling every epoch (the lecture's file order gives the same batches each epoch: "
        "+0.2-1.5 points), inputs normalised by the training set's mean and std (0.2860, "
        "0.3530), and the learning rate decaying to 0 along a cosine over the run "
        "(+0.8-1.5 points).",
    ),
    "lecture": Recipe(
        "lecture",
        shuffle=False,
        normalize=False,
        schedule="constant",
        summary="the lecture exactly: pixels in [0, 1], file order, constant learning rate",
        explanation="the lecture exactly: pixels scaled to [0, 1], the data in file order "
        "every epoch, constant learning rate.",
    ),
    "onecycle": Recipe(
        "onecycle",
        shuffle=True,
        normalize=True,
        schedule="onecycle",
        summary="as careful, but the learning rate rises for the first 25% of the run from "
        "peak/25 to the peak, then falls to peak/1e4 along a cosine",
        explanation="as careful (shuffled, normalised), with Smith's one-cycle schedule: the "
        "rate rises linearly from peak/25 to the peak over the first 25% of the iterations, "
        "then falls to peak/10,000 along a cosine. The peak is --lr; without --lr it is "
        "the rate `archlab lr-find` suggests for the model (a short sweep before training).",
    ),
    "fast": Recipe(
        "fast",
        shuffle=True,
        normalize=True,
        schedule="warmup",
        summary="the speedrun: the first conv started as whitening filters of the "
        "images' patches, batch 200, learning rate rising linearly to 3e-3 over the first "
        "20% of the run and falling linearly to 0, label smoothing 0.1, an EMA of the "
        "weights, bfloat16 steps where the hardware has them; 4 epochs unless told",
        explanation="the speedrun (benchmarks/speedrun.py measures each trick): as careful "
        "(shuffled, normalised), with the first convolution started as whitening filters of "
        "the training images' patches and their negatives (airbench's start; the filters go "
        "on training), batch 200 and the learning rate rising linearly from 0 to 3e-3 over "
        "the first 20% of the iterations and falling linearly to 0, label smoothing 0.1, "
        "the weights' exponential average (decay 0.99) evaluated and kept, and the training "
        "steps in bfloat16 autocast on hardware that has it (AVX-512 BF16 or AMX CPUs, "
        "recent GPUs; elsewhere float32); 4 epochs (the shortest of 4, 5 and 6 in which "
        "speednet's held-out readings made --target 93 90% sure for each of seeds 0-4). No "
        "flips: Fashion-MNIST's shoes all point one way. Built for speednet (group "
        "speedrun); --epochs, --batch-size and --lr override its defaults. The whitening "
        "replaces the first conv's starting filters: a model that loads trained filters "
        "there should keep it frozen (a frozen conv is left alone) or use another recipe.",
        label_smoothing=0.1,
        ema=0.99,
        bf16=True,
        whiten=True,
        defaults=(("epochs", 4), ("batch_size", 200), ("lr", 3e-3)),
    ),
    "fast-long": Recipe(
        "fast-long",
        shuffle=True,
        normalize=True,
        schedule="warmup",
        summary="the fast recipe with random 2-pixel crops, for long runs; the final test "
        "accuracy over 9 shifted views; 20 epochs unless told",
        explanation="the fast recipe (batch 200, warmup to 3e-3 and linear decay, label "
        "smoothing 0.1, EMA, bfloat16 where native) with each image shifted by up to 2 "
        "pixels every epoch (black fill), for runs long enough to need it: in 5 epochs "
        "the crops cost accuracy, in 20 they pay (the zoo's resnet: 94 % in 20 epochs). "
        "The run's final test accuracy is read as the mean probabilities of the image "
        "shifted by -1, 0 and 1 pixel in x and y (9 views; chosen on held-out images: "
        "94.10 → 94.74 % for resnet, seed 0); the log points before it, and the other "
        "commands, read the image alone. 20 epochs. It starts at random, not whitened as "
        "the fast recipe does: its 94 % was measured before the whitening joined that "
        "recipe, and is kept as measured.",
        pad=2,
        shift_tta=1,
        label_smoothing=0.1,
        ema=0.99,
        bf16=True,
        defaults=(("epochs", 20), ("batch_size", 200), ("lr", 3e-3)),
    ),
}

# with --target and no --validation, the last this-many training images are held out
TARGET_VALIDATION = 5_000

# the largest seed the shuffling generator takes (seed · 1,000,003 + epoch < 2**63)
MAX_SEED = (2**63 - 1) // 1_000_003 - 1_000


@dataclass
class TrainConfig:
    """Everything that determines a run's numbers; stored in its checkpoint."""

    model: str  # the run's name
    recipe: str = "careful"
    epochs: int = 5
    batch_size: int = 100
    lr: float = 1e-3
    seed: int = 0
    log_every: int = 500
    # the iteration a warm restart began at: a finished run given more epochs runs a new
    # cosine from lr over the added iterations (0: one schedule over the whole run)
    restart: int = 0
    # on CUDA, deterministic kernels (a seed reproduces the run) or the fastest ones
    # (archlab.training._cuda); the CPU's are deterministic either way
    deterministic: bool = True
    # the last this-many training images are held out, never trained on: the images a
    # calibration fits its temperature on (0: train on all 60,000, as the lecture does)
    validation: int = 0
    # the class (0-9) the run never saw, in training or in its test accuracy (None: all ten)
    held_out: int | None = None
    # intermediate states kept at log-spaced iterations in RUN/snapshots/ (0: none;
    # archlab.training.snapshots)
    snapshots: int = 0
    # stop at the first evaluation on the validation images (every half epoch) that makes
    # it this likely (target_confidence, archlab.training.stopping) that the accuracy in
    # percent reached this; the test set is read once, at the stop
    target: float | None = None
    target_confidence: float = TARGET_CONFIDENCE

    @classmethod
    def from_dict(cls, values: dict) -> TrainConfig:
        """The config a checkpoint recorded; keys this version does not know are refused."""
        if not isinstance(values, dict):
            raise ArchlabError("the checkpoint has no training settings", 1)
        known = {f.name for f in fields(cls)}
        if values.get("target") is not None and "target_confidence" not in values:
            values = {**values, "target_confidence": 0.5}  # before 0.9: the plain rule
        unknown = sorted(set(values) - known)
        if unknown:
            raise ArchlabError(
                f"the checkpoint has settings this archlab does not know ({', '.join(unknown)}); "
                "it was written by a newer archlab: upgrade, or train afresh",
                1,
            )
        try:
            config = cls(**values)
        except TypeError as exc:
            raise ArchlabError(f"the checkpoint's settings are incomplete: {exc}", 1) from exc
        config.validate()
        return config

    def validate(self) -> None:
        """Refuse a setting out of range, naming it as Python does (``epochs=0``) and, for
        the command line, as its flag (``--epochs 0``)."""
        if self.recipe not in RECIPES:
            raise setting_error("recipe", self.recipe, f"choose one of {', '.join(RECIPES)}")
        checks = [
            ("epochs", 1, 10_000, "train for 1 to 10,000 epochs"),
            ("batch_size", 1, 60_000, "use a batch of 1 to 60,000"),
            ("log_every", 1, 10**9, "use at least 1"),
            ("seed", 0, MAX_SEED, f"use a seed from 0 to {MAX_SEED:,}"),
            ("validation", 0, 50_000, "hold out 0 to 50,000 of the 60,000 training images"),
        ]
        for name, low, high, advice in checks:
            check_int(name, getattr(self, name), low, high, advice)
        if not isinstance(self.deterministic, bool):
            raise ArchlabError(f"deterministic={self.deterministic!r}: give True or False")
        if self.held_out is not None:
            check_int("hold_out", self.held_out, 0, 9, HOLD_OUT_ADVICE)
        if self.snapshots != 0:
            check_int("snapshots", self.snapshots, 2, MAX_SNAPSHOTS, SNAPSHOTS_ADVICE)
        if not (
            isinstance(self.lr, (int, float))
            and not isinstance(self.lr, bool)
            and self.lr > 0
            and math.isfinite(self.lr)
        ):
            raise setting_error("lr", self.lr, "the learning rate must be a positive number")
        if self.target is not None:
            if not (
                isinstance(self.target, (int, float))
                and not isinstance(self.target, bool)
                and 0 < self.target < 100
            ):
                raise setting_error(
                    "target", self.target, "give an accuracy in percent, above 0 and below 100"
                )
            if self.validation == 0:
                raise spoken(
                    "target= stops on held-out validation images; give validation > 0 "
                    f"(default with a target: {TARGET_VALIDATION:,})",
                    "--target stops on held-out validation images; give --validation above "
                    f"0 (default with --target: {TARGET_VALIDATION:,})",
                )
        c = self.target_confidence
        if not (isinstance(c, (int, float)) and not isinstance(c, bool) and 0.5 <= c < 1):
            raise setting_error(
                "target_confidence", c, "give a probability from 0.5 (the plain rule) below 1"
            )


HOLD_OUT_ADVICE = "name a class by its number 0-9 or its name (e.g. 6 or Shirt)"
# `train --snapshots N` keeps 2 (the first step and the last) to this many states
MAX_SNAPSHOTS = 10_000
SNAPSHOTS_ADVICE = f"keep 2 to {MAX_SNAPSHOTS:,} snapshots"

# `train --watch N` records every N iterations: 1 (every step) to a million
MAX_WATCH = 10**6


@dataclass(frozen=True)
class TrainSettings:
    """What a caller of :func:`archlab.train` or ``archlab train`` asks for: the one list
    of training settings. ``train()``'s keywords and the command's options both fill it.

    The first eight, and ``hold_out`` and ``snapshots``, are a run's numbers
    (:class:`TrainConfig`; ``hold_out``, a class number or name, is recorded as its
    ``held_out`` number); None means the recipe's default, or on ``resume`` the
    checkpoint's. The rest say how it runs, and are documented at :func:`archlab.train`.
    """

    recipe: str | None = None
    epochs: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    seed: int | None = None
    log_every: int | None = None
    deterministic: bool | None = None
    validation: int | None = None
    device: str = "auto"
    data_dir: str | os.PathLike | None = None
    resume: bool = False
    reuse: bool = False
    max_iterations: int | None = None
    watch: int | None = None
    figures: bool = True
    progress: bool | None = None
    hold_out: int | str | None = None
    snapshots: int | None = None
    target: float | None = None
    target_confidence: float | None = None

    def given(self) -> dict:
        """The run's numbers that were given (not None), by :class:`TrainConfig` field."""
        names = [f.name for f in fields(TrainConfig) if f.name not in ("model", "restart")]
        values = {k: getattr(self, SETTING_OF.get(k, k)) for k in names}
        if values["held_out"] is not None:
            values["held_out"] = held_out_class(values["held_out"])
        return {k: v for k, v in values.items() if v is not None}

    def config(self, name: str) -> TrainConfig:
        """The config of a fresh run named ``name`` (checked by :meth:`validate`): the
        settings given, else the recipe's own defaults, else :class:`TrainConfig`'s; with
        a ``target`` and no ``validation``, :data:`TARGET_VALIDATION` images held out."""
        given = self.given()
        recipe = RECIPES.get(given.get("recipe", "careful"))
        values = {**dict(recipe.defaults if recipe is not None else ()), **given}
        if values.get("target") is not None and "validation" not in values:
            values["validation"] = TARGET_VALIDATION
        return TrainConfig(name, **values)

    def validate(self) -> None:
        """Check every setting given, before anything is read or written."""
        self.config("check").validate()
        if self.target_confidence is not None and self.target is None and not self.resume:
            raise spoken(
                "target_confidence= says how sure a target run stops; give target= too",
                "--target-confidence says how sure a --target run stops; give --target too",
            )
        if self.watch is not None:
            check_int(
                "watch", self.watch, 1, MAX_WATCH, f"record every 1 to {MAX_WATCH:,} iterations"
            )
        if self.max_iterations is not None:
            check_int("max_iterations", self.max_iterations, 1, 10**12, "stop after at least 1")
        if not isinstance(self.device, str):
            raise ArchlabError(f"device={self.device!r}: give a device name such as 'cpu'")


# a TrainConfig field filled by a setting of another name: the setting asks (hold_out=6),
# the config records what was done (held_out=6)
SETTING_OF = {"held_out": "hold_out"}


def held_out_class(value: int | str) -> int:
    """The class number a ``hold_out`` setting names: a number 0-9 (also as text, "6") or
    a class name, any case ("Shirt", "ankle boot", "T-shirt/top" or "T-shirt-top").

    Example:

        >>> held_out_class(6), held_out_class("shirt"), held_out_class("Ankle-boot")
        (6, 6, 9)
    """
    from archlab.training.data import CLASSES

    if isinstance(value, str):
        text = value.strip()
        if text.isdigit():
            value = int(text)
        else:
            names = {c.lower(): i for i, c in enumerate(CLASSES)}
            names |= {safe_class_name(c).lower(): i for i, c in enumerate(CLASSES)}
            if text.lower() in names:
                return names[text.lower()]
            advice = f"{HOLD_OUT_ADVICE}; the classes: {', '.join(CLASSES)}"
            raise setting_error("hold_out", value, advice)
    check_int("hold_out", value, 0, len(CLASSES) - 1, HOLD_OUT_ADVICE)
    return value


def safe_class_name(name: str) -> str:
    """A class name as a run folder's name can carry it: ``T-shirt/top`` → ``T-shirt-top``."""
    return name.replace("/", "-").replace(" ", "-")


def flag(name: str) -> str:
    """A setting's command-line flag: ``batch_size`` → ``--batch-size``."""
    return "--" + name.replace("_", "-")


def spoken(python: str, cli: str, exit_code: int = 2) -> ArchlabError:
    """One error worded for Python (arguments: ``lr=0.5``) and for the command line (its
    flags: ``--lr 0.5``), which the CLI prints."""
    return ArchlabError(python, exit_code, cli_message=cli)


def setting_error(name: str, value: object, advice: str, exit_code: int = 2) -> ArchlabError:
    """``epochs=0: ADVICE`` for Python, ``--epochs 0: ADVICE`` on the command line."""
    shown = repr(value) if isinstance(value, str) else str(value)
    return spoken(f"{name}={value!r}: {advice}", f"{flag(name)} {shown}: {advice}", exit_code)


def check_int(name: str, value: object, low: int, high: int, advice: str) -> None:
    """Refuse ``value`` unless it is an int (not a bool) from ``low`` to ``high``."""
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise setting_error(name, value, advice)


def cosine_lr(base: float, iteration: int, total: int) -> float:
    """The learning rate for step ``iteration`` (0-based) of ``total``: from ``base`` down
    to 0 along half a cosine (the closed form of ``CosineAnnealingLR`` with eta_min 0).

    Example:

        >>> cosine_lr(1e-3, 0, 100), cosine_lr(1e-3, 50, 100), cosine_lr(1e-3, 100, 100)
        (0.001, 0.0005, 0.0)
    """
    return base * 0.5 * (1.0 + math.cos(math.pi * iteration / total))


def onecycle_lr(peak: float, iteration: int, total: int, warmup: float = 0.25) -> float:
    """The one-cycle rate for step ``iteration`` (0-based) of ``total``: linear from
    ``peak / 25`` to ``peak`` over the first ``warmup`` of the run, then half a cosine
    down to ``peak / 1e4`` (``torch.optim.lr_scheduler.OneCycleLR``'s shape, linear rise).

    Example:

        >>> onecycle_lr(0.01, 0, 100), onecycle_lr(0.01, 25, 100), onecycle_lr(0.01, 100, 100)
        (0.0004, 0.01, 1e-06)
    """
    up = max(1, round(warmup * total))
    if iteration < up:
        return peak / 25 + (peak - peak / 25) * iteration / up
    low = peak / 1e4
    t = min(1.0, (iteration - up) / max(1, total - up))
    return low + (peak - low) * 0.5 * (1.0 + math.cos(math.pi * t))


def warmup_lr(peak: float, iteration: int, total: int, warmup: float = 0.2) -> float:
    """The fast recipe's rate for step ``iteration`` (0-based) of ``total``: rising
    linearly to ``peak`` over the first ``warmup`` of the run (the first step at
    ``peak / up``, never 0), then falling linearly to 0 at ``total``.

    Example:

        >>> warmup_lr(1.0, 0, 100), warmup_lr(1.0, 19, 100), warmup_lr(1.0, 60, 100)
        (0.05, 1.0, 0.5)
    """
    up = max(1, round(warmup * total))
    if iteration < up:
        return peak * (iteration + 1) / up
    return peak * max(0.0, (total - iteration) / max(1, total - up))


def scheduled_lr(schedule: str, base: float, iteration: int, total: int) -> float:
    """The rate of ``schedule`` ("constant", "cosine", "onecycle", "warmup") at
    ``iteration``."""
    if schedule == "warmup":
        return warmup_lr(base, iteration, total)
    if schedule == "cosine":
        return cosine_lr(base, iteration, total)
    if schedule == "onecycle":
        return onecycle_lr(base, iteration, total)
    return base
