"""archlab explore: an offline web page to look inside trained runs."""

from __future__ import annotations

import argparse

NAME = "explore"
SUMMARY = "an offline web page of trained runs: layers, one image flowing through, why, mistakes"
DESCRIPTION = (
    "Write a self-contained folder (index.html, its data, scripts and styles; nothing from "
    "another host) that shows each run's layers with their formulas, parameters and MACs, "
    "test images flowing through the selected layer, the class probabilities and "
    "attribution maps, and the confusion matrix whose cells show their images. Open "
    "index.html in a browser, from the disk or any web server."
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    from archlab.commands._options import count_arg, data_dir_option, runs_option

    p.add_argument(
        "models",
        nargs="*",
        metavar="RUN",
        help="trained models, groups or run folders such as cnn+layer2.0.padding=1 "
        "(default: lecture, i.e. dnn and cnn)",
    )
    p.add_argument(
        "--images",
        type=count_arg(10000, low=1),
        default=30,
        metavar="N",
        help="test images that flow through: right ones of every class and the runs' "
        "mistakes (default: 30)",
    )
    p.add_argument(
        "--map",
        type=count_arg(10000),
        default=10000,
        metavar="N",
        help="test images on the map panel and its timeline, stratified by class, the "
        "same for every run; 0: no map, else 11 or more (default: 10000, the whole test set)",
    )
    p.add_argument(
        "--out", default=None, metavar="DIR", help="the folder to write (default: <runs>/explorer)"
    )
    runs_option(p)
    data_dir_option(p)


def run(args: argparse.Namespace) -> int:
    import sys
    from pathlib import Path

    from archlab.commands._options import echo
    from archlab.explorer import explore
    from archlab.training.data import load_fashion_mnist

    out = Path(args.out) if args.out else Path(args.runs) / "explorer"
    page = explore(
        args.models or ["lecture"],
        images=args.images,
        map_images=args.map,
        out=out,
        runs=args.runs,
        data=load_fashion_mnist(args.data_dir),
        log=lambda line: echo(line, file=sys.stderr),
    )
    echo(f"wrote {page.parent}/ (open {page.resolve().as_uri()})")
    return 0
