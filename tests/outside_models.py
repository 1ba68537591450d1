"""Small models beyond the registry (an RNN, a depthwise-separable net, a residual branch
with BatchNorm) on which the analyses are checked against their direct definitions."""

import torch
from torch import nn


class _RowsGRU(nn.Module):
    """An RNN over the image's rows."""

    def __init__(self):
        super().__init__()
        self.rnn = nn.GRU(28, 12, batch_first=True)
        self.fc = nn.Linear(12, 10)

    def forward(self, x):
        out, _ = self.rnn(x[:, 0])
        return self.fc(out[:, -1])


class _Depthwise(nn.Module):
    """A depthwise-separable block (groups = in = out), then global average pooling."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(1, 8, 3, padding=1)
        self.depthwise = nn.Conv2d(8, 8, 3, padding=1, groups=8)
        self.pointwise = nn.Conv2d(8, 16, 1)
        self.fc = nn.Linear(16, 10)

    def forward(self, x):
        x = torch.relu(self.stem(x))
        x = torch.relu(self.pointwise(self.depthwise(x)))
        return self.fc(x.mean(dim=(2, 3)))


class _Residual(nn.Module):
    """A residual branch with BatchNorm and an empty-Sequential shortcut."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(1, 8, 3, padding=1)
        self.body = nn.Sequential(nn.Conv2d(8, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU())
        self.shortcut = nn.Sequential()
        self.fc = nn.Linear(8 * 7 * 7, 10)

    def forward(self, x):
        x = torch.relu(self.stem(x))
        x = self.body(x) + self.shortcut(x)
        return self.fc(nn.functional.max_pool2d(x, 4).flatten(1))


OUTSIDE_MODELS = [_RowsGRU, _Depthwise, _Residual]
