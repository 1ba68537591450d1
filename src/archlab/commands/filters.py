"""archlab filters: a convolution's kernels as a grid."""

from __future__ import annotations

import argparse

NAME = "filters"
SUMMARY = "the kernels of a convolution as a grid"


def add_arguments(p: argparse.ArgumentParser) -> None:
    from archlab.commands._options import (
        device_option,
        out_option,
        run_options,
        snapshot_option,
    )

    run_options(p)
    p.add_argument(
        "--layer", default=None, help="a convolution such as layer2.0 (default: the first)"
    )
    out_option(p, "<runs>/<run>/figures/filters-LAYER.png; a snapshot's: filters-LAYER@K.png")
    device_option(p)
    snapshot_option(p)


def run(args: argparse.Namespace) -> int:
    from archlab.analysis.features import filters
    from archlab.commands._options import (
        at_snapshots,
        check_figure_path,
        echo,
        figure_path,
        on_device,
        save,
        snapshot_figure,
    )
    from archlab.training.run import load_run

    check_figure_path(args.out)
    trained = load_run(args.model, args.set, runs=args.runs, name=args.name)
    for run in at_snapshots([trained], args):
        report = filters(on_device(run, args.device), args.layer)
        echo(report)
        path = figure_path(args, run.name, f"filters-{report.layer}")
        save(report.plot(), snapshot_figure(path, run))
    return 0
