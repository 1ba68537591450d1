"""archlab map: a layer's features of the test images in 2-D, beside the pixels."""

from __future__ import annotations

import argparse

NAME = "map"
SUMMARY = "the test images in 2-D by a layer's features, beside the pixels, with thumbnails"
DESCRIPTION = (
    "Project one layer's features (default: the input of the last linear layer; pooled to "
    "at most 2,048 per image) of the test images to 2-D by PCA (default), t-SNE "
    "(scikit-learn) or UMAP (umap-learn, where installed), beside the pixels' map; points "
    "coloured by true class, the model's mistakes marked, thumbnails on a grid. Print the "
    "k-nearest-neighbour accuracy (k = 10) in each 2-D map; write the picture (<out>)."
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    from archlab.analysis._probe_budget import METHODS, TEST_IMAGES
    from archlab.commands._options import (
        data_dir_option,
        out_option,
        runs_option,
        snapshot_option,
    )

    p.add_argument("run", metavar="RUN", help="a trained run: spec or run folder (e.g. cnn)")
    p.add_argument(
        "--layer",
        default=None,
        help="a layer's qualified name, e.g. fc2 or layer2.3 (default: the input of the "
        "last linear layer)",
    )
    p.add_argument("--method", default="pca", help=f"{', '.join(METHODS)} (default: pca)")
    p.add_argument(
        "--images",
        type=int,
        default=TEST_IMAGES,
        help=f"test images, stratified by class (default: {TEST_IMAGES}, all)",
    )
    p.add_argument("--seed", type=int, default=0, help="images, t-SNE and UMAP (default: 0)")
    p.add_argument("--json", action="store_true", help="print the numbers as JSON instead")
    runs_option(p)
    out_option(p, "<runs>/<run>/map.png; a snapshot's: map@K.png")
    data_dir_option(p)
    snapshot_option(p)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from archlab.analysis.embedding import check_map_options, embedding
    from archlab.commands._options import (
        at_snapshots,
        check_figure_path,
        echo,
        show_report,
        snapshot_figure,
    )
    from archlab.training.data import load_fashion_mnist

    check_figure_path(args.out)
    check_map_options(args.method, args.images)
    shown = at_snapshots([args.run], args)
    data = load_fashion_mnist(args.data_dir)
    reports = [
        embedding(
            run,
            args.layer,
            method=args.method,
            images=args.images,
            seed=args.seed,
            progress=not args.json,
            runs=args.runs,
            data=data,
        )
        for run in shown
    ]
    if args.json and len(reports) > 1:  # --snapshot all: one JSON list, a map per snapshot
        echo("[\n" + ",\n".join(r.to_json() for r in reports) + "\n]")
        return 0
    for run, report in zip(shown, reports, strict=True):
        out = Path(args.out) if args.out else Path(args.runs) / report.model / "map.png"
        each = argparse.Namespace(**{**vars(args), "out": snapshot_figure(out, run)})
        show_report(each, report, each.out)
    return 0
