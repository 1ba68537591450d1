"""Training dynamics: what happens inside each layer while a model trains.

Every ``every`` optimiser steps, per watched layer (each leaf layer with parameters, and
each activation layer), :func:`watch` records:

- ``mean``, ``std``: of the layer's output over the batch (the training forward);
- ``dead``: the fraction of its output units (a channel at a position, or a feature) that
  are never positive over the batch: after a ReLU, the dead units; on a conv or linear
  output, the units a following ReLU would kill;
- ``hist``: the histogram of ``|output|`` in :data:`BINS` bins over ``[0, HIST_MAX)``
  (fast.ai's "colourful dimension" picture, one column per record);
- ``grad_norm``: the L2 norm of the gradient of the layer's parameters (all of them
  together), as the optimiser is about to step;
- ``update_ratio``: ``‖Δw‖ / ‖w‖``, the size of that step relative to the weights (about
  1e-3 is the classic healthy value).

The hooks are registered by one context manager and removed when it exits, even on error.
They read, never write: a watched run's numbers equal an unwatched one's. The recording
needs nothing from the training loop but the optimiser (its step says when gradients
are ready and when the step is done), whose ``step`` is wrapped while watching.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field

import torch
from torch import nn

__all__ = ["BINS", "HIST_MAX", "Watcher", "watch", "watched_layers"]

BINS = 40
HIST_MAX = 10.0
_ACTIVATIONS = (
    nn.ReLU,
    nn.ReLU6,
    nn.LeakyReLU,
    nn.ELU,
    nn.GELU,
    nn.SiLU,
    nn.Tanh,
    nn.Sigmoid,
    nn.Hardswish,
)
STATS = ("mean", "std", "dead", "grad_norm", "update_ratio")
MAX_EVERY = 1_000_000  # steps between records: more than any run here makes


def watched_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The leaf layers with parameters and the activation layers, in registration order."""
    return [
        (name, m)
        for name, m in model.named_modules()
        if name
        and next(m.children(), None) is None
        and (isinstance(m, _ACTIVATIONS) or any(True for _ in m.parameters(recurse=False)))
    ]


@dataclass
class Watcher:
    """The records of one watched stretch of training (see the module's docstring).

    ``points``: one dict per record: ``iteration`` (the step recorded, 1-based) and, per
    statistic, a list with one value per layer in ``layers`` (None where it does not
    apply: an activation has no gradient)."""

    layers: list[str]
    types: list[str]
    every: int
    points: list[dict] = field(default_factory=list)

    def to_history(self) -> dict:
        return {
            "every": self.every,
            "layers": self.layers,
            "types": self.types,
            "bins": BINS,
            "hist_max": HIST_MAX,
            "points": self.points,
        }


def _norm(tensors) -> torch.Tensor:
    return torch.sqrt(sum((t.detach().float() ** 2).sum() for t in tensors))


@contextlib.contextmanager
def watch(
    model: nn.Module,
    optimizer,
    every: int = 50,
    start: int = 0,
    history: dict | None = None,
) -> Iterator[Watcher]:
    """Record the dynamics of ``model`` every ``every`` steps of ``optimizer``.

    Args:
        model: the model being trained.
        optimizer: its optimiser (its ``step`` is wrapped while watching: gradients are
            ready before it, the update done after it).
        every: record the step numbered ``every``, ``2·every``... (1 to 1,000,000).
            Default: 50.
        start: the iteration count before the first step (a resumed run). Default: 0.
        history: a run's history dict: the records go to ``history["dynamics"]`` (appended
            to the ones already there when its ``every`` and layers agree). Default: none.

    Yields:
        The :class:`Watcher` whose ``points`` grow as training runs.
    """
    from archlab._bounds import check_int

    every = check_int("every", every, 1, MAX_EVERY)
    start = check_int("start", start, 0, 2**62)
    layers = watched_layers(model)
    watcher = Watcher([n for n, _ in layers], [type(m).__name__ for _, m in layers], every)
    if history is not None:
        old = history.get("dynamics")
        if old and old.get("every") == every and old.get("layers") == watcher.layers:
            watcher.points = old["points"]
        history["dynamics"] = watcher.to_history()
        history["dynamics"]["points"] = watcher.points
    step = {"n": start}
    now: dict = {}  # this record's tensors, filled by the hooks, emptied at the step's end
    index = {id(m): i for i, (_, m) in enumerate(layers)}
    owners = [list(m.parameters(recurse=False)) for _, m in layers]

    def armed() -> bool:
        return (step["n"] + 1) % every == 0

    def forward(module, args, output) -> None:
        if not (armed() and module.training and isinstance(output, torch.Tensor)):
            return
        with torch.no_grad():
            y = output.detach().float()
            units = (y > 0).flatten(1).any(0) if y.dim() > 1 else (y > 0).reshape(1, -1).any(0)
            now[index[id(module)]] = (
                y.mean(),
                y.std() if y.numel() > 1 else torch.zeros(()),
                1.0 - units.float().mean(),
                torch.histc(y.abs(), BINS, 0.0, HIST_MAX) / y.numel(),
            )

    def before_step(opt, args, kwargs) -> None:
        if not armed():
            return
        with torch.no_grad():
            now["grad"] = [
                _norm([p.grad for p in ps if p.grad is not None]) if ps else None for ps in owners
            ]
            now["weights"] = [[p.detach().clone() for p in ps] for ps in owners]

    def after_step(opt, args, kwargs) -> None:
        step["n"] += 1
        if "grad" not in now:
            now.clear()
            return
        with torch.no_grad():
            ratio = [
                (_norm([p - w for p, w in zip(ps, old, strict=True)]) / _norm(old)) if ps else None
                for ps, old in zip(owners, now["weights"], strict=True)
            ]
        point: dict = {"iteration": step["n"]}
        acts = [now.get(i) for i in range(len(layers))]
        for k, name in enumerate(("mean", "std", "dead")):
            point[name] = [float(a[k]) if a is not None else None for a in acts]
        point["grad_norm"] = [float(g) if g is not None else None for g in now["grad"]]
        point["update_ratio"] = [float(r) if r is not None else None for r in ratio]
        point["hist"] = [a[3].tolist() if a is not None else None for a in acts]
        watcher.points.append(point)
        now.clear()

    original = optimizer.step

    def stepping(*args, **kwargs):
        before_step(optimizer, args, kwargs)
        result = original(*args, **kwargs)
        after_step(optimizer, args, kwargs)
        return result

    handles = [m.register_forward_hook(forward) for _, m in layers]
    had = "step" in vars(optimizer)
    optimizer.step = stepping  # any object with .step(): archlab's Adam has no step hooks
    try:
        yield watcher
    finally:
        for h in handles:
            h.remove()
        if had:
            optimizer.step = original
        else:
            del optimizer.step
