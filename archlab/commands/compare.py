"""archlab compare: trained runs side by side."""

from __future__ import annotations

import argparse

NAME = "compare"
SUMMARY = "trained models side by side: parameters, MACs, time, accuracy, confusion matrices"


def add_arguments(p: argparse.ArgumentParser) -> None:
    from archlab.commands._options import data_dir_option, out_option, runs_option

    p.add_argument(
        "models",
        nargs="*",
        metavar="MODEL",
        help="two or more trained models, groups or run folders such as "
        "cnn+layer2.0.padding=1 (default: lecture, i.e. dnn and cnn)",
    )
    runs_option(p)
    out_option(p, "<runs>/compare.png")
    data_dir_option(p)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from archlab.commands._options import check_figure_path, echo, save
    from archlab.metrics import compare_models
    from archlab.spec import expand_run_names
    from archlab.viz import plot_comparison

    check_figure_path(args.out)
    comparison = compare_models(
        expand_run_names(args.models), runs=args.runs, data_dir=args.data_dir
    )
    echo(comparison)
    save(
        plot_comparison(comparison), Path(args.out) if args.out else Path(args.runs) / "compare.png"
    )
    return 0
