"""Broken models whose mistake is upstream of where the shapes first disagree, one per
class, written for archlab's fix trials. Each has ``input_shape``, ``fix`` (what the
printed fix must say) and, where the fix is a code change, ``Fixed``: the model with
that change made by hand. A ``--set`` in the printed fix is applied on top, as a student
would type it; the model must then run and output 10 scores per image."""

import torch
import torch.nn.functional as F
from torch import nn


class CatAlongBatch(nn.Module):
    """Two heads concatenated along dim 0 (the images) instead of dim 1 (the features):
    resizing fc to 16 would run, with twice as many rows as images."""

    input_shape = (20,)
    fix = "torch.cat(..., dim=1) instead of dim=0"

    def __init__(self, dim: int = 0) -> None:
        super().__init__()
        self.dim = dim
        self.a, self.b, self.fc = nn.Linear(20, 16), nn.Linear(20, 16), nn.Linear(32, 10)

    def forward(self, x):
        return self.fc(torch.cat([self.a(x), self.b(x)], self.dim))


class CatAlongBatchFixed(CatAlongBatch):
    def __init__(self) -> None:
        super().__init__(dim=1)


class TokensWrongTranspose(nn.Module):
    """Patches to tokens with transpose(0, 1), which swaps the images with the channels:
    resizing ln to the token count would break the head."""

    input_shape = (1, 28, 28)
    fix = "transpose(1, 2) instead of transpose(0, 1)"

    def __init__(self, pair: tuple[int, int] = (0, 1)) -> None:
        super().__init__()
        self.pair = pair
        self.patch = nn.Conv2d(1, 16, 4, stride=4)
        self.ln = nn.LayerNorm(16)
        self.head = nn.Linear(16, 10)

    def forward(self, x):
        tokens = self.patch(x).flatten(2).transpose(*self.pair)
        return self.head(self.ln(tokens).mean(1))


class TokensWrongTransposeFixed(TokensWrongTranspose):
    def __init__(self) -> None:
        super().__init__(pair=(1, 2))


class UnfoldWithoutTranspose(nn.Module):
    """F.unfold puts each patch in a column; a Linear over patches needs them in rows."""

    input_shape = (1, 28, 28)
    fix = "x.transpose(1, 2) before proj"

    def __init__(self, transpose: bool = False) -> None:
        super().__init__()
        self.transpose = transpose
        self.proj, self.head = nn.Linear(16, 32), nn.Linear(32, 10)

    def forward(self, x):
        patches = F.unfold(x, 4, stride=4)
        if self.transpose:
            patches = patches.transpose(1, 2)
        return self.head(self.proj(patches).mean(1))


class UnfoldWithoutTransposeFixed(UnfoldWithoutTranspose):
    def __init__(self) -> None:
        super().__init__(transpose=True)


class DepthwiseAfterNarrowConv(nn.Module):
    """A depthwise conv (groups=32) after a conv of 16 channels: in_channels=16 cannot be
    built with groups=32, so the conv before must output 32."""

    input_shape = (1, 28, 28)
    fix = "--set conv1.out_channels=32"

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, 3)
        self.dw = nn.Conv2d(32, 32, 3, groups=32)
        self.fc = nn.Linear(32, 10)

    def forward(self, x):
        return self.fc(self.dw(F.relu(self.conv1(x))).mean((2, 3)))


class ViewAcrossImages(nn.Module):
    """The lecture's view(-1, 784) on 3-channel images: the view, then fc, must change."""

    input_shape = (3, 28, 28)
    fix = "x.view(x.size(0), -1)"

    def __init__(self, per_image: bool = False) -> None:
        super().__init__()
        self.per_image = per_image
        self.fc = nn.Linear(784, 10)

    def forward(self, x):
        return self.fc(x.view(x.size(0), -1) if self.per_image else x.view(-1, 784))


class ViewAcrossImagesFixed(ViewAcrossImages):
    def __init__(self) -> None:
        super().__init__(per_image=True)


class WrongLinearSize(nn.Module):
    """The mistake is the Linear's own: resizing it is the fix."""

    input_shape = (1, 28, 28)
    fix = "--set fc.in_features=1352"

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 8, 3, stride=2)
        self.fc = nn.Linear(1000, 10)

    def forward(self, x):
        return self.fc(torch.flatten(F.relu(self.conv(x)), 1))


class Separable(nn.Module):
    """A depthwise 3×3 convolution (groups = in = out), then a pointwise 1×1 one."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.depthwise = nn.Conv2d(cin, cin, 3, padding=1, groups=cin)
        self.pointwise = nn.Conv2d(cin, cout, 1)

    def forward(self, x):
        return F.relu(self.pointwise(F.relu(self.depthwise(x))))


class DepthwiseSeparableMiswired(nn.Module):
    """blocks.2 is written for 32 channels but blocks.1 outputs 64: resizing the depthwise
    conv's in_channels alone would build, as a grouped conv (weights 32×2×3×3), no longer
    depthwise-separable; the fix is upstream."""

    input_shape = (1, 28, 28)
    fix = "--set blocks.1.pointwise.out_channels=32"

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(1, 16, 3, padding=1)
        self.blocks = nn.Sequential(Separable(16, 32), Separable(32, 64), Separable(32, 64))
        self.fc = nn.Linear(64, 10)

    def forward(self, x):
        return self.fc(self.blocks(F.relu(self.stem(x))).mean((2, 3)))
