"""archlab explain: Captum attributions for one test image."""

from __future__ import annotations

import argparse

NAME = "explain"
SUMMARY = "Captum attributions for one test image (saliency, IG, SmoothGrad, occlusion, Grad-CAM)"
DESCRIPTION = (
    "Explain one test image's prediction with Captum: saliency, integrated gradients (black "
    "baseline), SmoothGrad, occlusion and Grad-CAM on the output of the model's last block (or "
    "--layer). --faithfulness adds the image's deletion curves; --sanity the "
    "model-randomisation test (Adebayo et al., 2018)."
)


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
        "--methods",
        default="all",
        help="comma-separated: saliency,ig,smoothgrad,occlusion,gradcam (default: all)",
    )
    p.add_argument(
        "--target",
        default="pred",
        help="whose score to explain: pred, true, a class index or name (default: pred)",
    )
    p.add_argument(
        "--layer",
        default=None,
        help="the layer for Grad-CAM, or last-conv (default: the last block's output at the "
        "last convolution's resolution, e.g. the CNN's layer2.2, after its norm and "
        "activation)",
    )
    p.add_argument(
        "--sanity",
        action="store_true",
        help="re-initialise the layers top-down and report how much each map changes",
    )
    p.add_argument(
        "--faithfulness",
        nargs="?",
        const="zero",
        default=None,
        choices=("zero", "blur", "road"),
        help="also this image's deletion curves per map beside the panels, with this fill "
        "(default fill: zero)",
    )
    out_option(p, "<runs>/<run>/figures/explain-INDEX.png")
    data_dir_option(p)
    device_option(p)


def run(args: argparse.Namespace) -> int:
    from archlab.analysis.explain import check_methods, explain
    from archlab.commands._options import check_figure_path, echo, figure_path, on_device, save
    from archlab.training.data import load_fashion_mnist
    from archlab.training.run import load_run

    check_figure_path(args.out)
    check_methods(args.methods)
    run = on_device(load_run(args.model, args.set, runs=args.runs, name=args.name), args.device)
    explanation = explain(
        run,
        args.index,
        methods=args.methods,
        target=args.target,
        sanity=args.sanity,
        layer=args.layer,
        faithfulness=args.faithfulness,
        data=load_fashion_mnist(args.data_dir),
    )
    echo(explanation.describe())
    if explanation.sanity is not None:
        echo(f"\n{explanation.sanity}\n")
    if explanation.faithfulness is not None:
        echo(f"\n{explanation.faithfulness._parts()[0].text()}\n")
    suffix = ("-sanity" if args.sanity else "") + ("-faithfulness" if args.faithfulness else "")
    save(explanation.plot(), figure_path(args, run.name, f"explain-{args.index}{suffix}"))
    echo(explanation.verdict)
    return 0
