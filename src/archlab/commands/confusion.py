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
        snapshot_option,
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
    snapshot_option(p)


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
    from archlab.commands._options import (
        at_snapshots,
        check_figure_path,
        echo,
        on_device,
        save,
        snapshot_figure,
    )
    from archlab.models.spec import expand_run_names
    from archlab.training.data import load_fashion_mnist
    from archlab.training.run import load_run

    check_figure_path(args.out)
    trained = [
        load_run(m, args.set, runs=args.runs)
        for m in expand_run_names([*args.models, *args.model_options], args.set)
    ]
    loaded = [on_device(run, args.device) for run in at_snapshots(trained, args)]
    data = load_fashion_mnist(args.data_dir)
    several = len(trained) > 1
    for run in loaded:
        report = evaluate(run, data=data)
        echo(report)
        path = _figure(args, run.name, "confusion", several)
        save(report.plot(), snapshot_figure(path, run))
        if args.mistakes:
            path = _figure(args, run.name, "mistakes", several)
            save(report.plot_mistakes(args.mistakes), snapshot_figure(path, run))
        echo()
    return 0
