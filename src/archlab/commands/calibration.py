"""archlab calibration: can each model's confidence be believed?"""

from __future__ import annotations

import argparse

NAME = "calibration"
SUMMARY = "is each model's confidence right? ECE, NLL, Brier, before and after temperature scaling"
DESCRIPTION = (
    "Sort the test images into confidence bins and compare each bin's accuracy with its "
    "confidence: the expected calibration error (equal-width and equal-mass bins), the NLL "
    "and the Brier score, before and after temperature scaling (one temperature per run, "
    "fitted by NLL on the last training images, never on the test set). Prints the table "
    "and writes the reliability diagrams side by side (<out>)."
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    from archlab.analysis._ood_settings import BINS, FIT_IMAGES
    from archlab.commands._options import data_dir_option, models_argument, out_option, runs_option

    models_argument(p)
    p.add_argument("--bins", type=int, default=BINS, help=f"confidence bins (default: {BINS})")
    p.add_argument(
        "--fit-images",
        type=int,
        default=FIT_IMAGES,
        help=f"fit the temperature on the last N training images (default: {FIT_IMAGES})",
    )
    p.add_argument("--json", action="store_true", help="print the numbers as JSON instead")
    runs_option(p)
    out_option(p, "<runs>/calibration.png")
    data_dir_option(p)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from archlab._bounds import check_int
    from archlab.analysis._ood_settings import MAX_BINS
    from archlab.analysis.calibration import calibration
    from archlab.commands._options import check_figure_path, show_report
    from archlab.models.spec import expand_run_names
    from archlab.training.data import load_fashion_mnist

    check_figure_path(args.out)
    check_int("bins", args.bins, 1, MAX_BINS)  # before the data is read
    report = calibration(
        expand_run_names(args.models),
        bins=args.bins,
        fit_images=args.fit_images,
        runs=args.runs,
        data=load_fashion_mnist(args.data_dir),
    )
    return show_report(args, report, Path(args.runs) / "calibration.png")
