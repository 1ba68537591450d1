"""
Your model, and what-ifs
========================

Every archlab command takes any model: a registered name, a class in your own file
(``path/to/net.py:Class``), a class or factory in a package
(``'torchvision.models:resnet18(num_classes=10)'``), and ``--set`` what-ifs that rebuild
one layer with one argument changed. This page takes a student's LeNet from a file and
the lecture's CNN with padding 1 in layer2 through training, explanation and comparison.
To keep the docs quick, each trains for **one epoch**; the checkpoints are cached in the
build folder.
"""

# %%
# A what-if that does not fit
# ---------------------------
# "What if layer2 had padding 1?" The maps stay 14×14 until the pool, so 64·7·7 = 3136
# features reach fc1, which was built for 2304. archlab refuses to train a chain that
# does not fit and says where it breaks:
import os
from pathlib import Path

import archlab

RUNS = os.environ.get("ARCHLAB_DOCS_RUNS", "runs")
report = archlab.trace_shapes("cnn", overrides=["layer2.0.padding=1"])
print(report.error)

# %%
# So the what-if needs a second edit, the one the diagnosis names:
VARIANT = ["layer2.0.padding=1", "fc1.in_features=3136"]
print(archlab.trace_shapes("cnn", overrides=VARIANT).output_shape)

# %%
# A student's own model, from a file
# ----------------------------------
# Any ``nn.Module`` class in a ``.py`` file will do; archlab imports the file only
# because its path is named here.
student = Path(RUNS).parent / "my_lenet.py"
student.write_text(
    '''
import torch
from torch import nn


class MyLeNet(nn.Module):
    """5×5 convolutions, max pooling, three linear layers: 28 → 24 → 12 → 8 → 4."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, 5)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Linear(16 * 4 * 4, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, 10)

    def forward(self, x):
        x = nn.functional.max_pool2d(torch.relu(self.conv1(x)), 2)
        x = nn.functional.max_pool2d(torch.relu(self.conv2(x)), 2)
        x = torch.flatten(x, 1)
        return self.fc3(torch.relu(self.fc2(torch.relu(self.fc1(x)))))
'''
)
LENET = f"{student}:MyLeNet"

# %%
# Train them (or reuse the cached runs)
# -------------------------------------
# Each run gets its own folder, named from the spec and its what-ifs, and its checkpoint
# records them, so every later command rebuilds exactly this architecture.
data = archlab.load_fashion_mnist()
trained = [
    archlab.train(spec, what_ifs, runs=RUNS, data=data, epochs=1, reuse=True)
    for spec, what_ifs in (("dnn", []), ("cnn", []), ("cnn", VARIANT), (LENET, []))
]
for run in trained:
    print(f"{run.name}: test accuracy {100 * run.test_accuracy:.2f}%")

# %%
# Explain the student's model
# ---------------------------
# Grad-CAM finds the model's own last convolution (conv2, 8×8 maps).
explanation = archlab.explain(trained[-1], 42, data=data)
print(explanation.describe())
explanation.plot()

# %%
# Side by side
# ------------
# A run is named by its folder as well: ``archlab.load_run("cnn+layer2.0.padding=1+...")``
# or ``archlab compare cnn+layer2.0.padding=1+...`` on the command line.
comparison = archlab.compare(trained, data=data)
print(comparison)

# %%
comparison.plot_tradeoff()
