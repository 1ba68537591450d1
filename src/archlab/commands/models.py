"""archlab models: the registry's cards as a table."""

from __future__ import annotations

import argparse

NAME = "models"
SUMMARY = "list the registered models with their parameters and multiply-accumulates"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--group", default=None, help="only this group: lecture or zoo (default: all)")


def run(args: argparse.Namespace) -> int:
    from archlab.commands._options import echo
    from archlab.trace.params import model_table

    echo(model_table(args.group))
    return 0
