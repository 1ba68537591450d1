"""archlab ood: does each model flag images it was never trained for?"""

from __future__ import annotations

import argparse

NAME = "ood"
SUMMARY = "does each model know what it has not seen? AUROC against digits, flips, noise..."
DESCRIPTION = (
    "Score test images and out-of-distribution images (scikit-learn's digits, test images "
    "flipped, inverted, rotated, Gaussian noise) by max softmax probability, energy and max "
    "logit; print the AUROC and the false-positive rate at 95 % true positives with "
    "bootstrap intervals, write the score histograms (<out>) and the out-of-distribution "
    "images each model is surest about (<out stem>-confident)."
)


def _sets(text: str) -> list[str]:
    from archlab.analysis._ood_settings import SETS

    names = [s.strip() for s in text.split(",") if s.strip()]
    bad = [s for s in names if s not in SETS]
    if bad or not names:
        raise argparse.ArgumentTypeError(f"{text!r}: choose from {','.join(SETS)}")
    return names


def add_arguments(p: argparse.ArgumentParser) -> None:
    from archlab.analysis._ood_settings import BOOTSTRAP, OOD_IMAGES, SETS
    from archlab.commands._options import data_dir_option, models_argument, out_option, runs_option

    models_argument(p)
    p.add_argument(
        "--sets",
        type=_sets,
        default=list(SETS),
        help=f"comma-separated out-of-distribution sets (default: {','.join(SETS)})",
    )
    p.add_argument(
        "--images",
        type=int,
        default=OOD_IMAGES,
        help=f"test images, stratified by class, fixed seed (default: {OOD_IMAGES})",
    )
    p.add_argument(
        "--bootstrap",
        type=int,
        default=BOOTSTRAP,
        help=f"bootstrap resamples for the intervals, 0 for none (default: {BOOTSTRAP})",
    )
    p.add_argument(
        "--held-out",
        metavar="CLASS",
        default=None,
        help="a class the runs were trained without, by number 0-9 or name (6 or Shirt), "
        "as train --hold-out takes it: its test images become the set held-out, the rest "
        "stay in (default: the class the runs record, if any)",
    )
    p.add_argument("--json", action="store_true", help="print the numbers as JSON instead")
    runs_option(p)
    out_option(p, "<runs>/ood.png")
    data_dir_option(p)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from archlab.analysis.ood import ood
    from archlab.commands._options import check_figure_path, show_report
    from archlab.models.spec import expand_run_names
    from archlab.training.data import load_fashion_mnist

    check_figure_path(args.out)
    held_out = None
    if args.held_out is not None:
        from archlab.errors import ArchlabError
        from archlab.training.recipes import HOLD_OUT_ADVICE, held_out_class

        try:
            held_out = held_out_class(args.held_out)
        except ArchlabError:
            raise ArchlabError(f"--held-out {args.held_out!r}: {HOLD_OUT_ADVICE}", 2) from None
    report = ood(
        expand_run_names(args.models),
        sets=args.sets,
        images=args.images,
        resamples=args.bootstrap,
        held_out=held_out,
        runs=args.runs,
        data=load_fashion_mnist(args.data_dir),
    )
    extras = [("confident", report.plot_confident)]
    return show_report(args, report, Path(args.runs) / "ood.png", extras)
