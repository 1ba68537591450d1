"""archlab draw: the architecture as a picture, to scale, from the shape trace."""

from __future__ import annotations

import argparse

NAME = "draw"
SUMMARY = "draw the architecture to scale from the shape trace (SVG or PNG)"
DESCRIPTION = (
    "Draw the model from its shape trace: a chain of layers as feature maps to scale "
    "(boxes H × W, depth for the channels, kernels as windows, the flatten, the Linear "
    "layers as columns, parameters per stage); a model that branches as a graph (needs "
    "Graphviz). A chain that does not fit is drawn up to the failing layer, with the "
    "diagnosis as the caption, and exits 1."
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    from archlab.commands._options import depth_option, model_input_options, runs_option

    model_input_options(p)
    depth_option(
        p,
        "draw each module N deep as one box: --depth 1 folds resnet's residual blocks, and "
        "a model whose branches all fold away is drawn as a chain (default: every layer)",
    )
    p.add_argument(
        "--out",
        default=None,
        metavar="FILE",
        help="the picture to write, .svg or .png (default: <runs>/<model>/figures/"
        "architecture.svg, or architecture-claim.svg with --claim)",
    )
    runs_option(p)
    p.add_argument(
        "--claim",
        action="store_true",
        help="draw the lecture's claimed [32, 784, 784] maps beside the traced 32×28×28 "
        "at one scale (cnn only)",
    )
    p.add_argument(
        "--graph",
        action="store_true",
        help="draw a graph even for a chain of layers (default: only where the model branches)",
    )


def _check_writable(path) -> None:
    """Refuse, before any work, a path whose folder cannot be made or written."""
    import os

    from archlab.errors import ArchlabError

    folder = path.parent.absolute()
    while not folder.exists():
        folder = folder.parent
    if not folder.is_dir() or not os.access(folder, os.W_OK):
        raise ArchlabError(f"--out {path}: cannot write in {folder}", 1)
    if path.is_dir():
        raise ArchlabError(f"--out {path} is a folder: give a file name ending .svg or .png", 1)


def run(args: argparse.Namespace) -> int:
    import sys
    from pathlib import Path

    from archlab.commands._options import echo
    from archlab.drawing import check_suffix, draw
    from archlab.models.spec import ModelSpec

    spec = ModelSpec.parse(args.model, args.set)  # an unknown model fails here, before work
    if args.out is not None:
        out = Path(args.out)
    else:
        stem = "architecture-claim" if args.claim else "architecture"
        out = Path(args.runs) / spec.run_name / "figures" / f"{stem}.svg"
    check_suffix(out)
    _check_writable(out)
    picture = draw(
        args.model,
        args.input,
        args.set,
        claim=args.claim,
        graph=args.graph or None,
        depth=args.depth,
    )
    echo(f"wrote {picture.save(out)}")
    report = picture.report
    if report.mismatches:
        echo(
            "archlab: error: analytic shapes disagree with the forward pass (a bug in archlab)",
            file=sys.stderr,
        )
        return 3
    if report.error is not None and not args.claim:
        echo(f"archlab: error: {report.error.render(flags=True)}", file=sys.stderr)
        return 1
    return 0
