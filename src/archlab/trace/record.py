"""The trace's rows as the one record of a model's layers: what each row's layer is,
its parameters and MACs, and, on request, its outputs for a batch of real images.

Everything that needs to know a model's layers (``count_params``, Grad-CAM's layer, the
activation points, the explorer) reads the rows of one :func:`~archlab.trace_shapes`
instead of hooking the model again.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Sequence

import torch
from torch import nn

from archlab.trace._batch import BATCH
from archlab.trace.macs import layer_macs


def row_module(row, modules: dict[str, nn.Module], model: nn.Module) -> nn.Module | None:
    """The layer a row records: None for an operation written in ``forward``.

    Args:
        row: a :class:`~archlab.trace.shapes.LayerShape` (or the engine's ``Row``).
        modules: ``dict(model.named_modules())``.
        model: the traced model (a model that is itself one layer has the row of its type).
    """
    if row.functional:
        return None
    found = modules.get(row.name)
    if found is None and row.type == type(model).__name__ and row.name == row.type:
        return model
    return found


def claim(parameters: Iterable[nn.Parameter], claimed: set[int]) -> list[nn.Parameter]:
    """The tensors of ``parameters`` that no earlier layer claimed, now claimed: the one
    rule by which the rows (:func:`add_counts`) and ``params``' table count a weight
    tied between two layers, or a module called twice: once, at its first layer."""
    own = [p for p in parameters if id(p) not in claimed]
    claimed.update(id(p) for p in own)
    return own


def add_counts(layers: Sequence, model: nn.Module) -> None:
    """Fill ``params`` and ``macs`` on every unfolded row.

    ``params`` is the layer's own parameters (a layer called as one unit, such as
    ``nn.MultiheadAttention``, with its children's), each tensor counted at the first row
    that holds it: a module called twice has one set of weights, and a weight tied
    between two layers (``b.weight = a.weight``) is counted at ``a`` only, so the rows
    add up to the model's total. ``macs`` is what each call performs
    (:func:`~archlab.trace.macs.layer_macs`), counted on every call.
    """
    modules = dict(model.named_modules())
    claimed: set[int] = set()  # the parameter tensors counted so far
    for row in layers:
        module = row_module(row, modules, model)
        if module is None:
            continue
        own = claim(module.parameters(), claimed)
        if own or not any(True for _ in module.parameters()):
            row.params = sum(p.numel() for p in own)
        row.macs = layer_macs(module, row.input, row.output)


def row_outputs(
    model: nn.Module, x: torch.Tensor, rows: int
) -> tuple[list[torch.Tensor | None], list[list[str]]]:
    """Every trace row's output for the inputs ``x`` ``(N, C, H, W)`` (``None`` where a row
    has no one-row-per-image tensor), and each row's enclosing blocks, outermost first.

    The tracer runs on :data:`~archlab.trace._batch.BATCH` images at a time, keeping every
    row's output, so that the rows are exactly :func:`~archlab.trace_shapes`' rows (``rows``
    of them: a pass whose rows differ is refused).

    Args:
        model: the model (its mode is restored after).
        x: the model's input ``(N, ...)``, already normalised.
        rows: how many rows the model's trace has.

    Returns:
        ``(outputs, scopes)``: ``outputs[i]`` is row i's output ``(N, ...)`` on the CPU as
        float; ``scopes[i]`` the names of the blocks row i runs inside.

    Example:

        >>> model = archlab.create_model("cnn")
        >>> report = archlab.trace_shapes(model)
        >>> outputs, scopes = row_outputs(model, torch.zeros(3, 1, 28, 28), len(report.layers))
        >>> tuple(outputs[0].shape), scopes[0]
        ((3, 32, 28, 28), ['layer1'])
    """
    from archlab._modes import in_mode
    from archlab.errors import ArchlabError
    from archlab.trace._engine import Tracer

    values: list[list[torch.Tensor | None]] = [[] for _ in range(rows)]
    scopes: list[list[str]] = []
    with in_mode(model):
        for start in range(0, len(x), BATCH):
            batch = x[start : start + BATCH]
            if len(batch) < BATCH:  # the tracer's batch is fixed: pad, then drop the pad
                batch = torch.cat([batch, batch[:1].expand(BATCH - len(batch), *batch.shape[1:])])
            tracer = Tracer(model, blocks=True, keep=True)
            with torch.no_grad(), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                tracer.run(model, batch)
            if tracer.failure is not None or len(tracer.rows) != rows:
                raise ArchlabError(
                    f"{type(model).__name__}: the trace on test images differs from the "
                    "trace on zeros, so its activations cannot be matched to its rows",
                    1,
                )
            if not scopes:
                scopes = [[tracer.calls[c].name for c in r.scope] for r in tracer.rows]
            keep = min(BATCH, len(x) - start)
            for i in range(rows):
                value = tracer.values.get(i)
                if value is None or not value[1].known or value[1].fold != 1:
                    values[i].append(None)
                    continue
                tensor = value[0].movedim(value[1].dim, 0)
                values[i].append(tensor[:keep].float().cpu() if len(tensor) == BATCH else None)
    outputs = [
        None if any(v is None for v in parts) or not parts else torch.cat(parts) for parts in values
    ]
    return outputs, scopes


def outputs_by_name(model: nn.Module, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """Each layer row's output for the inputs ``x``, keyed by the row's name (a layer called
    twice: its first call; rows of operations in ``forward`` are left out).

    Args:
        model: the model.
        x: its input ``(N, ...)``, already normalised.

    Returns:
        ``{row name: (N, ...) float tensor}``.

    Example:

        >>> outs = outputs_by_name(archlab.create_model("cnn"), torch.zeros(3, 1, 28, 28))
        >>> tuple(outs["layer2.3"].shape)
        (3, 64, 6, 6)
    """
    from archlab.errors import ArchlabError
    from archlab.trace.shapes import trace_shapes

    report = trace_shapes(model, tuple(x.shape[1:]))
    if report.error is not None:
        raise ArchlabError(f"{type(model).__name__}: {report.error}", 1)
    outputs, _ = row_outputs(model, x, len(report.layers))
    found: dict[str, torch.Tensor] = {}
    for row, out in zip(report.layers, outputs, strict=True):
        if not row.functional and out is not None:
            found.setdefault(row.name, out)
    return found
