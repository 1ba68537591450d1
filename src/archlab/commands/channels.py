"""archlab channels: what each channel of a conv layer looks for."""

from __future__ import annotations

import argparse

NAME = "channels"
SUMMARY = "what a channel looks for: synthesised image, top test images, effective field"
DESCRIPTION = (
    "For every channel of the chosen conv layer (every Conv2d by default): an image "
    "optimised to excite it (Fourier 1/f parametrisation, sigmoid pixels, jitter), the 9 "
    "test images that excite it most (where it fires outlined) and least, the 9 where it "
    "is most relevant to the predicted class (gradient × activation), its effective "
    "receptive field beside the theoretical one, and dead channels. Prints one table per "
    "layer and writes a figure."
)


def _channel_list(text: str) -> list[int]:
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: write channel numbers such as 0,3,5") from None


def add_arguments(p: argparse.ArgumentParser) -> None:
    from archlab.analysis._settings import CHANNEL_STEPS as STEPS
    from archlab.analysis._settings import ERF_IMAGES
    from archlab.commands._options import data_dir_option, device_option, out_option

    p.add_argument(
        "model", nargs="?", default="cnn", metavar="RUN", help="a trained run (default: cnn)"
    )
    p.add_argument(
        "--layer", default=None, help="a layer with feature maps (default: every Conv2d)"
    )
    which = p.add_mutually_exclusive_group()
    which.add_argument(
        "--channels", type=_channel_list, default=None, help="channels such as 0,3,5 (default: all)"
    )
    which.add_argument(
        "--top", type=int, default=None, help="the K channels that fire most often (default: all)"
    )
    p.add_argument(
        "--steps", type=int, default=STEPS, help=f"synthesis steps, 0 skips it (default: {STEPS})"
    )
    p.add_argument(
        "--plain",
        action="store_true",
        help="synthesise without regularisation (raw pixels: high-frequency noise)",
    )
    p.add_argument(
        "--erf-images",
        type=int,
        default=ERF_IMAGES,
        help=f"test images for the effective receptive field, 0 skips it (default: {ERF_IMAGES})",
    )
    p.add_argument(
        "--images", type=int, default=10_000, help="test images searched (default: 10000)"
    )
    p.add_argument(
        "--seed", type=int, default=0, help="the synthesis's start and jitter (default: 0)"
    )
    p.add_argument(
        "--diverse",
        type=int,
        default=0,
        metavar="K",
        help="also K diverse optima per channel (a diversity penalty on their Gram "
        "matrices, as in Olah et al. 2017; default: 0, none)",
    )
    p.add_argument(
        "--no-relevance",
        action="store_true",
        help="skip the most relevant images (a forward and backward pass over the test set)",
    )
    p.add_argument("--json", action="store_true", help="print the numbers as JSON instead")
    p.add_argument(
        "--runs", default="runs", help="the folder `archlab train --out` wrote (default: runs)"
    )
    out_option(p, "<runs>/<run>/figures/channels[-LAYER].png")
    data_dir_option(p)
    device_option(p)


def run(args: argparse.Namespace) -> int:
    from archlab.analysis.channels import channels, check_channels_options
    from archlab.commands._options import check_figure_path, figure_path, on_device, show_report
    from archlab.training.data import load_fashion_mnist
    from archlab.training.run import load_run

    check_figure_path(args.out)
    check_channels_options(
        channels=args.channels,
        top=args.top,
        steps=args.steps,
        images=args.images,
        erf_images=args.erf_images,
        seed=args.seed,
        diverse=args.diverse,
    )
    run = on_device(load_run(args.model, runs=args.runs), args.device)
    report = channels(
        run,
        args.layer,
        channels=args.channels,
        top=args.top,
        steps=args.steps,
        regularize=not args.plain,
        images=args.images,
        erf_images=args.erf_images,
        relevant=not args.no_relevance,
        seed=args.seed,
        diverse=args.diverse,
        progress=not args.json,
        data=load_fashion_mnist(args.data_dir),
    )
    stem = "channels" + (f"-{args.layer}" if args.layer else "")
    return show_report(args, report, figure_path(args, run.name, stem))
