"""archlab models: the registry's cards as a table."""

from __future__ import annotations

import argparse

NAME = "models"
SUMMARY = "list the registered models with their parameter counts"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--group", default=None, help="only this group: lecture or zoo (default: all)")


def run(args: argparse.Namespace) -> int:
    from archlab import _table
    from archlab.commands._options import echo
    from archlab.models import create_model, list_models, model_card

    rows = []
    for name in list_models(args.group):
        card = model_card(name)
        n_params = sum(p.numel() for p in create_model(name).parameters())
        rows.append([name, card.group, f"{n_params:,}", card.description])
    echo(_table.text_table(["model", "group", "parameters", "description"], rows))
    return 0
