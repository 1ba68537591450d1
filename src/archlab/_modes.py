"""A model run in train or eval mode for a while, each module's own mode put back after."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from torch import nn


@contextlib.contextmanager
def in_mode(model: nn.Module, training: bool = False) -> Iterator[nn.Module]:
    """``model`` in eval mode (or train mode) inside the block; on exit, even on error, every
    module gets back the mode it had, a mixed one included (a frozen BatchNorm in eval
    inside a model in train mode stays so: ``model.train(was)`` would not keep it).

    Example::

        >>> net = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.BatchNorm1d(2))
        >>> net[1].eval()  # doctest: +ELLIPSIS
        BatchNorm1d(...)
        >>> with archlab._modes.in_mode(net):
        ...     net[0].training
        False
        >>> net.training, net[0].training, net[1].training
        (True, True, False)
    """
    modes = {m: m.training for m in model.modules()}
    model.train(training)
    try:
        yield model
    finally:
        for module, mode in modes.items():
            module.training = mode
