"""archlab faithfulness: are the attribution maps faithful to the model?"""

from __future__ import annotations

import argparse
import sys

NAME = "faithfulness"
SUMMARY = "are the maps faithful? deletion curves, ROAD, infidelity, against control maps"
DESCRIPTION = (
    "Score every attribution method and three control maps (random, Sobel edges, constant) "
    "on N test images stratified by class: deletion curves (MoRF, LeRF = insertion) with a "
    "zero, blur or ROAD fill, Captum's infidelity and max-sensitivity, and the sanity "
    "check's ρ to the fully randomised model. Prints one table per run (methods as rows) "
    "and writes a figure of the mean curves (<out>, one per run: <out stem>-RUN)."
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    from archlab.analysis._settings import DETAIL_IMAGES, FILLS, STEP
    from archlab.analysis._settings import FAITHFULNESS_IMAGES as IMAGES
    from archlab.commands._options import data_dir_option, out_option, runs_option

    p.add_argument(
        "models", nargs="*", metavar="RUN", help="trained runs: specs or run folders (default: cnn)"
    )
    p.add_argument(
        "--images",
        type=int,
        default=IMAGES,
        help=f"test images, stratified by class, fixed seed (default: {IMAGES})",
    )
    p.add_argument(
        "--fill", choices=FILLS, default="zero", help="what a removed pixel becomes (default: zero)"
    )
    p.add_argument(
        "--methods",
        default="all",
        help="comma-separated: saliency,ig,smoothgrad,occlusion,gradcam (default: all)",
    )
    p.add_argument("--step", type=int, default=STEP, help=f"pixels per step (default: {STEP})")
    p.add_argument(
        "--detail",
        type=int,
        default=DETAIL_IMAGES,
        help="images for infidelity, max-sensitivity and sanity ρ; 0 skips them "
        f"(default: {DETAIL_IMAGES})",
    )
    p.add_argument("--seed", type=int, default=0, help="images, random control, noise (default: 0)")
    p.add_argument("--json", action="store_true", help="print the numbers as JSON instead")
    runs_option(p)
    out_option(p, "<runs>/<run>/figures/faithfulness-FILL.png")
    data_dir_option(p)


def run(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from archlab.analysis.faithfulness import check_faithfulness_options, faithfulness
    from archlab.commands._options import check_figure_path, echo, save
    from archlab.errors import ArchlabError
    from archlab.models.spec import expand_run_names
    from archlab.training.data import load_fashion_mnist

    check_figure_path(args.out)
    check_faithfulness_options(
        images=args.images,
        fill=args.fill,
        methods=args.methods,
        step=args.step,
        detail=args.detail,
        seed=args.seed,
    )
    names = expand_run_names(args.models or ["cnn"])
    data = load_fashion_mnist(args.data_dir)
    reports, failed = [], []
    try:
        for name in names:
            try:
                report = faithfulness(
                    name,
                    images=args.images,
                    fill=args.fill,
                    methods=args.methods,
                    step=args.step,
                    detail=args.detail,
                    seed=args.seed,
                    runs=args.runs,
                    data=data,
                )
            except ArchlabError as exc:  # one run's fault: the others' tables still come
                if len(names) == 1:
                    raise
                failed.append(exc)
                echo(f"{name}: skipped: {exc.cli_message}", file=sys.stderr)
                continue
            reports.append(report)
            if args.json:
                continue
            echo(f"{report}\n")
            if args.out and len(names) > 1:
                out = Path(args.out)
                out = out.with_name(f"{out.stem}-{report.model}{out.suffix}")
            elif args.out:
                out = Path(args.out)
            else:
                out = Path(args.runs) / report.model / "figures" / f"faithfulness-{args.fill}.png"
            save(report.plot(), out)
    finally:  # even when a later run fails, the tables already computed are printed
        if args.json and reports:
            echo(json.dumps([r.to_dict() for r in reports], indent=1, ensure_ascii=False))
    if failed:
        raise ArchlabError(
            f"{len(failed)} of {len(names)} runs failed; the first: {failed[0]}",
            failed[0].exit_code,
            f"{len(failed)} of {len(names)} runs failed; the first: {failed[0].cli_message}",
        )
    return 0
