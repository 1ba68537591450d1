"""archlab attack: accuracy under FGSM and PGD, per model."""

from __future__ import annotations

import argparse

NAME = "attack"
SUMMARY = "how fragile is each model: accuracy under FGSM and PGD for a range of ε"
DESCRIPTION = (
    "Attack trained runs with Captum's FGSM and PGD (L∞, ε in the normalised input's units) "
    "on N test images stratified by class; print accuracy per ε, write the accuracy curves "
    "(<out>) and the images that flip first with their saliency before and after "
    "(<out stem>-flips)."
)


def _eps_list(text: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        values = []
    if not values or any(v < 0 for v in values):
        raise argparse.ArgumentTypeError(f"{text!r}: give radii ≥ 0, e.g. 0,0.05,0.1,0.2")
    return values


def add_arguments(p: argparse.ArgumentParser) -> None:
    from archlab.analysis._settings import ATTACK_IMAGES as IMAGES
    from archlab.analysis._settings import EPS, PGD_STEPS
    from archlab.commands._options import data_dir_option, out_option, runs_option

    p.add_argument(
        "models",
        nargs="*",
        metavar="RUN",
        help="trained runs, groups or run folders (default: lecture, i.e. dnn and cnn)",
    )
    p.add_argument(
        "--eps",
        type=_eps_list,
        default=list(EPS),
        help=f"comma-separated L∞ radii (default: {','.join(f'{e:g}' for e in EPS)})",
    )
    p.add_argument("--images", type=int, default=IMAGES, help=f"test images (default: {IMAGES})")
    p.add_argument(
        "--pgd-steps", type=int, default=PGD_STEPS, help=f"PGD's steps (default: {PGD_STEPS})"
    )
    p.add_argument("--json", action="store_true", help="print the numbers as JSON instead")
    runs_option(p)
    out_option(p, "<runs>/attack.png")
    data_dir_option(p)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from archlab.analysis.robustness import attack
    from archlab.commands._options import check_figure_path, echo, save
    from archlab.models.spec import expand_run_names
    from archlab.training.data import load_fashion_mnist

    check_figure_path(args.out)
    names = expand_run_names(args.models)
    report = attack(
        names,
        eps=args.eps,
        images=args.images,
        pgd_steps=args.pgd_steps,
        runs=args.runs,
        data=load_fashion_mnist(args.data_dir),
    )
    if args.json:
        echo(report.to_json())
        return 0
    echo(report)
    out = Path(args.out) if args.out else Path(args.runs) / "attack.png"
    save(report.plot(), out)
    save(report.plot_flips(), out.with_name(f"{out.stem}-flips{out.suffix}"))
    return 0
