"""One module per ``archlab`` subcommand: its options next to its handler.

Each module defines ``NAME``, ``SUMMARY``, ``add_arguments(parser)`` and ``run(args) -> int``
(and may define ``DESCRIPTION``). Modules import nothing heavy at the top, so that
``archlab --help`` answers without importing torch.
"""

# the order `archlab --help` lists them in
COMMANDS = (
    "models",
    "shapes",
    "params",
    "draw",
    "data",
    "train",
    "lr_find",
    "dynamics",
    "explain",
    "faithfulness",
    "attack",
    "calibration",
    "ood",
    "filters",
    "activations",
    "confusion",
    "probes",
    "map",
    "compare",
    "channels",
    "explore",
)
