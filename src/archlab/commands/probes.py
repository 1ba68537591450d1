"""archlab probes: linear-probe accuracy per trace row, per run."""

from __future__ import annotations

import argparse

NAME = "probes"
SUMMARY = "where each model makes the classes linearly separable: a linear probe per layer"
DESCRIPTION = (
    "For every row of each run's trace whose output is a feature map or a vector (pooled "
    "to at most 2,048 features by average pooling, standardised), train a logistic "
    "regression on N training images (stratified by class; full-batch L-BFGS, L2 "
    "regulariser) and test it on the test images; raw pixels are the first point. Print "
    "the accuracies and the row with the largest jump; draw accuracy against relative "
    "depth for every run on one axis (<out>)."
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    from archlab.analysis._probe_budget import IMAGES, L2, STEPS
    from archlab.commands._options import (
        data_dir_option,
        models_argument,
        out_option,
        runs_option,
        snapshot_option,
    )

    models_argument(p)
    p.add_argument(
        "--images", type=int, default=IMAGES, help=f"training images per probe (default: {IMAGES})"
    )
    p.add_argument(
        "--test-images", type=int, default=10_000, help="test images (default: 10000, all)"
    )
    p.add_argument(
        "--steps", type=int, default=STEPS, help=f"L-BFGS iterations per probe (default: {STEPS})"
    )
    p.add_argument("--l2", type=float, default=L2, help=f"L2 regulariser (default: {L2:g})")
    p.add_argument("--seed", type=int, default=0, help="which images (default: 0)")
    p.add_argument("--json", action="store_true", help="print the numbers as JSON instead")
    runs_option(p)
    out_option(p, "<runs>/probes.png")
    data_dir_option(p)
    snapshot_option(p)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from archlab.analysis.probes import check_probe_options, probes
    from archlab.commands._options import at_snapshots, check_figure_path, show_report
    from archlab.models.spec import expand_run_names
    from archlab.training.data import load_fashion_mnist

    check_figure_path(args.out)
    check_probe_options(args.images, args.test_images, args.steps, args.l2)
    models = expand_run_names(args.models)
    report = probes(
        at_snapshots(models, args) if args.snapshot is not None else models,
        images=args.images,
        test_images=args.test_images,
        steps=args.steps,
        l2=args.l2,
        seed=args.seed,
        progress=not args.json,
        runs=args.runs,
        data=load_fashion_mnist(args.data_dir),
    )
    return show_report(args, report, Path(args.runs) / "probes.png")
