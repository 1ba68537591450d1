"""
The speedrun: what each trick buys
==================================

"How do I make it better?" and "why does it take so long?" have one answer in the
speedrun literature: Keller Jordan's airbench trains CIFAR-10 to 94 % in seconds with a
handful of tricks, each measured. archlab's ``fast`` recipe brings the ones that paid on a
laptop CPU to Fashion-MNIST, and the ladder below says which did not::

    archlab train speednet --recipe fast --target 93

``--target 93`` holds out the last 5,000 training images, evaluates on them at the middle
and the end of every epoch, stops at the first evaluation that makes it 90 % sure that
the accuracy reached 93 %, says the training time to it, and only then reads the test
set, once: the recipe and the stop rule are fixed before the test set is looked at.

Why "90 % sure" and not "the first reading of 93 %": an accuracy measured on 5,000
images is itself a sample, about ±0.35 points at 93 %, and of ten readings on the way up
the first to cross a line is the luckiest so far. The first version of ``--target`` used
the plain rule; its runs stopped after about 36 s with the test set saying 92.6 %. The
rule now waits until the lower end of the reading's one-sided 90 % interval (Wilson's)
reaches the target, 0.48 points above it; ``--target-confidence`` sets how sure.
With it, on the 2-core machine of ``benchmarks/README.md``, the five seeds stopped after
34–50 s with the test set saying 92.5–93.1 % (mean 92.9 %): close, still a little under,
because those 5,000 held-out images read half a point easier than the test set. A better
net does not fix that by itself: it reaches the same line on the held-out images sooner.
Validation is not test.

``benchmarks/speedrun.py`` climbs the **ladder**: from the lecture's recipe, one trick per
rung on the lecture's CNN, the tricks that did not pay tried on their own branches, the
net changed last. This page draws the ladder from the JSON the benchmark wrote
(``benchmarks/speedrun.json``) when it is there; otherwise, to keep the docs build quick,
it trains the first and last rungs on a 12,000-image subset for one epoch.
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
from archlab.training.speed import augment_epoch
from archlab.viz.speedrun import plot_ladder

print(RECIPES["fast"].explanation)

# %%
# Why no flips: the shoes all point one way
# -----------------------------------------
# airbench mirrors half of CIFAR-10's images each epoch, and a mirrored T-shirt is still
# a T-shirt. Fashion-MNIST's footwear, though, was photographed facing one way: the mean
# Ankle boot and its mirror image hardly correlate. A flipped boot is an image the test
# set never shows, so the flips teach the net a task it is never asked, and flip
# test-time augmentation asks it about boots that point the wrong way. The ladder
# measures it (the ``flips`` rung); the fast recipe has no flips.
from archlab.training.data import CLASSES

data = archlab.load_fashion_mnist()
shown = ("T-shirt/top", "Sandal", "Sneaker", "Ankle boot")
fig, axes = plt.subplots(2, len(shown), figsize=(8, 4.4))
for col, name in enumerate(shown):
    k = CLASSES.index(name)
    mean = data.train_images[data.train_labels == k].float().mean(0)
    a, b = mean - mean.mean(), mean.flip(-1) - mean.mean()
    similarity = torch.nn.functional.cosine_similarity(a.flatten(), b.flatten(), 0)
    for row, image in enumerate((mean, mean.flip(-1))):
        axes[row, col].imshow(image, cmap="gray")
        axes[row, col].set_xticks([])
        axes[row, col].set_yticks([])
    axes[0, col].set_title(f"{name}\ncorrelation {similarity:.2f}", fontsize=9)
axes[0, 0].set_ylabel("mean image")
axes[1, 0].set_ylabel("mirrored")
fig.suptitle("each class's mean training image and its mirror image")

# %%
# Whitening: the first layer starts where training would take it
# ---------------------------------------------------------------
# A 3×3 filter on the image sees 9 pixels, and neighbouring pixels mostly agree: most of
# a patch's variance lies along a few directions (its brightness, its slope across and
# down), the rest is faint detail. A first layer started at random spends its first
# epochs finding those directions. The fast recipe starts it on them: the eigenvectors of
# the training patches' covariance, each divided by the square root of its variance, so
# that every direction comes out equally loud, each filter also negated (a ReLU or a max
# pool keeps one sign). airbench starts the same way. The filters go on training; the
# conv's other filters keep their random start (``archlab.training.whiten``). The first
# direction, the patch's brightness (one sign everywhere), carries four fifths of the
# variance; then the slopes across and down; the last ones, fine patterns that flip sign
# from pixel to pixel, a fraction of a percent each, and whitening makes them as loud. On held-out
# images it lifted every reading of a run (the speednet's last, 5 seeds: 93.46 → 93.86 %).
from archlab.training.predict import to_input
from archlab.training.whiten import whitening_filters

inputs = to_input(data.train_images[:2000], data.pixel_stats())
filters, _ = whitening_filters(inputs, torch.nn.Conv2d(1, 18, 3), 9)
patches = torch.nn.functional.unfold(inputs.double(), 3).transpose(1, 2).reshape(-1, 9)
variances = torch.linalg.eigvalsh(torch.cov(patches.T)).flip(0)
fig, axes = plt.subplots(1, 9, figsize=(10, 1.9))
for k, ax in enumerate(axes):
    reach = float(filters[k].abs().max())  # 0 is white: red and blue are the two signs
    ax.imshow(filters[k, 0], cmap="RdBu_r", vmin=-reach, vmax=reach)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(f"{100 * variances[k] / variances.sum():.1f} %", fontsize=9)
fig.suptitle("the 9 whitening filters of 3×3 patches, each direction's share of the variance")

# %%
# Crops, for long runs only
# -------------------------
# ``fast-long`` shifts each image by up to 2 pixels every epoch (black fill): in 20
# epochs the crops pay, in 5 they cost accuracy, because the net is still fitting the
# images as they are. A net trained on shifted images also answers better when asked
# about several shifts of one image: fast-long reads its final test accuracy as the mean
# of the probabilities of the image moved by -1, 0 and 1 pixel in x and y (9 views),
# chosen on held-out images (resnet: 94.10 → 94.74 % there). The speednet, trained
# without shifts, got worse with the same views: the views help the net that learned
# them.
images = data.train_images[:6]
fig, axes = plt.subplots(3, 6, figsize=(9, 4.8))
for row, epoch in enumerate((None, 0, 1)):
    moved = images if epoch is None else augment_epoch(images, 0, epoch, pad=2, flip=False)
    for col in range(6):
        axes[row, col].imshow(moved[col], cmap="gray")
        axes[row, col].set_xticks([])
        axes[row, col].set_yticks([])
    axes[row, 0].set_ylabel("original" if epoch is None else f"epoch {epoch + 1}")
fig.suptitle("the same six images as two epochs of fast-long see them")

# %%
# The speednet
# ------------
# The lecture's CNN, changed where it pays in 5 epochs: one more convolution where the
# maps are 6×6, a ReLU between the head's Linear layers (the lecture's three collapse
# into one matrix), and each block pooling *before* its BatchNorm and ReLU (airbench's
# order: on a CPU the element-wise layers at 28×28 cost more than the first convolution).
for name in ("cnn", "speednet", "resnet"):
    cost = archlab.count_params(name)
    print(f"{name:9} {cost.total_params:>9,} parameters {cost.total_macs:>11,} MACs per image")

# %%
# The ladder
# ----------
# Read it top to bottom: each rung adds one trick to the one above it (``↳``: a trick tried
# on its own branch and not carried up), its test accuracy on the left (mean ± std over
# the seeds, each seed a dot) and its training seconds on the right. Red: the trick did
# not pay (not more accurate, nor as accurate in ≤ 90 % of the time), kept to say so.
# What it teaches: the careful recipe is the big accuracy step and the lecture's file
# order makes its own recipe swing between seeds; bfloat16 is the big time step; the
# schedule, label smoothing and the EMA move the lecture's CNN by about two tenths of a
# point; flips and crops cost accuracy in 5 epochs; the whitening start adds four tenths
# more, the architecture the last full point, and the fast recipe's own 4 epochs keep it
# in 85 % of the time of 5.
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
# bfloat16 where the hardware has it
# ----------------------------------
# The fast recipe runs its training steps in bfloat16 autocast on CPUs with AVX-512 BF16
# or AMX (and recent GPUs); the weights and every evaluation stay float32. Elsewhere
# bfloat16 would be emulated, slower than float32, and the recipe stays in float32.
from archlab.training.speed import bf16_native

print("bfloat16 native here:", bf16_native(torch.device("cpu")))
