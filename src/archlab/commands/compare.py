"""archlab compare: trained runs side by side."""

from __future__ import annotations

import argparse

NAME = "compare"
SUMMARY = "trained models side by side: parameters, MACs, time, accuracy, confusion matrices"
DESCRIPTION = (
    "Evaluate two or more trained runs on the whole test set and put them side by side: "
    "parameters, MACs per image, training time, test accuracy, recall per class, the "
    "confusion matrices (<out>), and accuracy against parameters and MACs "
    "(<out stem>-tradeoff)."
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    from archlab.commands._options import data_dir_option, device_option, out_option, runs_option

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
    device_option(p)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from archlab.analysis.evaluation import compare
    from archlab.commands._options import check_figure_path, echo, save
    from archlab.device import pick_device
    from archlab.models.spec import expand_run_names
    from archlab.training.data import load_fashion_mnist
    from archlab.viz import plot_comparison, plot_tradeoff

    check_figure_path(args.out)
    names = expand_run_names(args.models)
    pick_device(args.device)  # a device that does not exist is named before any work
    comparison = compare(
        names, runs=args.runs, data=load_fashion_mnist(args.data_dir), device=args.device
    )
    echo(comparison)
    out = Path(args.out) if args.out else Path(args.runs) / "compare.png"
    save(plot_comparison(comparison), out)
    save(plot_tradeoff(comparison), out.with_name(f"{out.stem}-tradeoff{out.suffix}"))
    return 0
