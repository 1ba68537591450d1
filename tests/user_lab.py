"""Models a student might bring, for the any-model tests: a file's class and a factory."""

import torch
from torch import nn


class SmallLeNet(nn.Module):
    """Two 5×5 convolutions for 1×28×28 images: 28 → 24 → 12 → 8 → 4."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 4, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(4, 8, 5), nn.ReLU()
        )
        self.head = nn.Linear(8 * 4 * 4, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = nn.functional.max_pool2d(self.features(x), 2)
        return self.head(torch.flatten(out, 1))


class Talkative(SmallLeNet):
    """Prints on every forward pass, as students' models do."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        print("forward!", tuple(x.shape))
        return super().forward(x)


def small_mlp(hidden: int, classes: int = 10) -> nn.Module:
    """A factory that needs an argument: 784 → hidden → classes."""
    model = nn.Sequential(
        nn.Flatten(), nn.Linear(784, hidden), nn.ReLU(), nn.Linear(hidden, classes)
    )
    return model


class ViewingLeNet(SmallLeNet):
    """Flattens as the lecture's own CNN does, with ``out.view(out.size(0), -1)``: only
    contiguous NCHW activations can be viewed that way."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = nn.functional.max_pool2d(self.features(x), 2)
        return self.head(out.view(out.size(0), -1))


class ResidualNet(nn.Module):
    """A student's residual block: ``relu(conv(conv(x)) + x)``, then a pool and a head."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(1, 6, 3, padding=1)
        self.conv1 = nn.Conv2d(6, 6, 3, padding=1)
        self.conv2 = nn.Conv2d(6, 6, 3, padding=1)
        self.head = nn.Linear(6 * 7 * 7, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.stem(x))
        x = torch.relu(self.conv2(torch.relu(self.conv1(x))) + x)
        x = nn.functional.max_pool2d(x, 4)
        return self.head(x.flatten(1))


class NoParameters(nn.Module):
    """Ten pixels as the ten scores: nothing to train."""

    def forward(self, x):
        return x.flatten(1)[:, :10]


def frozen_linear() -> nn.Module:
    """A linear classifier whose weights are all frozen."""
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 10)).requires_grad_(False)


class DictScores(nn.Module):
    """Returns its scores in a dict, as some libraries' models do."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(784, 10)

    def forward(self, x):
        return {"logits": self.fc(x.flatten(1))}


class IntegerScores(nn.Module):
    """Rounds its scores to integers: nothing for a loss to differentiate."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(784, 10)

    def forward(self, x):
        return self.fc(x.flatten(1)).long()
