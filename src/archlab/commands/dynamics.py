"""archlab dynamics: what happened inside each layer while a run trained (train --watch)."""

from __future__ import annotations

import argparse

NAME = "dynamics"
SUMMARY = "activation histograms, dead units, gradient norms and update ratios over training"
DESCRIPTION = (
    "Show the training dynamics that `archlab train --watch` recorded: per layer, the "
    "histogram of |activation| over training (the figure, one column per run: compare two "
    "runs side by side), and the last mean, std, dead fraction, gradient norm and update "
    "ratio (the table). E.g. the CNN against the CNN without its BatchNorm layers: "
    "`archlab train cnn cnn --set layer1.1=Identity --set layer2.1=Identity --watch` then "
    "`archlab dynamics cnn cnn+layer1.1=Identity+layer2.1=Identity`."
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    from archlab.commands._options import models_argument, out_option, runs_option

    models_argument(p)
    runs_option(p)
    out_option(p, "<runs>/dynamics.png")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from archlab.analysis.dynamics import dynamics
    from archlab.commands._options import check_figure_path, echo, save

    check_figure_path(args.out)
    report = dynamics(args.models or ["lecture"], runs=args.runs)
    echo(report)
    save(report.plot(), Path(args.out) if args.out else Path(args.runs) / "dynamics.png")
    return 0
