"""archlab filters: a convolution's kernels as a grid."""

from __future__ import annotations

import argparse

NAME = "filters"
SUMMARY = "the kernels of a convolution as a grid"


def add_arguments(p: argparse.ArgumentParser) -> None:
    from archlab.commands._options import device_option, out_option, run_options

    run_options(p)
    p.add_argument(
        "--layer", default=None, help="a convolution such as layer2.0 (default: the first)"
    )
    out_option(p, "<runs>/<run>/figures/filters-LAYER.png")
    device_option(p)


def run(args: argparse.Namespace) -> int:
    from archlab.analysis.features import filters
    from archlab.commands._options import check_figure_path, echo, figure_path, on_device, save
    from archlab.training.run import load_run

    check_figure_path(args.out)
    run = on_device(load_run(args.model, args.set, runs=args.runs, name=args.name), args.device)
    report = filters(run, args.layer)
    echo(report)
    save(report.plot(), figure_path(args, run.name, f"filters-{report.layer}"))
    return 0
