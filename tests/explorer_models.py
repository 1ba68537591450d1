"""A model for the explorer's tests: rows the page has no picture of, and an output with
no gradient."""

from __future__ import annotations

import torch
from torch import nn


class ArgmaxNet(nn.Module):
    """Wraps a model and answers with a one-hot of its argmax (the output has no gradient),
    after dividing the batch by its largest pixel (a row with no output per image)."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner
        self.input_shape = getattr(inner, "input_shape", (1, 28, 28))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scaled = x / x.abs().amax().clamp_min(1e-6)
        return nn.functional.one_hot(self.inner(scaled).argmax(1), 10).float()


def snapshot_runs(run, iterations=(1, 2), seed: int = 0) -> list:
    """Stand-ins for ``archlab.snapshots(run)``: copies of ``run`` whose weights are the
    run's own shrunk towards noise (more so the earlier), named ``NAME@ITERATION``."""
    import copy
    import dataclasses

    g = torch.Generator().manual_seed(seed)
    last = max(iterations) + 1
    found = []
    for it in iterations:
        model = copy.deepcopy(run.model)
        share = it / last
        with torch.no_grad():
            for p in model.parameters():
                p.mul_(share).add_(torch.randn(p.shape, generator=g) * 0.05 * (1 - share))
        found.append(dataclasses.replace(run, model=model, iteration=it, name=f"{run.name}@{it}"))
    return found
