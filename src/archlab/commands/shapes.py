"""archlab shapes: each layer's output shape with its formula, checked by a forward pass."""

from __future__ import annotations

import argparse

NAME = "shapes"
SUMMARY = "trace each layer's output shape, with its formula, checked by a forward pass"
DESCRIPTION = (
    "Trace each layer's output shape with its formula filled in, checked against a real "
    "forward pass of a batch of 11 zero images (no data needed; shapes are shown per "
    "image). Exits 1 and says where and how to fix it when the chain of layers does not "
    "fit. Every tensor operation in forward that changes a shape or merges tensors "
    "(pooling, cat, +, view, mean, indexing...) has its row; a batch of more than one "
    "image catches an operation that mixes them."
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    from archlab.commands._options import depth_option, model_input_options

    model_input_options(p)
    p.add_argument(
        "--dtype",
        choices=("float", "long"),
        help="the input's type: long for token ids into an Embedding (default: long when "
        "the first layer is an Embedding, else float)",
    )
    depth_option(
        p,
        "fold the rows inside modules deeper than N into one row per block, with its "
        "input and output (default: every row)",
    )
    p.add_argument("--json", action="store_true", help="print the trace as JSON")


def run(args: argparse.Namespace) -> int:
    import contextlib
    import sys

    from archlab.commands._options import echo
    from archlab.trace.shapes import trace_shapes

    with contextlib.redirect_stdout(sys.stderr):  # the model's own prints: not our output
        report = trace_shapes(
            args.model, args.input, overrides=args.set, dtype=args.dtype, depth=args.depth
        )
    echo(report.to_json() if args.json else report)
    if report.mismatches:
        echo(
            "archlab: error: analytic shapes disagree with the forward pass (a bug in archlab)",
            file=sys.stderr,
        )
        return 3
    if report.error is not None:
        echo(f"archlab: error: {report.error.render(flags=True)}", file=sys.stderr)
        return 1
    return 0
