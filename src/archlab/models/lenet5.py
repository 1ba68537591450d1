"""LeNet-5: the first convolutional network, sized for 28×28 images."""

from __future__ import annotations

import torch
from torch import nn

from archlab.models._registry import register_model


class LeNet5(nn.Module):
    """LeCun, Bottou, Bengio and Haffner, "Gradient-based learning applied to document
    recognition", Proc. IEEE 1998: convolution, subsampling, convolution, subsampling,
    then a small fully connected classifier (120 → 84 → 10).

    The idea: a 5×5 filter slides over the image with the same weights everywhere, so a
    pen stroke (or a collar) is detected wherever it is, with 26 weights instead of one
    weight per pixel; subsampling halves the maps so the next layer sees a wider region.

    Built for 32×32 digits, LeNet's first convolution saw a border of 2 pixels around
    the 28×28 digit. Here the images are 28×28, so, as d2l does, ``padding=2`` adds
    that border back: a 5×5 convolution then keeps 28×28 (28 + 2·2 − 5 + 1 = 28) and
    everything after it has the paper's sizes.

    It uses ReLU and max pooling, as the lecture's CNN and every later model do, where the
    paper had a scaled tanh and an averaging subsampling (d2l keeps a sigmoid and average
    pooling). Measured here with d2l's sigmoids and average pooling (``archlab train
    lenet5 --epochs 1``, seed 0): the training loss stayed near chance (ln 10 = 2.30) for
    the first 100 iterations and the epoch ended at 62.7% test accuracy, where the same
    run of ``resnet`` reached 90.4%. A sigmoid's gradient is at most 1/4 and vanishes
    once it saturates, so through four of them the first filters barely learn. That
    would teach that convolutions lose to fully connected layers, the wrong lesson; with
    ReLU the comparison is about what LeNet's idea and its size buy. The lecture's CNN
    has 24× its parameters, so expect LeNet-5 to land below it.

    Cost: 61,706 parameters and 0.42 M multiply-accumulates per image, the smallest
    MAC count in the zoo. Input ``(N, 1, 28, 28)``, output logits ``(N, 10)``.
    """

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 6, kernel_size=5, padding=2),  # 28 → 28: the padding replaces 32×32
            nn.ReLU(),
            nn.MaxPool2d(kernel_size=2, stride=2),  # 28 → 14
            nn.Conv2d(6, 16, kernel_size=5),  # 14 → 10: no padding, as in the paper
            nn.ReLU(),
            nn.MaxPool2d(kernel_size=2, stride=2),  # 10 → 5
        )
        self.classifier = nn.Sequential(
            nn.Flatten(),  # 16 maps of 5×5 → 400 values
            nn.Linear(16 * 5 * 5, 120),
            nn.ReLU(),
            nn.Linear(120, 84),
            nn.ReLU(),
            nn.Linear(84, 10),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


@register_model(
    "lenet5",
    "LeNet-5 (1998): conv 6, pool, conv 16, pool, 400 → 120 → 84 → 10",
    group="zoo",
    paper='LeCun, Bottou, Bengio, Haffner, "Gradient-based learning applied to document '
    'recognition", Proc. IEEE, 1998',
    idea="convolution and subsampling: a few shared 5×5 filters instead of one weight per "
    "pixel; padding 2 keeps the 28×28 borders in view",
    lesson=(
        "88.5 %, three points below the lecture's CNN with 1/24 of its parameters: six and "
        "sixteen maps see too few patterns to tell a shirt from a T-shirt; it matches the DNN"
        " at a quarter of its size"
    ),
    measured={"accuracy": 88.54, "train_seconds": 23},  # benchmarks/zoo.py, 5 epochs, seed 0
    train_time="about 30 s",
)
def lenet5() -> nn.Module:
    return LeNet5()
