"""The lecture's fully connected network (FashionDNN)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from archlab.models._registry import register_model


class FashionDNN(nn.Module):
    """784 → 256 → 128 → 10 with ReLU and one dropout, as the lecture prints it.

    Input ``(N, 1, 28, 28)``, output logits ``(N, 10)``; 235,146 parameters.
    """

    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(784, 256)
        self.drop = nn.Dropout(0.25)
        self.fc2 = nn.Linear(256, 128)
        self.fc3 = nn.Linear(128, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = x.view(-1, 784)  # the lecture's view: 28·28 pixels become one vector
        out = F.relu(self.fc1(out))
        out = self.drop(out)
        out = F.relu(self.fc2(out))
        return self.fc3(out)


@register_model(
    "dnn",
    "the lecture's fully connected net: 784 → 256 → 128 → 10",
    idea="every pixel connected to every unit: no notion of neighbourhood",
    lecture_accuracy=86.3,
    measured={"accuracy": 88.55, "train_seconds": 5},  # benchmarks/zoo.py, 5 epochs, seed 0
    train_time="about 10 s",
)
def dnn() -> nn.Module:
    return FashionDNN()
