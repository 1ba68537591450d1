"""
The speedrun: 93 % in a minute
==============================

"How do I make it better?" and "why does it take so long?" have one answer in the
speedrun literature: Keller Jordan's airbench trains CIFAR-10 to 94 % in seconds with a
handful of tricks, each measured. archlab's ``fast`` recipe brings the ones that fit a
laptop CPU to Fashion-MNIST::

    archlab train speednet --recipe fast --target 93

``--target 93`` holds out the last 5,000 training images, evaluates on them at the middle
and the end of every epoch, stops at the first evaluation that reaches 93 %, says the
training time to it, and only then reads the test set, once: the recipe and the stop
rule are fixed before the test set is looked at.

``benchmarks/speedrun.py`` climbs the **ladder**: from the lecture's recipe, one trick per
rung, each rung trained with five seeds. This page draws the ladder from the JSON the
benchmark wrote (``benchmarks/speedrun.json``) when it is there; otherwise, to keep the
docs build quick, it trains the first and last rungs on a 12,000-image subset for one
epoch.
"""

# %%
# The tricks, one by one
# ----------------------
# The recipe says what it does; every trick is a small function in
# ``archlab.training.speed``.
import json
import os
from pathlib import Path

import matplotlib.pyplot as plt
import torch

import archlab
from archlab.training.recipes import RECIPES
from archlab.training.speed import augment_epoch, flip_tta_probabilities
from archlab.viz.speedrun import plot_ladder

print(RECIPES["fast"].explanation)

# %%
# Crops and alternating flips
# ---------------------------
# Each epoch sees every garment shifted by up to 2 pixels, and mirrored every other
# epoch: a random half in the first epoch, then each image's flip alternates. Random
# flips would leave a quarter of the images seen one way only over two epochs; the
# alternation shows every garment both ways. The label never changes: a mirrored shoe is
# still a shoe.
data = archlab.load_fashion_mnist()
images = data.train_images[:6]
fig, axes = plt.subplots(3, 6, figsize=(9, 4.8))
for row, epoch in enumerate((None, 0, 1)):
    shown = images if epoch is None else augment_epoch(images, seed=0, epoch=epoch, pad=2)
    for col in range(6):
        axes[row, col].imshow(shown[col], cmap="gray")
        axes[row, col].set_xticks([])
        axes[row, col].set_yticks([])
    axes[row, 0].set_ylabel("original" if epoch is None else f"epoch {epoch + 1}")
fig.suptitle("the same six images as two epochs see them")

# %%
# The speednet
# ------------
# A net shaped for speed (after airbench): BatchNorm after every convolution, the maps
# halved early, a global max pool instead of a large Linear layer. It costs about as many
# multiply-accumulates as the lecture's CNN with a tenth of its parameters.
for name in ("cnn", "resnet", "speednet"):
    cost = archlab.count_params(name)
    print(f"{name:9} {cost.total_params:>9,} parameters {cost.total_macs:>11,} MACs per image")

# %%
# The ladder
# ----------
# Accuracy against training seconds, one point per rung (mean ± std over the seeds); a
# red point is a trick that did not pay on its own, kept to say so.
try:
    here = Path(__file__).resolve().parent
except NameError:  # run by hand from the examples folder
    here = Path.cwd()
measured = here.parent / "benchmarks" / "speedrun.json"
if measured.is_file() and json.loads(measured.read_text()).get("ladder"):
    rows = json.loads(measured.read_text())["ladder"]
else:
    RUNS = os.path.join(os.environ.get("ARCHLAB_DOCS_RUNS", "runs"), "speedrun-subset")
    subset = archlab.FashionMNIST(
        data.train_images[:12_000],
        data.train_labels[:12_000],
        data.test_images,
        data.test_labels,
        data.source,
    )
    rows = []
    for rung, model, recipe in (("lecture", "cnn", "lecture"), ("fast", "speednet", "fast")):
        run = archlab.train(model, runs=RUNS, data=subset, recipe=recipe, epochs=1, reuse=True)
        rows.append(
            {
                "rung": rung,
                "accuracy": [100 * run.test_accuracy, 0.0],
                "seconds": [run.seconds, 0.0],
                "pays": None,
            }
        )

plot_ladder(rows)
for row in rows:
    print(f"{row['rung']:10} {row['accuracy'][0]:6.2f} % in {row['seconds'][0]:6.1f} s")

# %%
# Flip test-time augmentation
# ---------------------------
# At test time the fast recipe averages the softmax probabilities of each image and its
# mirror image: two forward passes for one answer.
model = archlab.create_model("speednet").eval()
probabilities = flip_tta_probabilities(model, data.test_images[:4], data.pixel_stats())
print(probabilities.sum(1))  # still probabilities: each row sums to 1
print(torch.allclose(probabilities.sum(1), torch.ones(4)))
