"""Network in Network: 1×1 convolutions and global average pooling, no Linear layer."""

from __future__ import annotations

import torch
from torch import nn

from archlab.models._registry import register_model


def mlpconv(in_channels: int, out_channels: int, kernel_size: int) -> nn.Sequential:
    """An mlpconv block: a k×k convolution, then two 1×1 convolutions, each + BN + ReLU.

    A 1×1 convolution is a fully connected layer applied at every pixel on its own: it
    mixes the channels of one position (C_in·C_out weights) and never looks at the
    neighbours. Two of them after the k×k convolution make a small MLP per pixel, the
    "micro network" of the paper's title. Padding ``k // 2`` keeps H×W.
    """
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(),
        nn.Conv2d(out_channels, out_channels, kernel_size=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(),
        nn.Conv2d(out_channels, out_channels, kernel_size=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(),
    )


class NiN(nn.Module):
    """Lin, Chen and Yan, "Network in Network", 2013 (ICLR 2014): mlpconv blocks, and at the
    end one feature map per class, averaged over the whole image into the class score.

    The idea: the lecture's CNN needs ``nn.Linear(64 * 6 * 6, 600)``, and the 2304 in it
    must match the maps' size exactly (the lecture's lesson). NiN has no Linear layer: its
    last 1×1 convolution outputs 10 maps, and global average pooling turns each map into
    one number, whatever its size. No ``in_features`` to get wrong, and no 1.4 M weights
    in a fully connected layer: the whole network has 35,514 parameters.

    What it costs: the 1×1 convolutions run at every pixel, so the MACs (3.4 M per image)
    are spent at full and half resolution like any convolution's; the paper also relied on
    dropout between blocks. BatchNorm (2015) follows every convolution here, as in the
    lecture's CNN, so that the comparison is about the architecture. Input
    ``(N, 1, 28, 28)``, output logits ``(N, 10)``.
    """

    def __init__(self, widths: tuple[int, int, int] = (16, 32, 64)) -> None:
        super().__init__()
        self.features = nn.Sequential(
            mlpconv(1, widths[0], kernel_size=5),  # 28 → 28: a wider first filter, as NiN's
            nn.MaxPool2d(kernel_size=2, stride=2),  # 28 → 14
            mlpconv(widths[0], widths[1], kernel_size=3),  # 14 → 14
            nn.MaxPool2d(kernel_size=2, stride=2),  # 14 → 7
            mlpconv(widths[1], widths[2], kernel_size=3),  # 7 → 7
        )
        # one 7×7 map per class; no BN or ReLU after it: these are the scores' maps
        self.classifier = nn.Sequential(
            nn.Conv2d(widths[2], 10, kernel_size=1),
            nn.AdaptiveAvgPool2d(1),  # 10×7×7 → 10×1×1: the mean of each map
            nn.Flatten(),  # 10×1×1 → 10 scores
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


@register_model(
    "nin",
    "Network in Network: three mlpconv blocks, 10 maps averaged into 10 scores",
    group="zoo",
    paper='Lin, Chen, Yan, "Network in Network", 2013',
    idea="1×1 convolutions as a per-pixel MLP, and global average pooling instead of fully "
    "connected layers: no in_features to get wrong",
    lesson=(
        "90.6 % with 35,514 parameters and no Linear layer, 1.1 points below the CNN at 1/42 "
        "of its size: ten averaged maps leave little room for the hard upper-body classes"
    ),
    measured={"accuracy": 90.6, "train_seconds": 101},  # benchmarks/zoo.py, 5 epochs, seed 0
    train_time="about 2 min",
)
def nin() -> nn.Module:
    return NiN()
