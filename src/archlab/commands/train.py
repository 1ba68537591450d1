"""archlab train: train any models on Fashion-MNIST, with checkpoints and curves."""

from __future__ import annotations

import argparse

NAME = "train"
SUMMARY = "train models on Fashion-MNIST (the lecture's two, the zoo, or your own)"


def description() -> str:
    import textwrap

    from archlab.training.recipes import RECIPES

    recipes = "\n".join(
        textwrap.fill(
            r.explanation, 88, initial_indent=f"  {r.name:<9} ", subsequent_indent=" " * 12
        )
        for r in RECIPES.values()
    )
    return f"""\
Train models on the real Fashion-MNIST held in memory: Adam, batch 100, cross-entropy,
5 epochs = 3,000 iterations, one recipe, seed and data for every model. Every 500
iterations it prints the lecture's line, Iteration: 500, Loss: 0.5452, Accuracy: 83.27%,
where Loss is the mean training loss since the last line and Accuracy is measured on all
10,000 test images in eval mode (the lecture measured with dropout still on).

MODEL is a registered name (`archlab models`), a group (lecture: dnn and cnn, the
default; zoo: the classic architectures; all), path/to/file.py:Class, package.module:Class
or a factory 'package.module:function(num_classes=10)', or a run folder's name (its
checkpoint says which model it trained). Each model is first traced on one
1×28×28 image: one that does not fit, or does not output 10 scores, is refused (exit 1).
Each run lands in <out>/<run name>/ (checkpoint.pt, history.json, curves.png), the name
derived from the spec and its --set what-ifs (cnn+layer2.0.padding=1) or given by --name;
--hold-out 6 adds -no-Shirt. --snapshots N also keeps N states of the model at log-spaced
iterations in <out>/<run name>/snapshots/ (it-000123.pt and index.json).

recipes:
{recipes}

Ctrl-C (or SIGTERM) saves a checkpoint first; --resume continues it to the same result as
an uninterrupted run; --resume with more --epochs continues a finished run (a warm
restart). Without --resume a run trains afresh (the recipe's settings, not the old run's).
A fresh run or a warm restart keeps the previous run's files as *.prev.* (one generation:
a second fresh run replaces them). A run of
100 iterations or more that learned nothing (test accuracy at chance level, or a training
loss that ended above its start) exits 1 and is kept as *.failed.*, beside the previous
run's checkpoint.pt.
"""


def _default(setting: str) -> str:
    """``(default: 5; fast: 4, fast-long: 20)``: TrainConfig's value and the recipes' own."""
    from dataclasses import fields

    from archlab.training.recipes import RECIPES, TrainConfig

    value = next(f.default for f in fields(TrainConfig) if f.name == setting)
    own = [
        f"{r.name}: {dict(r.defaults)[setting]:g}"
        for r in RECIPES.values()
        if setting in dict(r.defaults)
    ]
    return f"(default: {value:g}{'; ' if own else ''}{', '.join(own)})"


