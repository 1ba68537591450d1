"""Teaching notes on a trace: what in the architecture is redundant or wrong.

The notes follow the data flow (each row's ``inputs``), not the order of the calls: two
Linear layers compose only when one feeds the other with nothing non-linear between,
and a conv's bias is cancelled only by a BatchNorm that is its output's one consumer.
"""

from __future__ import annotations

from torch import nn

from archlab.trace.formulas import fmt_shape

_PASSTHROUGH = ("Dropout", "Identity", "F.dropout")


def _consumers(rows) -> dict[int, list[int]]:
    users: dict[int, list[int]] = {}
    for i, row in enumerate(rows):
        for j in row.inputs:
            users.setdefault(j, []).append(i)
    return users


def _linear_chains(rows, modules: dict[str, nn.Module]) -> list[str]:
    users = _consumers(rows)

    def is_linear(i: int) -> bool:
        return rows[i].type == "Linear" and isinstance(modules.get(rows[i].name), nn.Linear)

    def next_linear(i: int) -> int | None:
        """The Linear that alone consumes row i's output, through dropout-like rows."""
        while len(users.get(i, [])) == 1:
            j = users[i][0]
            if len(rows[j].inputs) != 1:
                return None
            if is_linear(j):
                return j
            if not rows[j].type.startswith(_PASSTHROUGH):
                return None
            i = j
        return None

    notes, taken = [], set()
    for start in range(len(rows)):
        if start in taken or not is_linear(start):
            continue
        chain = [start]
        while (nxt := next_linear(chain[-1])) is not None:
            chain.append(nxt)
        taken.update(chain)
        if len(chain) < 2:
            continue
        layers = [modules[rows[i].name] for i in chain]
        first, last = layers[0].in_features, layers[-1].out_features
        params = sum(p.numel() for m in layers for p in m.parameters())
        notes.append(
            f"{' → '.join(rows[i].name for i in chain)}: no activation between these Linear "
            f"layers, so they compose to one linear map {first} → {last}: a single "
            f"nn.Linear({first}, {last}) ({first * last + last:,} parameters) computes "
            f"anything these {len(chain)} ({params:,} parameters) can"
        )
    return notes


def teaching_notes(rows, model: nn.Module) -> list[str]:
    """The notes for a finished trace (rows with ``inputs``), in a fixed order."""
    modules = dict(model.named_modules())
    notes = _linear_chains(rows, modules)
    for row in rows:
        if row.type in ("Dropout2d", "Dropout3d") and len(row.input) < 3:
            notes.append(
                f"{row.name}: {row.type} is meant for feature maps; on a flat "
                f"{fmt_shape(row.input)} tensor PyTorch falls back to plain dropout with a "
                "deprecation warning (a future release will raise): use nn.Dropout here"
            )
    users = _consumers(rows)
    for i, row in enumerate(rows):
        conv = modules.get(row.name)
        if not isinstance(conv, nn.modules.conv._ConvNd) or conv.bias is None:
            continue
        if row.type != type(conv).__name__ or len(users.get(i, [])) != 1:
            continue
        bn = rows[users[i][0]]
        if bn.type.startswith("BatchNorm") and bn.inputs == [i]:
            notes.append(
                f"{row.name}: its bias is cancelled by {bn.name} ({bn.type}), which subtracts "
                f"the mean right after; bias=False would save {conv.bias.numel()} parameters"
            )
    for i, row in enumerate(rows):
        if not (row.type.startswith(("flatten", "view", "reshape")) and row.formula):
            continue
        for j in users.get(i, []):
            nxt = rows[j]
            if nxt.type == "Linear" and nxt.inputs == [i]:
                notes.append(f"{row.formula} matches {nxt.name}.in_features")
    return notes
