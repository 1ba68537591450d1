"""Models as today's textbooks write them: lazy layers (d2l's nn.LazyConv2d, nn.LazyLinear),
an nn.Sequential built in a loop, F.* calls in forward."""

import torch.nn.functional as F
from torch import nn


class LazyLeNet(nn.Module):
    """d2l's LeNet: every layer lazy, its sizes found by the first forward pass."""

    input_shape = (1, 28, 28)

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.LazyConv2d(6, kernel_size=5, padding=2),
            nn.Sigmoid(),
            nn.AvgPool2d(kernel_size=2, stride=2),
            nn.LazyConv2d(16, kernel_size=5),
            nn.Sigmoid(),
            nn.AvgPool2d(kernel_size=2, stride=2),
            nn.Flatten(),
            nn.LazyLinear(120),
            nn.Sigmoid(),
            nn.LazyLinear(num_classes),
        )

    def forward(self, x):
        return self.net(x)


class LoopMLP(nn.Module):
    """A stack built in a loop, LazyLinear first."""

    input_shape = (1, 28, 28)

    def __init__(self, widths=(64, 32)) -> None:
        super().__init__()
        layers = [nn.Flatten()]
        for width in widths:
            layers += [nn.LazyLinear(width), nn.ReLU()]
        layers.append(nn.LazyLinear(10))
        self.net = nn.Sequential(*layers)

    def forward(self, x):
        return self.net(x)


class FunctionalCNN(nn.Module):
    """Layers in __init__, pooling and activations as F.* calls in forward."""

    input_shape = (1, 28, 28)

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.LazyConv2d(8, 3, padding=1)
        self.conv2 = nn.Conv2d(8, 16, 3, padding=1)
        self.fc = nn.LazyLinear(10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        return self.fc(F.dropout(x.flatten(1), 0.1, self.training))
