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
    from archlab.commands._options import (
        data_dir_option,
        depth_option,
        model_input_options,
        runs_option,
    )

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
    p.add_argument(
        "--field",
        default=None,
        metavar="LAYER",
        help="instead, draw the receptive field of one unit of LAYER (a row of `archlab "
        "shapes`, e.g. layer2.3) on the input image, to scale (default: off)",
    )
    p.add_argument(
        "--unit",
        default=None,
        metavar="I,J",
        help="with --field: the unit's row and column in LAYER's output (default: the middle)",
    )
    p.add_argument(
        "--index",
        type=int,
        default=None,
        metavar="N",
        help="with --field: draw it on test image N of Fashion-MNIST (default: a plain grid)",
    )
    data_dir_option(p)


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
    from archlab.errors import ArchlabError
    from archlab.models.spec import ModelSpec

    if args.field is None:  # their help says "with --field": alone they would be ignored
        for flag, value in (("--unit", args.unit), ("--index", args.index)):
            if value is not None:
                raise ArchlabError(f"{flag} goes with --field LAYER (the unit of that layer)")
    spec = ModelSpec.parse(args.model, args.set)  # an unknown model fails here, before work
    if args.field is not None:
        return _field(args, spec)
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


def _field(args: argparse.Namespace, spec) -> int:
    """``--field LAYER``: one unit's receptive field on the input image."""
    from pathlib import Path

    from archlab.commands._options import echo
    from archlab.drawing.field import draw_field
    from archlab.errors import ArchlabError

    out = (
        Path(args.out)
        if args.out
        else (Path(args.runs) / spec.run_name / "figures" / f"field-{args.field}.png")
    )
    if out.suffix.lower() not in (".png", ".svg", ".pdf"):
        raise ArchlabError(f"--out {out}: write a .png, .svg or .pdf file")
    _check_writable(out)
    unit = None
    if args.unit is not None:
        try:
            unit = tuple(int(v) for v in args.unit.split(","))
        except ValueError:
            raise ArchlabError(f"--unit {args.unit!r}: give the row and column, e.g. 3,3") from None
    data = None
    if args.index is not None:
        from archlab.training.data import load_fashion_mnist

        data = load_fashion_mnist(args.data_dir)
    picture = draw_field(
        args.model, args.field, args.input, args.set, unit=unit, index=args.index, data=data
    )
    echo(picture)
    echo(f"wrote {picture.save(out)}")
    return 0
