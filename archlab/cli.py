"""The ``archlab`` command: parse arguments, call the library, print. Nothing else lives here.

Each subcommand lives in ``archlab/commands/<name>.py`` with its options next to its handler.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from archlab import __version__
from archlab.errors import ArchlabError

EXIT_CODES = """\
exit codes:
  0    done
  1    the model, data or run is wrong (a diagnosis says where and what to do)
  2    bad usage (an unknown option, model or file, a value out of range)
  3    a bug in archlab (please report it with the command you ran)
  130  interrupted (Ctrl-C); a training run saved its checkpoint first
"""


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one line (no usage block) and exit code 2."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    from archlab.commands import COMMANDS

    parser = _Parser(
        prog="archlab",
        description="Take neural networks apart on Fashion-MNIST: shapes, parameters,\n"
        "training and attributions, for the lecture's DNN and CNN, the zoo, or your own model.",
        epilog="Run `archlab COMMAND --help` for a command's options.\n\n" + EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"archlab {__version__}")
    sub = parser.add_subparsers(
        dest="command", metavar="COMMAND", required=True, parser_class=_Parser
    )
    for name in COMMANDS:
        module = importlib.import_module(f"archlab.commands.{name}")
        description = getattr(module, "DESCRIPTION", None)
        if hasattr(module, "description"):
            description = module.description()
        p = sub.add_parser(
            module.NAME,
            help=module.SUMMARY,
            description=description or module.SUMMARY,
            epilog=EXIT_CODES,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        module.add_arguments(p)
        p.set_defaults(handler=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI in-process; returns the exit code (see ``EXIT_CODES``)."""
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
