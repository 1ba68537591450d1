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
    from archlab.analysis.explain import check_index
    from archlab.analysis.features import activations
    from archlab.commands._options import check_figure_path, echo, figure_path, save
    from archlab.training.data import CLASSES, load_fashion_mnist
    from archlab.training.runs import load_trained_model
    from archlab.viz import plot_activations

    check_figure_path(args.out)
    net, payload = load_trained_model(args.model, args.runs, args.set, args.name, args.device)
    data = load_fashion_mnist(args.data_dir)
    check_index(args.index, len(data.test_labels))
    acts = activations(net, data.test_images[args.index], payload.get("normalize"), args.layer)
    for name, a in acts.items():
        echo(f"{name}: {'×'.join(map(str, a.shape))}")
    label = CLASSES[int(data.test_labels[args.index])]
    run_name = payload["run"]
    title = f"{run_name}: activations for test image {args.index} ({label})"
    save(plot_activations(acts, title), figure_path(args, run_name, f"activations-{args.index}"))
    return 0
