"""
The architecture zoo
====================

The lecture stops at one CNN. The classic ideas after it each buy something and cost
something: LeNet-5 (small 5×5 convolutions and subsampling), VGG (stacks of 3×3
convolutions), Network in Network (1×1 convolutions and global average pooling instead
of fully connected layers), ResNet (residual additions) and MobileNet (depthwise-separable
convolutions). archlab registers one small version of each, sized for 28×28 images and a
laptop CPU.

To keep the docs build quick, this page trains every model on the **first 12,000
training images for one pass** (120 iterations of batch 100; the lecture trains 3,000),
with the same recipe and seed, and tests on all 10,000 test images: the ranking is
early and rough. The five-epoch numbers are measured by ``benchmarks/zoo.py`` and
recorded in ``benchmarks/README.md`` and on each model's card (``archlab models``).
"""

# %%
# What each costs
# ---------------
# Parameters and multiply-accumulates per image, counted from the layers themselves.
import os

import archlab

names = archlab.list_models("lecture") + archlab.list_models("zoo")
for name in names:
    cost = archlab.count_params(name)
    print(f"{name:10} {cost.total_params:>9,} parameters {cost.total_macs:>11,} MACs per image")

# %%
# One block of each idea
# ----------------------
# The shape tracer follows the tensors, not only the layers: ResNet's addition of the
# block's output and its shortcut has its own row, with both branches named.
report = archlab.trace_shapes("resnet")
for row in report.layers:
    if row.name.startswith("stage2"):
        print(f"{row.name:18} {row.type:12} {row.formula or ''}")

# %%
# Network in Network ends without a single Linear layer: ten 7×7 maps, averaged into ten
# scores. There is no ``in_features`` to get wrong.
for row in archlab.trace_shapes("nin").layers[-3:]:
    print(f"{row.name:14} {row.type:18} {row.output}")

# %%
# MobileNet's depthwise-separable block: a 3×3 convolution per channel
# (``groups`` = channels), then a 1×1 convolution that mixes them.
for row in archlab.trace_shapes("mobilenet").layers[3:9]:
    print(f"{row.name:18} {row.type:12} {row.input} → {row.output}")

# %%
# Train them all the same way
# ---------------------------
RUNS = os.path.join(os.environ.get("ARCHLAB_DOCS_RUNS", "runs"), "zoo-subset")
full = archlab.load_fashion_mnist()
subset = archlab.FashionMNIST(
    full.train_images[:12_000],
    full.train_labels[:12_000],
    full.test_images,
    full.test_labels,
    full.source,
)
trained = [archlab.train(name, runs=RUNS, data=subset, epochs=1, reuse=True) for name in names]

# %%
# Accuracy against cost
# ---------------------
comparison = archlab.compare(trained, data=full)
print(comparison)

# %%
comparison.plot_tradeoff()
