"""A small ResNet: residual blocks with identity and projection shortcuts."""

from __future__ import annotations

import torch
from torch import nn

from archlab.models._registry import register_model


class BasicBlock(nn.Module):
    """Two 3×3 convolutions whose output is *added* to the block's input: ``F(x) + x``.

    When the block keeps the shape (same channels, stride 1), the shortcut is the identity:
    no parameters at all. When it halves the maps and doubles the channels (stride 2),
    ``x`` no longer has the output's shape, so a 1×1 convolution with stride 2 (and a
    BatchNorm) projects it: the paper's "projection shortcut" (option B).
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(
            in_channels, out_channels, kernel_size=3, stride=stride, padding=1, bias=False
        )
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(out_channels, out_channels, kernel_size=3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        if stride == 1 and in_channels == out_channels:
            self.shortcut: nn.Module = nn.Identity()
        else:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )
        self.relu2 = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu1(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        # the residual connection: the convolutions only learn a correction to x
        return self.relu2(out + self.shortcut(x))


class ResNet(nn.Module):
    """He, Zhang, Ren and Sun, "Deep residual learning for image recognition", 2015 (CVPR
    2016): each block adds its input to its output, so a block that has nothing to add can
    learn zero and pass its input on unchanged.

    The idea: without shortcuts, a deeper stack of convolutions trains *worse* than a
    shallower one (the paper's "degradation problem"), although it could copy the shallow
    one and do nothing in its extra layers. With ``out + shortcut(x)``, doing nothing is
    the easy default, and the gradient reaches the early layers through the additions
    undiminished. That is what let ResNet train 152 layers.

    This one is ResNet's layout shrunk to 28×28: a stem (a 3×3 convolution and a pool where
    ResNet has a 7×7 with stride 2 and a pool), three stages of one block each, the
    channels doubling as the maps halve, global average pooling and one Linear layer.
    The first block has an identity shortcut, the two others 1×1 projections.

    What it costs: 308,074 parameters and 10.3 M multiply-accumulates per image, the most
    MACs in the zoo and the slowest to train here (about 1.5-1.8× the lecture's CNN per
    step). Every block is two 3×3 convolutions, so the MACs grow with depth as in any CNN;
    the shortcuts are free (identity) or cheap (1×1). Global average pooling leaves only a
    128 → 10 Linear layer. Input ``(N, 1, 28, 28)``, output logits
    ``(N, 10)``.
    """

    def __init__(self, width: int = 32) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(1, width, kernel_size=3, padding=1, bias=False),  # 28 → 28
            nn.BatchNorm2d(width),
            nn.ReLU(),
            nn.MaxPool2d(kernel_size=2, stride=2),  # 28 → 14
        )
        self.stage1 = BasicBlock(width, width)  # 14 → 14, identity shortcut
        self.stage2 = BasicBlock(width, 2 * width, stride=2)  # 14 → 7, projection
        # 7 → 4: (7 + 2·1 − 3) // 2 + 1 = 4, and the 1×1 shortcut: (7 − 1) // 2 + 1 = 4
        self.stage3 = BasicBlock(2 * width, 4 * width, stride=2)
        self.head = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),  # 4×4 → 1×1
            nn.Flatten(),
            nn.Linear(4 * width, 10),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.stem(x)
        out = self.stage3(self.stage2(self.stage1(out)))
        return self.head(out)


@register_model(
    "resnet",
    "a small ResNet: three residual blocks (32, 64, 128 maps), global average pool",
    group="zoo",
    paper='He, Zhang, Ren, Sun, "Deep residual learning for image recognition", 2015',
    idea="residual connections: each block adds its input to its output (identity or 1×1 "
    "projection shortcut), so deep stacks stay trainable",
    lesson=(
        "93.02 %, the zoo's best: the deepest model here trains as easily as the shallow ones"
        " because each block only learns a correction to its shortcut"
    ),
    measured={"accuracy": 93.02, "train_seconds": 166},  # benchmarks/zoo.py, 5 epochs, seed 0
    train_time="about 3 min",
)
def resnet() -> nn.Module:
    return ResNet()
