"""archlab shapes: each layer's output shape with its formula, checked by a forward pass."""

from __future__ import annotations

import argparse

NAME = "shapes"
SUMMARY = "trace each layer's output shape, with its formula, checked by a forward pass"
DESCRIPTION = (
    "Trace each layer's output shape with its formula filled in, checked against a real "
    "forward pass of one zero image (no data needed). Exits 1 and says where and how to fix "
    "it when the chain of layers does not fit."
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    from archlab.commands._options import SPEC_HELP, set_option, shape_arg

    p.add_argument("model", metavar="MODEL", help=SPEC_HELP)
    p.add_argument(
        "--input",
        type=shape_arg,
        metavar="C,H,W",
        help="per-sample input shape (default: the model's, 1,28,28 for dnn and cnn)",
    )
    set_option(p)
    p.add_argument("--json", action="store_true", help="print the trace as JSON")


def run(args: argparse.Namespace) -> int:
    import contextlib
    import sys

    from archlab.commands._options import echo
    from archlab.shapes import trace_shapes

    with contextlib.redirect_stdout(sys.stderr):  # the model's own prints: not our output
        report = trace_shapes(args.model, args.input, overrides=args.set)
    echo(report.to_json() if args.json else report)
    if report.mismatches:
        echo(
            "archlab: error: analytic shapes disagree with the forward pass (a bug in archlab)",
            file=sys.stderr,
        )
        return 3
    if report.error is not None:
        echo(f"archlab: error: {report.error}", file=sys.stderr)
        return 1
    return 0
