"""archlab confusion: confusion matrix, per-class scores and the most confused pairs."""

from __future__ import annotations

import argparse
from pathlib import Path

NAME = "confusion"
SUMMARY = "confusion matrix, per-class precision/recall/F1 and the most confused pairs"


def add_arguments(p: argparse.ArgumentParser) -> None:
    from archlab.commands._options import (
        count_arg,
        data_dir_option,
        device_option,
        runs_option,
        set_option,
    )

    p.add_argument(
        "models",
        nargs="*",
        metavar="MODEL",
        help="trained models or run folders (default: lecture, i.e. dnn and cnn)",
    )
    p.add_argument(
        "--model",
        action="append",
        default=[],
        dest="model_options",
        metavar="MODEL",
        help="the same as a MODEL argument, as the other commands spell it (repeatable)",
    )
    set_option(p)
    p.add_argument(
        "--mistakes",
        type=count_arg(100),
        default=0,
        metavar="N",
        help="also draw the N most confident wrong predictions, 0-100 (default: 0)",
    )
    p.add_argument(
        "--out",
        default=None,
        metavar="FILE",
        help="the confusion matrix to write, .png, .svg or .pdf; with several models one "
        "FILE-<run> each, and --mistakes beside it as FILE-mistakes (default: "
        "<runs>/<run>/figures/confusion.png and mistakes.png)",
    )
    runs_option(p)
    data_dir_option(p)
    device_option(p)


def _figure(args: argparse.Namespace, run: str, stem: str, several: bool):
    """``--out`` (with ``-<run>`` and ``-mistakes`` as needed), else the run's figures."""
    from archlab.commands._options import figure_path

    if not args.out:
        return figure_path(args, run, stem)
    out = Path(args.out)
    tail = (f"-{run}" if several else "") + ("" if stem == "confusion" else f"-{stem}")
    return out.with_name(f"{out.stem}{tail}{out.suffix}")


def run(args: argparse.Namespace) -> int:
    from archlab.analysis.evaluation import evaluate
    from archlab.commands._options import check_figure_path, echo, on_device, save
    from archlab.models.spec import expand_run_names
    from archlab.training.data import load_fashion_mnist
    from archlab.training.run import load_run

    check_figure_path(args.out)
    loaded = [
        on_device(load_run(m, args.set, runs=args.runs), args.device)
        for m in expand_run_names([*args.models, *args.model_options], args.set)
    ]
    data = load_fashion_mnist(args.data_dir)
    several = len(loaded) > 1
    for run in loaded:
        report = evaluate(run, data=data)
        echo(report)
        save(report.plot(), _figure(args, run.name, "confusion", several))
        if args.mistakes:
            save(report.plot_mistakes(args.mistakes), _figure(args, run.name, "mistakes", several))
        echo()
    return 0
