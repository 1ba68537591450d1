"""Valid models nobody at archlab wrote the like of: the tracer must follow them exactly.

Each class has ``input_shape`` (one sample) and, where it needs integer input, ``dtype``.
"""

import torch
import torch.nn.functional as F
from torch import nn


class LeNet5(nn.Module):
    """LeCun et al. 1998, with functional pooling and activations as textbooks write it."""

    input_shape = (1, 32, 32)

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, 5)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.avg_pool2d(torch.tanh(self.conv2(x)), kernel_size=2, stride=2)
        x = torch.flatten(x, 1)
        return self.fc3(F.relu(self.fc2(F.relu(self.fc1(x)))))


class Block(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout)
            )

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class TinyResNet(nn.Module):
    """A CIFAR-style ResNet: residual additions and a global average by mean()."""

    input_shape = (3, 32, 32)

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 16, 3, padding=1)
        self.layer1 = Block(16, 16, 1)
        self.layer2 = Block(16, 32, 2)
        self.fc = nn.Linear(32, 10)

    def forward(self, x):
        x = self.layer2(self.layer1(F.relu(self.stem(x))))
        return self.fc(x.mean(dim=(2, 3)))


class UNetDecoder(nn.Module):
    """Encoder, upsampling and skip concatenation, as U-Net decoders do."""

    input_shape = (3, 32, 32)

    def __init__(self) -> None:
        super().__init__()
        self.enc1 = nn.Conv2d(3, 8, 3, padding=1)
        self.enc2 = nn.Conv2d(8, 16, 3, padding=1)
        self.up = nn.ConvTranspose2d(16, 8, 2, stride=2)
        self.dec = nn.Conv2d(16, 8, 3, padding=1)
        self.head = nn.Conv2d(8, 2, 1)

    def forward(self, x):
        s1 = F.relu(self.enc1(x))
        x = F.relu(self.enc2(F.max_pool2d(s1, 2)))
        x = self.up(x, output_size=s1.shape)
        x = torch.cat([x, s1], dim=1)
        x = F.relu(self.dec(x))
        x = F.interpolate(x, scale_factor=0.5, mode="bilinear", align_corners=False)
        x = F.pad(x, (1, 1, 1, 1), mode="reflect")
        return self.head(x)


class LSTMTagger(nn.Module):
    """Token ids → embeddings → LSTM → last step's features → classes."""

    input_shape = (12,)
    dtype = torch.long

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(100, 16)
        self.lstm = nn.LSTM(16, 32, batch_first=True)
        self.gru = nn.GRU(32, 24, num_layers=2)
        self.fc = nn.Linear(24, 5)

    def forward(self, x):
        out, (_h, _c) = self.lstm(self.embed(x))
        out, h = self.gru(out.permute(1, 0, 2))  # the GRU takes (L, N, H)
        return self.fc(h[-1])


class TinyAttention(nn.Module):
    """A transformer block by hand: MultiheadAttention, residuals, LayerNorm, matmul."""

    input_shape = (10, 32)

    def __init__(self) -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(32, 4, batch_first=True)
        self.norm = nn.LayerNorm(32)
        self.q = nn.Linear(32, 32)
        self.k = nn.Linear(32, 32)
        self.head = nn.Linear(32, 3)

    def forward(self, x):
        a, _ = self.attn(x, x, x)
        x = self.norm(x + a)
        scores = self.q(x) @ self.k(x).transpose(1, 2) / 32**0.5
        x = torch.softmax(scores, dim=-1) @ x
        return self.head(x[:, 0])


class Unusual(nn.Module):
    """Keyword tensors, view(dtype), squeeze before Linear, pooling with indices, stack."""

    input_shape = (1, 8, 8)

    def __init__(self) -> None:
        super().__init__()
        self.pool = nn.MaxPool2d(2, return_indices=True)
        self.fc1 = nn.Linear(16, 8)
        self.fc2 = nn.Linear(8, 4)

    def forward(self, x):
        x = torch.relu(input=x)
        x, _ = self.pool(x)
        x = torch.reshape(input=x, shape=(x.size(0), 1, -1))
        x = x.view(torch.int32).view(torch.float32)
        x = x.squeeze(1)
        x = torch.stack([x, x * 2], dim=1).amax(dim=1)
        return self.fc2(F.relu(self.fc1(x)))


class TwoHeads(nn.Module):
    """Two parallel Linear heads: they do not compose (no note may say they do)."""

    input_shape = (20,)

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv1d(1, 4, 3)
        self.bn_other = nn.BatchNorm1d(4)
        self.a = nn.Linear(72, 5)
        self.b = nn.Linear(72, 5)

    def forward(self, x):
        y = self.conv(x.unsqueeze(1))
        z = self.bn_other(F.relu(y))  # the BatchNorm does not consume the conv directly
        z = torch.flatten(z, 1)
        return self.a(z) + self.b(z)
