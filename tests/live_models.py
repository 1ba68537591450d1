"""A user's model for the live explorer's tests (issue 30): a residual addition and
operations written in ``forward`` (``F.relu``, ``F.avg_pool2d``, ``torch.flatten``), so that
rows with no module of their own must become graph outputs too."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class ResidualNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(1, 8, 3, padding=1)
        self.conv = nn.Conv2d(8, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.head = nn.Linear(8 * 7 * 7, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.stem(x))
        x = F.relu(self.bn(self.conv(x)) + x)  # the residual addition
        x = F.avg_pool2d(x, 4)  # 28 → 7
        return self.head(torch.flatten(x, 1))
