"""Models with the mistakes students make. Each has ``input_shape``, ``where`` (the text the
diagnosis must start with: the layer or operation) and ``fix`` (a text the fix must hold);
``Fixed`` is the same model with that fix applied, which must trace cleanly."""

import torch
import torch.nn.functional as F
from torch import nn


class LectureView(nn.Module):
    """The lecture's view(-1, 784) on 3×28×28 images: 6 rows for 2 images."""

    input_shape = (3, 28, 28)
    where = "in forward, view(-1, 784)"
    fix = "x.view(x.size(0), -1)"

    def __init__(self, features: int = 784) -> None:
        super().__init__()
        self.fc = nn.Linear(features, 10)

    def forward(self, x):
        return self.fc(x.view(-1, 784))


class LectureViewFixed(LectureView):
    def __init__(self) -> None:
        super().__init__(3 * 28 * 28)

    def forward(self, x):
        return self.fc(x.view(x.size(0), -1))


class View200(nn.Module):
    """x.view(-1, 200) on 400 features per image doubles the batch."""

    input_shape = (400,)
    where = "in forward, view(-1, 200)"
    fix = "x.view(x.size(0), -1)"

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(200, 10)

    def forward(self, x):
        return self.fc(x.view(-1, 200))


class View200Fixed(View200):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(400, 10)

    def forward(self, x):
        return self.fc(x.view(x.size(0), -1))


class FlattenAll(nn.Module):
    input_shape = (1, 8, 8)
    where = "in forward, flatten"
    fix = "torch.flatten(x, 1)"

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(64, 10)

    def forward(self, x):
        return self.fc(torch.flatten(x))


class FlattenAllFixed(FlattenAll):
    def forward(self, x):
        return self.fc(torch.flatten(x, 1))


class ViewAll(FlattenAll):
    where = "in forward, view(-1)"
    fix = "x.view(x.size(0), -1)"

    def forward(self, x):
        return self.fc(x.view(-1))


class ViewAllFixed(FlattenAll):
    def forward(self, x):
        return self.fc(x.view(x.size(0), -1))


class ForgotFlatten(nn.Module):
    input_shape = (1, 28, 28)
    where = "fc (Linear)"
    fix = "torch.flatten(x, 1)"

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(784, 10)

    def forward(self, x):
        return self.fc(x)


class ForgotFlattenFixed(ForgotFlatten):
    def forward(self, x):
        return self.fc(torch.flatten(x, 1))


class ForgotFlattenAfterConv(nn.Module):
    input_shape = (1, 28, 28)
    where = "fc (Linear)"
    fix = "torch.flatten(x, 1)"

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3)
        self.fc = nn.Linear(4 * 26 * 26, 10)

    def forward(self, x):
        return self.fc(self.conv(x))


class ForgotFlattenAfterConvFixed(ForgotFlattenAfterConv):
    def forward(self, x):
        return self.fc(torch.flatten(self.conv(x), 1))


class RGBNet(nn.Module):
    """Built for colour images, traced with the default 1-channel input."""

    input_shape = (1, 28, 28)
    where = "conv (Conv2d)"
    fix = "--input 3,28,28"
    fixed_input = (3, 28, 28)

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3)

    def forward(self, x):
        return self.conv(x)


class ChannelsLastSequence(nn.Module):
    """(N, L, C) fed to Conv1d, which takes (N, C, L)."""

    input_shape = (50, 20)
    where = "conv (Conv1d)"
    fix = "x.transpose(1, 2)"

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv1d(20, 8, 3)

    def forward(self, x):
        return self.conv(x)


class ChannelsLastSequenceFixed(ChannelsLastSequence):
    def forward(self, x):
        return self.conv(x.transpose(1, 2))


class WrongGroupNorm(nn.Module):
    input_shape = (3, 16, 16)
    where = "norm (GroupNorm)"
    fix = "num_channels=8"

    def __init__(self, channels: int = 16) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3)
        self.norm = nn.GroupNorm(2, channels)

    def forward(self, x):
        return self.norm(self.conv(x))


class WrongGroupNormFixed(WrongGroupNorm):
    def __init__(self) -> None:
        super().__init__(8)


class ResidualMismatch(nn.Module):
    """A shortcut that skips a stride-2 conv: 8×8 + 16×16."""

    input_shape = (4, 16, 16)
    where = "in forward, add"
    fix = "1×1 conv"

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(4, 4, 3, stride=2, padding=1)

    def forward(self, x):
        return self.conv(x) + x


class ResidualMismatchFixed(ResidualMismatch):
    def __init__(self) -> None:
        super().__init__()
        self.shortcut = nn.Conv2d(4, 4, 1, stride=2)

    def forward(self, x):
        return self.conv(x) + self.shortcut(x)


class CatMismatch(nn.Module):
    """A U-Net skip of 32×32 concatenated with an unpadded 30×30 branch."""

    input_shape = (3, 32, 32)
    where = "in forward, torch.cat"
    fix = "crop or pad"

    def __init__(self, padding: int = 0) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 3, padding=padding)

    def forward(self, x):
        return torch.cat([x, self.conv(x)], dim=1)


class CatMismatchFixed(CatMismatch):
    def __init__(self) -> None:
        super().__init__(padding=1)


class PoolToNothing(nn.Module):
    input_shape = (1, 6, 6)
    where = "in forward, F.max_pool2d"
    fix = "larger input"

    def forward(self, x):
        for _ in range(3):
            x = F.max_pool2d(x, 2)
        return x


class BatchNorm2dOnFlat(nn.Module):
    input_shape = (20,)
    where = "bn (BatchNorm2d)"
    fix = "nn.BatchNorm1d(16)"

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(20, 16)
        self.bn = nn.BatchNorm2d(16)

    def forward(self, x):
        return self.bn(self.fc(x))


class BatchNorm2dOnFlatFixed(BatchNorm2dOnFlat):
    def __init__(self) -> None:
        super().__init__()
        self.bn = nn.BatchNorm1d(16)


class ReflectTooWide(nn.Module):
    input_shape = (1, 4, 4)
    where = "conv (Conv2d)"
    fix = "--set conv.padding=3"  # tried: padding 3 < 4 makes it run

    def __init__(self, padding: int = 5) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3, padding=padding, padding_mode="reflect")

    def forward(self, x):
        return self.conv(x)


class ReflectTooWideFixed(ReflectTooWide):
    def __init__(self) -> None:
        super().__init__(padding=1)


class FunctionalReflect(nn.Module):
    input_shape = (1, 4, 4)
    where = "in forward, F.pad"
    fix = "pad by less than 4"

    def forward(self, x):
        return F.pad(x, (5, 5, 5, 5), mode="reflect")


class MeanOverBatch(nn.Module):
    """mean(0) averages the images together: the output has no row per image."""

    input_shape = (8,)
    where = "in forward, mean(0)"
    fix = "keep dim 0"

    def forward(self, x):
        return x.mean(0)


class MatmulMismatch(nn.Module):
    input_shape = (5, 8)
    where = "in forward, matmul"
    fix = "transpose"

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.zeros(5, 3))

    def forward(self, x):
        return x @ self.w


class MatmulMismatchFixed(MatmulMismatch):
    def forward(self, x):
        return x.transpose(1, 2) @ self.w
