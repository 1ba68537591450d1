"""archlab activations: the feature maps where each block ends, for one test image."""

from __future__ import annotations

import argparse

NAME = "activations"
SUMMARY = "the feature maps after each block for one test image"


def add_arguments(p: argparse.ArgumentParser) -> None:
    from archlab.commands._options import (
        data_dir_option,
        device_option,
        index_arg,
        out_option,
        run_options,
    )

    p.add_argument(
        "--index", type=index_arg, default=42, help="which test image, 0-9999 (default: 42)"
    )
    run_options(p)
    p.add_argument(
        "--layer",
        action="append",
        default=None,
        help="show this layer's output instead (repeatable; default: where each block ends)",
    )
    out_option(p, "<runs>/<run>/figures/activations-INDEX.png")
    data_dir_option(p)
    device_option(p)


def run(args: argparse.Namespace) -> int:
    from archlab.analysis.features import activations
    from archlab.commands._options import check_figure_path, echo, figure_path, on_device, save
    from archlab.training.data import load_fashion_mnist
    from archlab.training.run import load_run

    check_figure_path(args.out)
    run = on_device(load_run(args.model, args.set, runs=args.runs, name=args.name), args.device)
    data = load_fashion_mnist(args.data_dir)
    report = activations(run, args.index, layers=args.layer, data=data)
    echo(report)
    save(report.plot(), figure_path(args, run.name, f"activations-{args.index}"))
    return 0
