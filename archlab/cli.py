"""The ``archlab`` command: parse arguments, call the library, print. Nothing else lives here."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from archlab import __version__
from archlab.errors import ArchlabError

MODEL_HELP = (
    "a registered model (see `archlab models`), path/to/file.py:Class or package.module:Class"
)


def _shape_arg(text: str) -> tuple[int, ...]:
    try:
        dims = tuple(int(part) for part in text.replace("x", ",").replace("×", ",").split(","))
    except ValueError:
        dims = ()
    if len(dims) not in (1, 2, 3, 4) or any(d < 1 for d in dims):
        raise argparse.ArgumentTypeError(f"{text!r} is not C,H,W with positive sizes, e.g. 1,28,28")
    return dims


# -- handlers: each calls the public API and prints ------------------------------------------
def _cmd_models(args: argparse.Namespace) -> int:
    from archlab import _table
    from archlab.models import create_model, list_models, model_description

    rows = []
    for name in list_models():
        n_params = sum(p.numel() for p in create_model(name).parameters())
        rows.append([name, f"{n_params:,}", model_description(name)])
    print(_table.text_table(["model", "parameters", "description"], rows))
    return 0


def _cmd_shapes(args: argparse.Namespace) -> int:
    from archlab.shapes import trace_shapes

    report = trace_shapes(args.model, args.input, overrides=args.set)
    print(report.to_json() if args.json else report)
    if report.mismatches:
        print(
            "archlab: error: analytic shapes disagree with the forward pass (a bug in archlab)",
            file=sys.stderr,
        )
        return 3
    if report.error is not None:
        print(f"archlab: error: {report.error}", file=sys.stderr)
        return 1
    return 0


def _cmd_params(args: argparse.Namespace) -> int:
    from archlab.params import compare_params, count_params

    reports = [count_params(spec, args.input) for spec in args.models]
    if args.json:
        import json

        print(json.dumps([r.to_dict() for r in reports], indent=2))
        return 0
    print("\n\n".join(str(r) for r in reports))
    if len(reports) > 1:
        print()
        print(compare_params(reports))
    return 0


# -- the parser --------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="archlab",
        description="Take the lecture's Fashion-MNIST DNN and CNN apart: shapes, parameters, "
        "training and attributions.",
        epilog="Run `archlab COMMAND --help` for a command's options.",
    )
    parser.add_argument("--version", action="version", version=f"archlab {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def command(name: str, summary: str, handler: Callable[[argparse.Namespace], int], **kw):
        p = sub.add_parser(name, help=summary, description=kw.pop("description", summary), **kw)
        p.set_defaults(handler=handler)
        return p

    command("models", "list the registered models with their parameter counts", _cmd_models)

    p = command(
        "shapes",
        "trace each layer's output shape, with its formula, checked by a forward pass",
        _cmd_shapes,
        description="Trace each layer's output shape with its formula filled in, checked "
        "against a real forward pass of one zero image (no data needed). Exits 1 "
        "and says where and how to fix it when the chain of layers does not fit.",
    )
    p.add_argument("model", metavar="MODEL", help=MODEL_HELP)
    p.add_argument(
        "--input",
        type=_shape_arg,
        metavar="C,H,W",
        help="per-sample input shape (default: the model's, 1,28,28 for dnn and cnn)",
    )
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="LAYER.ARG=VALUE",
        help="what-if: rebuild a layer with one argument changed, e.g. "
        "layer2.0.padding=1 (repeatable)",
    )
    p.add_argument("--json", action="store_true", help="print the trace as JSON")

    p = command(
        "params",
        "count parameters and multiply-accumulates layer by layer (and compare models)",
        _cmd_params,
    )
    p.add_argument("models", nargs="+", metavar="MODEL", help=MODEL_HELP)
    p.add_argument(
        "--input",
        type=_shape_arg,
        metavar="C,H,W",
        help="per-sample input shape for the MAC count (default: the model's)",
    )
    p.add_argument("--json", action="store_true", help="print the counts as JSON")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI in-process; returns the exit code (0 ok, 1 failed check, 2 bad input)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a usage error argparse printed
        return int(exc.code or 0)
    try:
        return args.handler(args)
    except ArchlabError as exc:
        print(f"archlab: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("archlab: interrupted", file=sys.stderr)
        return 130
