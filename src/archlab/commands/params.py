"""archlab params: parameters and multiply-accumulates per layer, and models side by side."""

from __future__ import annotations

import argparse

NAME = "params"
SUMMARY = "count parameters and multiply-accumulates layer by layer (and compare models)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    from archlab.commands._options import SPEC_HELP, set_option, shape_arg

    p.add_argument("models", nargs="+", metavar="MODEL", help=SPEC_HELP)
    p.add_argument(
        "--input",
        type=shape_arg,
        metavar="C,H,W",
        help="per-sample input shape for the MAC count (default: the model's)",
    )
    set_option(p)
    p.add_argument("--json", action="store_true", help="print the counts as JSON")


def run(args: argparse.Namespace) -> int:
    import contextlib
    import sys

    from archlab.commands._options import echo
    from archlab.models.spec import ModelSpec
    from archlab.trace.params import compare_params, count_params

    with contextlib.redirect_stdout(sys.stderr):  # the model's own prints: not our output
        specs = [ModelSpec.parse(m, args.set) for m in args.models]
        reports = [count_params(spec, args.input) for spec in specs]
    if args.json:
        import json

        echo(json.dumps([r.to_dict() for r in reports], indent=2))
        return 0
    echo("\n\n".join(str(r) for r in reports))
    if len(reports) > 1:
        echo()
        echo(compare_params(reports))
    return 0
