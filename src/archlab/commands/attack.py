"""archlab attack: accuracy under FGSM and PGD, per model."""

from __future__ import annotations

import argparse

NAME = "attack"
SUMMARY = "how fragile is each model: accuracy under FGSM and PGD for a range of ε"
DESCRIPTION = (
    "Attack trained runs with FGSM and PGD (L∞, ε in pixel units 0–1 whatever the run's "
    "normalisation; the cross-entropy of the logits; PGD from a uniform random start in the "
    "ε-ball, steps of 2.5·ε/steps, each projected into the ball and the pixel range) on N "
    "test images stratified by class; print accuracy per ε, write the accuracy curves "
    "(<out>) and the images that flip first with their saliency before and after "
    "(<out stem>-flips)."
)


def _eps_list(text: str) -> list[float] | str:
    """Comma-separated numbers; the text itself when it is not one (the library's check
    then says what is wrong, with the same words as for the API)."""
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        return text
    return values or text


def add_arguments(p: argparse.ArgumentParser) -> None:
    from archlab.analysis._settings import ATTACK_IMAGES as IMAGES
    from archlab.analysis._settings import EPS, PGD_STEPS
    from archlab.commands._options import (
        data_dir_option,
        device_option,
        models_argument,
        out_option,
        runs_option,
    )

    models_argument(p)
    p.add_argument(
        "--eps",
        type=_eps_list,
        default=list(EPS),
        help="comma-separated L∞ radii in pixel units, 0 to 1 "
        f"(default: {','.join(f'{e:g}' for e in EPS)})",
    )
    p.add_argument("--images", type=int, default=IMAGES, help=f"test images (default: {IMAGES})")
    p.add_argument(
        "--pgd-steps", type=int, default=PGD_STEPS, help=f"PGD's steps (default: {PGD_STEPS})"
    )
    p.add_argument(
        "--step-size",
        type=float,
        default=None,
        help="PGD's step as a multiple of ε (default: 2.5/steps)",
    )
    p.add_argument(
        "--no-random-start",
        dest="random_start",
        action="store_false",
        help="start PGD at the image itself, not at a uniform random point of the ε-ball",
    )
    p.add_argument("--seed", type=int, default=0, help="images and PGD's starts (default: 0)")
    p.add_argument("--json", action="store_true", help="print the numbers as JSON instead")
    runs_option(p)
    out_option(p, "<runs>/attack.png")
    data_dir_option(p)
    device_option(p)


def run(args: argparse.Namespace) -> int:
    import warnings
    from pathlib import Path

    from archlab.analysis.robustness import attack, check_attack_options
    from archlab.commands._options import check_figure_path, on_device, show_report
    from archlab.device import pick_device
    from archlab.models.spec import expand_run_names
    from archlab.training.data import load_fashion_mnist
    from archlab.training.run import as_runs

    check_figure_path(args.out)
    check_attack_options(
        args.eps,
        images=args.images,
        pgd_steps=args.pgd_steps,
        step_size=args.step_size,
        seed=args.seed,
    )
    pick_device(args.device)  # a device that is not there: refused before any work
    # the models go to --device; the attack computes where each model is
    loaded = [on_device(r, args.device) for r in as_runs(expand_run_names(args.models), args.runs)]
    with warnings.catch_warnings():  # gradient masking: the report says it in its text
        warnings.simplefilter("ignore", RuntimeWarning)
        report = attack(
            loaded,
            eps=args.eps,
            images=args.images,
            pgd_steps=args.pgd_steps,
            step_size=args.step_size,
            random_start=args.random_start,
            seed=args.seed,
            runs=args.runs,
            data=load_fashion_mnist(args.data_dir),
        )
    extras = [("flips", report.plot_flips)]
    return show_report(args, report, Path(args.runs) / "attack.png", extras)
