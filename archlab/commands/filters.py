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
    from archlab.analysis.features import filter_weights
    from archlab.commands._options import check_figure_path, echo, figure_path, save
    from archlab.training.runs import load_trained_model
    from archlab.viz import plot_filters

    check_figure_path(args.out)
    net, payload = load_trained_model(args.model, args.runs, args.set, args.name, args.device)
    layer, weights = filter_weights(net, args.layer)
    echo(
        f"{layer}: {tuple(weights.shape)} weights, range {float(weights.min()):+.3f} to "
        f"{float(weights.max()):+.3f}"
    )
    save(plot_filters(weights, layer), figure_path(args, payload["run"], f"filters-{layer}"))
    return 0
