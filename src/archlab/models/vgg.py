"""VGG: stacks of 3×3 convolutions, a pool after each pair."""

from __future__ import annotations

import torch
from torch import nn

from archlab.models._registry import register_model


def vgg_block(in_channels: int, out_channels: int) -> nn.Sequential:
    """Two 3×3 convolutions (each + BatchNorm + ReLU), then a 2×2 max pool: H×W → H/2×W/2.

    ``padding=1`` keeps the size through each convolution (H + 2 − 3 + 1 = H), so only
    the pool shrinks the maps. The convolutions have no bias: the BatchNorm right after
    subtracts the mean, which would cancel it.
    """
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(),
        nn.Conv2d(out_channels, out_channels, kernel_size=3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(),
        nn.MaxPool2d(kernel_size=2, stride=2),
    )


class VGG(nn.Module):
    """Simonyan and Zisserman, "Very deep convolutional networks for large-scale image
    recognition", 2014 (ICLR 2015): only 3×3 convolutions, in blocks that end with a pool,
    the number of maps doubling each time the maps halve; then fully connected layers.

    The idea: two stacked 3×3 convolutions see a 5×5 region (three see 7×7) with fewer
    weights than one 5×5 convolution (2·9·C² = 18·C² against 25·C²) and with one more
    non-linearity in between. Depth comes from repeating one simple block.

    VGG-16 has 13 convolutions of 64 to 512 maps on 224×224 images; this one has three
    blocks of 16, 32 and 64 maps, narrow enough to train in minutes on a CPU. BatchNorm
    (2015, after VGG) follows every convolution, as in the lecture's CNN, so that the
    comparison is about the architecture rather than about BatchNorm.

    What it costs: 635,226 parameters and 7.9 M multiply-accumulates per image. The MACs
    are in the convolutions, spread evenly over the blocks: each block's second
    convolution does 1.8 M, because halving the maps (¼ of the positions) comes with
    doubling the maps' number (4× the weights per position). The parameters are in the
    fully connected head, as in VGG-16 (there 124 M of 138 M): it holds 563,210 of them
    (89%) but does only 7% of the MACs, since each of its weights is used once per
    image, a convolution's at every position.
    Input ``(N, 1, 28, 28)``, output logits ``(N, 10)``.
    """

    def __init__(self, widths: tuple[int, ...] = (16, 32, 64), hidden: int = 512) -> None:
        super().__init__()
        blocks, channels, side = [], 1, 28
        for width in widths:
            blocks.append(vgg_block(channels, width))
            channels, side = width, side // 2  # 28 → 14 → 7 → 3: the last pool drops a row
        self.features = nn.Sequential(*blocks)
        self.classifier = nn.Sequential(
            nn.Flatten(),  # 64 maps of 3×3 → 576 values
            nn.Linear(channels * side * side, hidden),
            nn.ReLU(),
            # the lecture's rate rather than VGG's 0.5: 5 epochs leave little to overfit
            nn.Dropout(0.25),
            nn.Linear(hidden, hidden),
            nn.ReLU(),
            nn.Dropout(0.25),
            nn.Linear(hidden, 10),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


@register_model(
    "vgg",
    "a narrow VGG: three pairs of 3×3 convs (16, 32, 64 maps), 576 → 512 → 512 → 10",
    group="zoo",
    paper='Simonyan, Zisserman, "Very deep convolutional networks for large-scale image '
    'recognition", 2014',
    idea="depth from repeating one block: two 3×3 convolutions see 5×5 with fewer weights "
    "than one 5×5; most parameters end up in the fully connected head",
    lesson=(
        "92.7 %, a point above the CNN with 43 % of its parameters: two 3×3 convolutions see "
        "as far as one 5×5 with fewer weights and one more ReLU"
    ),
    measured={"accuracy": 92.7, "train_seconds": 133},  # benchmarks/zoo.py, 5 epochs, seed 0
    train_time="about 2.5 min",
)
def vgg() -> nn.Module:
    return VGG()
