"""Models a user might point archlab at (used by the tests as path/to/file.py:Class)."""

import torch
from torch import nn


class TinyNet(nn.Module):
    input_shape = (1, 12, 12)

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3)  # 12 → 10
        self.pool = nn.MaxPool2d(2)  # 10 → 5
        self.head = nn.Linear(4 * 5 * 5, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.pool(torch.relu(self.conv(x))).reshape(x.size(0), -1))


class NeedsArgs(nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.fc = nn.Linear(width, 2)


class DropoutOnFlat(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(784, 32)
        self.drop = nn.Dropout2d(0.25)
        self.fc2 = nn.Linear(32, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.drop(torch.relu(self.fc1(x.flatten(1)))))
