"""The lecture's convolutional network (FashionCNN)."""

from __future__ import annotations

import torch
from torch import nn

from archlab.models._registry import register_model


class FashionCNN(nn.Module):
    """Two conv blocks and three linear layers, as the lecture prints it.

    Input ``(N, 1, 28, 28)``, output logits ``(N, 10)``; 1,475,338 parameters.
    As in the widely copied original, fc1, fc2 and fc3 have no activation between them;
    ``nn.Dropout`` replaces the original's ``nn.Dropout2d``, which is wrong on flat tensors.
    """

    def __init__(self) -> None:
        super().__init__()
        self.layer1 = nn.Sequential(
            nn.Conv2d(1, 32, kernel_size=3, padding=1),  # 28 → 28
            nn.BatchNorm2d(32),
            nn.ReLU(),
            nn.MaxPool2d(kernel_size=2, stride=2),  # 28 → 14
        )
        self.layer2 = nn.Sequential(
            nn.Conv2d(32, 64, kernel_size=3),  # 14 → 12
            nn.BatchNorm2d(64),
            nn.ReLU(),
            nn.MaxPool2d(2),  # 12 → 6
        )
        self.fc1 = nn.Linear(64 * 6 * 6, 600)
        self.drop = nn.Dropout(0.25)
        self.fc2 = nn.Linear(600, 120)
        self.fc3 = nn.Linear(120, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.layer2(self.layer1(x))
        # flatten rather than the original's view: same values, and it also accepts
        # channels_last tensors, the faster layout for training on a CPU
        out = torch.flatten(out, 1)
        out = self.fc1(out)
        out = self.drop(out)
        out = self.fc2(out)
        return self.fc3(out)


@register_model(
    "cnn",
    "the lecture's CNN: two conv blocks (32, 64 maps) and 2304 → 600 → 120 → 10",
    idea="local 3×3 filters shared over the image, pooling to shrink the maps",
    lecture_accuracy=90.5,
    # the post's mistake: 784 (the flattened length) taken for the side of the map
    lecture_claims=(("layer1.0", (32, 784, 784)), ("layer1.3", (32, 392, 392))),
    measured={"accuracy": 91.72, "train_seconds": 103},  # benchmarks/zoo.py, 5 epochs, seed 0
    train_time="about 2 min",
)
def cnn() -> nn.Module:
    return FashionCNN()
