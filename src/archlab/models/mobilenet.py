"""MobileNet (v1): depthwise-separable convolutions."""

from __future__ import annotations

import torch
from torch import nn

from archlab.models._registry import register_model


def separable(in_channels: int, out_channels: int, stride: int = 1) -> nn.Sequential:
    """A depthwise-separable convolution: a 3×3 depthwise then a 1×1 pointwise convolution.

    The depthwise convolution (``groups=in_channels``) filters each channel on its own:
    9·C_in weights. The pointwise 1×1 convolution then mixes the channels: C_in·C_out
    weights. A full 3×3 convolution does both at once with 9·C_in·C_out weights, so the
    separable one needs 1/C_out + 1/9 of them (and of the MACs): about 8× fewer here.
    """
    return nn.Sequential(
        nn.Conv2d(
            in_channels,
            in_channels,
            kernel_size=3,
            stride=stride,
            padding=1,
            groups=in_channels,
            bias=False,
        ),
        nn.BatchNorm2d(in_channels),
        nn.ReLU(),
        nn.Conv2d(in_channels, out_channels, kernel_size=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(),
    )


class MobileNet(nn.Module):
    """Howard et al., "MobileNets: efficient convolutional neural networks for mobile
    vision applications", 2017: every convolution after the first is depthwise-separable.

    The idea: a 3×3 convolution looks at neighbouring pixels *and* mixes channels in one
    step. MobileNet splits the two: a depthwise 3×3 convolution per channel, then a 1×1
    convolution across channels. The parameters and MACs fall by about the kernel area
    (9×), for a small loss in accuracy.

    This one keeps MobileNet v1's layout (a full 3×3 convolution first, then separable
    blocks, stride 2 where the channels double, global average pooling and one Linear
    layer) with four blocks instead of thirteen: 31,946 parameters and 2.0 M MACs, the
    fewest parameters in the zoo and less than half the lecture's CNN's MACs. Yet a
    training step takes about 0.8× the CNN's time, and per MAC it is about three times
    slower than ``vgg``: a depthwise convolution does only 9 MACs per value it reads and
    writes, so memory traffic, not arithmetic, sets its speed. MACs are not time.
    Input ``(N, 1, 28, 28)``, output logits ``(N, 10)``.
    """

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(1, 16, kernel_size=3, padding=1, bias=False),  # 28 → 28
            nn.BatchNorm2d(16),
            nn.ReLU(),
        )
        self.blocks = nn.Sequential(
            # stride 2: (28 + 2·1 − 3) // 2 + 1 = 14
            separable(16, 32, stride=2),  # 28 → 14
            separable(32, 64),  # 14 → 14
            separable(64, 128, stride=2),  # 14 → 7
            separable(128, 128),  # 7 → 7
        )
        self.head = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),  # 7×7 → 1×1
            nn.Flatten(),
            nn.Linear(128, 10),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(self.stem(x)))


@register_model(
    "mobilenet",
    "MobileNet v1: a 3×3 conv, four depthwise-separable blocks, global average pool",
    group="zoo",
    paper='Howard, Zhu, Chen, Kalenichenko, Wang, Weyand, Andreetto, Adam, "MobileNets: '
    'efficient convolutional neural networks for mobile vision applications", 2017',
    idea="depthwise-separable convolutions: filter each channel, then mix channels with "
    "1×1; about 9× fewer parameters and MACs than full 3×3 convolutions",
    lesson=(
        "89.3 %, 2.4 points below the CNN with 1/46 of its parameters and under half its "
        "MACs, yet nearly its training time: depthwise convolutions do little arithmetic per "
        "byte, so on a CPU MACs are not time"
    ),
    measured={"accuracy": 89.3, "train_seconds": 97},  # benchmarks/zoo.py, 5 epochs, seed 0
    train_time="about 2 min",
)
def mobilenet() -> nn.Module:
    return MobileNet()
