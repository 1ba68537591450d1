"""speednet: a small BatchNorm conv net shaped for the fast recipe (airbench's layout)."""

from __future__ import annotations

import torch
from torch import nn

from archlab.models._registry import register_model


def conv_bn(in_channels: int, out_channels: int) -> nn.Sequential:
    """3×3 convolution (no bias: BatchNorm's shift replaces it), BatchNorm, GELU."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.GELU(),
    )


class SpeedNet(nn.Module):
    """A net built to train fast on a CPU, after Keller Jordan's airbench (CIFAR-10 to
    94 % in seconds): few layers, every convolution followed by BatchNorm, the maps halved
    early, a global max pool instead of a large fully connected layer.

    Why not the lecture's CNN or the zoo's ResNet? The CNN spends 1.38 M of its 1.48 M
    parameters in one Linear layer (2304 → 600) that sees the maps' positions fixed; the
    ResNet spends 10.3 M multiply-accumulates per image, most of them at 14×14. This net
    does its one full-resolution convolution with ``width`` maps only, and doubles the maps
    as it halves them, so each stage costs about the same: about 5 M multiply-accumulates
    per image at width 24 (the CNN: 4.4 M) and 136,498 parameters. Random crops and flips
    (the fast recipe) need a net whose answer does not hang on exact positions: the global
    max pool gives it that.

    Layout: conv (1 → w) at 28×28, pool → 14; conv (w → 2w), pool → 7; conv (2w → 4w),
    pool → 3; conv (4w → 4w) at 3×3; global max pool; Linear (4w → 10). Input
    ``(N, 1, 28, 28)``, output logits ``(N, 10)``.

    Args:
        width: the first convolution's maps; the others are 2× and 4× it. Default: 24.
    """

    def __init__(self, width: int = 24) -> None:
        super().__init__()
        self.stem = conv_bn(1, width)  # 28 × 28
        self.pool1 = nn.MaxPool2d(2)  # 28 → 14
        self.block1 = conv_bn(width, 2 * width)
        self.pool2 = nn.MaxPool2d(2)  # 14 → 7
        self.block2 = conv_bn(2 * width, 4 * width)
        self.pool3 = nn.MaxPool2d(2)  # 7 → 3 (the last row and column dropped)
        self.block3 = conv_bn(4 * width, 4 * width)
        self.head = nn.Sequential(nn.AdaptiveMaxPool2d(1), nn.Flatten(), nn.Linear(4 * width, 10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.pool1(self.stem(x))
        out = self.pool2(self.block1(out))
        out = self.pool3(self.block2(out))
        return self.head(self.block3(out))


@register_model(
    "speednet",
    "the speedrun's net: four BN conv layers (24, 48, 96, 96 maps), global max pool",
    group="speedrun",
    paper="Keller Jordan, airbench (2024): CIFAR-10 to 94 % in 2.6 s on an A100",
    idea="a net shaped for speed: BatchNorm after every convolution, maps halved early "
    "and doubled as they shrink, a global max pool instead of a large Linear layer",
)
def speednet() -> nn.Module:
    return SpeedNet()
