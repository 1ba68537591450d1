"""
Drawing architectures
=====================

``archlab.draw`` turns the shape trace into the picture a textbook would draw by hand:
feature maps as boxes to scale, kernels as windows on the maps they read, the flatten,
the fully connected layers as columns. Nothing is typed in twice: every number on the
picture comes from the trace.
"""

# %%
# The lecture's DNN
# -----------------
# The image is one 28×28 map until ``view(-1, 784)`` lays its pixels in a row; from
# there on every tensor is a column, its height growing with √(features).
import archlab

archlab.draw("dnn").plot()

# %%
# The lecture's CNN
# -----------------
# Each box's front is its map's H × W at one linear scale (the bar under the picture),
# its depth grows with the channels. Padding 1 keeps 28×28; each 2×2 pooling halves the
# side; the unpadded 3×3 convolution trims one pixel each side (14 → 12). The red
# window on each map is the kernel that reads it, with its stride and padding; 64 maps
# of 6×6 flatten into the column of 2304 that ``fc1`` expects.
cnn = archlab.draw("cnn")
cnn.plot()

# %%
# The same picture is a file away: ``cnn.save("cnn.svg")`` (or ``.png``), or
# ``archlab draw cnn --out cnn.svg`` on the command line. In Jupyter the object shows
# itself.
print(cnn)

# %%
# The lecture's claim, at the real scale
# --------------------------------------
# The lecture said the first convolution outputs [32, 784, 784]. Drawn at one scale
# with what the trace finds, 32×28×28, the claimed map holds 784 times the values:
# 784 is the length of the flattened image, not the side of a map.
archlab.draw("cnn", claim=True).plot()

# %%
# A chain that does not fit
# -------------------------
# With 32×32 images the maps end at 64×7×7 = 3136 values, and ``fc1`` was built for
# 2304. The picture stops at the layer that fails, marks it, and the diagnosis is its
# caption (``archlab draw`` then exits 1).
archlab.draw("cnn", input_shape=(1, 32, 32)).plot()

# %%
# A model that branches
# ---------------------
# A residual block adds its input to what two convolutions made of it. A picture of a
# chain cannot show that, so a model that branches is drawn as a graph (laid out by
# Graphviz) with the same labels; the addition shows both tensors it adds.
import torch
from torch import nn


class Residual(nn.Module):
    input_shape = (1, 28, 28)

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(1, 16, 3, padding=1)
        self.conv1 = nn.Conv2d(16, 16, 3, padding=1)
        self.conv2 = nn.Conv2d(16, 16, 3, padding=1)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(16, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.stem(x))
        x = torch.relu(self.conv2(torch.relu(self.conv1(x))) + x)
        return self.fc(torch.flatten(self.pool(x), 1))


archlab.draw(Residual(), graph=True).plot()
