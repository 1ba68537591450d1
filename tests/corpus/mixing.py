"""Models whose output for one image depends on other images of the batch, and their
per-image twins. ``mixes`` names where the images first meet (the row's name and type),
``None`` for a model that treats each image on its own; tests/test_mixing.py checks
both by perturbing images directly."""

import torch
import torch.nn.functional as F
from torch import nn


class GRUOverRows(nn.Module):
    """The textbook mistake: a GRU over an image's rows, fed (N, T, F) without batch_first."""

    mixes = ("gru", "GRU")
    batch_first = False

    def __init__(self) -> None:
        super().__init__()
        self.gru = nn.GRU(28, 32, batch_first=self.batch_first)
        self.fc = nn.Linear(32, 10)

    def forward(self, x):
        out, _ = self.gru(x.squeeze(1))  # (N, 28 rows, 28 pixels)
        return self.fc(out[:, -1])


class GRUOverRowsFixed(GRUOverRows):
    mixes = None
    batch_first = True


class LSTMOverRows(nn.Module):
    mixes = ("lstm", "LSTM")

    def __init__(self) -> None:
        super().__init__()
        self.lstm = nn.LSTM(28, 16, num_layers=2, bidirectional=True)
        self.fc = nn.Linear(32, 10)

    def forward(self, x):
        out, _ = self.lstm(x.flatten(1, 2))
        return self.fc(out[:, -1])


class RNNOverRowsSeqFirst(nn.Module):
    """An RNN fed (T, N, F) as it expects: no mixing."""

    mixes = None

    def __init__(self) -> None:
        super().__init__()
        self.rnn = nn.RNN(28, 16, nonlinearity="relu")
        self.fc = nn.Linear(16, 10)

    def forward(self, x):
        out, _ = self.rnn(x.squeeze(1).transpose(0, 1))
        return self.fc(out[-1])


class AttentionAcrossBatch(nn.Module):
    """nn.MultiheadAttention without batch_first: (N, T, E) read as (L, N, E)."""

    mixes = ("attn", "MultiheadAttention")

    def __init__(self) -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(28, 4)
        self.fc = nn.Linear(28, 10)

    def forward(self, x):
        x = x.squeeze(1)
        a, _ = self.attn(x, x, x)
        return self.fc(a.mean(1))


class DotAttentionOverBatch(nn.Module):
    """Scores between images instead of between an image's rows."""

    mixes = ("(forward)", "matmul")

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(784, 10)

    def forward(self, x):
        x = x.flatten(1)
        w = torch.softmax(x @ x.t() / 28.0, dim=-1)
        return self.fc(w @ x)


class CentreOnBatch(nn.Module):
    mixes = ("(forward)", "mean(0)")

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(784, 10)

    def forward(self, x):
        x = x.flatten(1)
        return self.fc(x - x.mean(0))


class CatReversedBatch(nn.Module):
    """torch.cat of the batch with itself reversed along dim 0."""

    mixes = ("(forward)", "flip(0)")

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(2 * 784, 10)

    def forward(self, x):
        x = x.flatten(1)
        return self.fc(torch.cat([x, x.flip(0)], dim=1))


class RolledBatch(nn.Module):
    mixes = ("(forward)", "roll(1, 0)")

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3)
        self.fc = nn.Linear(4 * 26 * 26, 10)

    def forward(self, x):
        return self.fc(self.conv(x.roll(1, 0)).flatten(1))


class SoftmaxOverBatch(nn.Module):
    mixes = ("(forward)", "F.softmax")

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(784, 10)

    def forward(self, x):
        return F.softmax(self.fc(x.flatten(1)), dim=0)


class FirstImageEverywhere(nn.Module):
    """x + x[0]: every image gets the first one added."""

    mixes = ("(forward)", "[0]")  # the index that takes one image for all

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(784, 10)

    def forward(self, x):
        x = x.flatten(1)
        return self.fc(x + x[0])


class ConvAcrossBatch(nn.Module):
    """A Conv1d (one of the layers the trace runs on one image) fed the images as channels."""

    mixes = ("mix", "Conv1d")

    def __init__(self) -> None:
        super().__init__()
        self.mix = nn.Conv1d(11, 11, 1)  # 11: the trace's batch
        self.fc = nn.Linear(784, 10)

    def forward(self, x):
        return self.fc(self.mix(x.flatten(1).unsqueeze(0)).squeeze(0))


class LinearAcrossBatch(nn.Module):
    """A Linear applied to the transposed batch: its features are the images."""

    mixes = ("across", "Linear")

    def __init__(self) -> None:
        super().__init__()
        self.across = nn.Linear(11, 11)
        self.fc = nn.Linear(784, 10)

    def forward(self, x):
        return self.fc(self.across(x.flatten(1).t()).t())


class BatchNormTrainMode(nn.Module):
    """BatchNorm mixes in train mode by design; a trace (eval mode) must not flag it."""

    mixes = None

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3)
        self.bn = nn.BatchNorm2d(4)
        self.fc = nn.Linear(4 * 26 * 26, 10)
        self.train()

    def forward(self, x):
        return self.fc(F.relu(self.bn(self.conv(x))).flatten(1))


class NoisyPerImage(nn.Module):
    """Randomness of its own in eval mode, per image: no mixing."""

    mixes = None

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(784, 10)

    def forward(self, x):
        x = x.flatten(1)
        return self.fc(x + 0.1 * torch.randn_like(x))


class MatmulOverBatch(nn.Module):
    """w @ x with both (N, ·): a matmul whose sum runs over x's images."""

    mixes = ("(forward)", "matmul")

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(784, 10)

    def forward(self, x):
        x = x.flatten(1)
        return self.fc(x[:, : x.size(0)] @ x)


class PermutedBatch(nn.Module):
    """x[perm]: the images reordered by a tensor index."""

    mixes = ("(forward)", "[tensor]")

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(784, 10)

    def forward(self, x):
        return self.fc(x[torch.arange(x.size(0)).flip(0)].flatten(1))