def add_arguments(p: argparse.ArgumentParser) -> None:
    from archlab.commands._options import data_dir_option, device_option, set_option
    from archlab.training.recipes import MAX_SEED, RECIPES

    p.add_argument(
        "models",
        nargs="*",
        metavar="MODEL",
        help="models or groups to train (default: lecture, i.e. dnn and cnn)",
    )
    set_option(p)
    p.add_argument("--name", default=None, help="the run folder's name (one model only)")
    p.add_argument(
        "--recipe",
        choices=list(RECIPES),
        default=None,
        help=f"{', '.join(RECIPES)} (default: careful); see above",
    )
    p.add_argument(
        "--epochs", type=int, default=None, help=f"passes over the data {_default('epochs')}"
    )
    p.add_argument(
        "--batch-size",
        type=int,
        default=None,
        help=f"images per step {_default('batch_size')}",
    )
    p.add_argument("--lr", type=float, default=None, help=f"Adam's learning rate {_default('lr')}")
    p.add_argument(
        "--validation",
        type=int,
        default=None,
        metavar="N",
        help="hold out the last N training images, never trained on (archlab calibration "
        "fits its temperature on them; default: 0, all 60,000 trained on, as the lecture)",
    )
    p.add_argument(
        "--hold-out",
        dest="hold_out",
        default=None,
        metavar="CLASS",
        help="never train on this class, by number or name (6 or Shirt): its images leave "
        "the training and the test set, the test accuracy is over the other 9 classes, and "
        "the run is named <model>-no-<class> (archlab ood asks whether it flags them)",
    )
    p.add_argument(
        "--snapshots",
        type=int,
        default=None,
        metavar="N",
        help="keep N (2 or more) states of the model at log-spaced iterations, the first "
        "step and the last among them, each with its test accuracy on 2,000 test images, "
        "in <out>/<run>/snapshots/ (see them with --snapshot on map, probes, filters and "
        "confusion; default: none)",
    )
    p.add_argument(
        "--target",
        type=float,
        default=None,
        metavar="ACC",
        help="stop at the first evaluation on held-out validation images (every half "
        "epoch) that makes it 90%% sure the accuracy reached ACC percent (--target-"
        "confidence), say the training time to it, then read the test set once (default: "
        "off; with it, --validation defaults to 5000)",
    )
    p.add_argument(
        "--target-confidence",
        type=float,
        default=None,
        metavar="P",
        help="with --target: stop when the validation accuracy's one-sided lower P bound "
        "(Wilson's) reaches the target, not at the first reading that touches it (the "
        "luckiest of many; on 5,000 images near 93%% P=0.9 asks for 0.48 points more); "
        "0.5 is that plain rule (default: 0.9)",
    )
    p.add_argument(
        "--seed",
        type=int,
        default=None,
        help=f"seeds initialisation, shuffling and dropout, 0 to {MAX_SEED:,} (default: 0)",
    )
    p.add_argument(
        "--log-every",
        type=int,
        default=None,
        metavar="N",
        help="evaluate on the test set and print a line every N iterations (default: 500)",
    )
    device_option(p)
    mode = p.add_mutually_exclusive_group()
    mode.add_argument(
        "--deterministic",
        dest="deterministic",
        action="store_const",
        const=True,
        default=None,
        help="on CUDA, deterministic kernels: a seed reproduces the run on the same GPU and "
        "software (the default; the CPU is always deterministic)",
    )
    mode.add_argument(
        "--fast",
        dest="deterministic",
        action="store_const",
        const=False,
        help="on CUDA, the fastest kernels, which may differ from run to run; the run "
        "records the mode",
    )
    data_dir_option(p)
    p.add_argument(
        "--out",
        default="runs",
        help="write <out>/<run>/checkpoint.pt, history.json, curves.png (default: runs)",
    )
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue from <out>/<run>/checkpoint.pt, with its settings",
    )
    p.add_argument(
        "--watch",
        type=int,
        nargs="?",
        const=50,
        default=None,
        metavar="N",
        help="every N iterations (N default 50), record each layer's activation mean, std "
        "and histogram, dead units, gradient norm and update ratio in history.json; see "
        "them with `archlab dynamics` (default: off)",
    )


def run(args: argparse.Namespace) -> int:
    import sys
    from dataclasses import fields

    from archlab.commands._options import echo
    from archlab.training.recipes import TrainSettings
    from archlab.training.runs import resume_command
    from archlab.training.table import TrainSummary
    from archlab.training.train import train_models

    # the options named as TrainSettings' fields; the rest keep their defaults
    given = {f.name: getattr(args, f.name) for f in fields(TrainSettings) if hasattr(args, f.name)}
    settings = TrainSettings(**given)
    results = train_models(
        args.models or ["lecture"], args.set, runs=args.out, name=args.name,
        settings=settings, log=echo,
    )  # fmt: skip
    for result in results:
        if result.interrupted:
            again = resume_command(args.out, result.name)
            if result.finished:  # the stop came as its last step ended: it was saved whole
                echo(
                    f"stopped; {result.name} finished and saved {result.checkpoint}",
                    file=sys.stderr,
                )
                return 130
            echo(
                f"interrupted at iteration {result.iteration:,}; saved {result.checkpoint}"
                + (f"; continue with `{again}`" if again else ""),
                file=sys.stderr,
            )
            return 130
    echo()
    for result in results:
        if result.files:
            echo(f"{result.name}: wrote " + ", ".join(str(p) for p in result.files))
    echo()
    echo(TrainSummary(results))
    return 0
