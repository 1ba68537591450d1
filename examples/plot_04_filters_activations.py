"""
Filters and activations
=======================

What the CNN's first layer learned, and what its two blocks make of one test image.
"""

# %%
import os

import archlab

RUNS = os.environ.get("ARCHLAB_DOCS_RUNS", "runs")
data = archlab.load_fashion_mnist()
cnn, checkpoint = archlab.load_or_train("cnn", RUNS, data, epochs=1, progress=False)

# %%
# The 32 kernels of layer1.0
# --------------------------
# One colour scale for all kernels, centred at zero: red weights add the pixel, blue
# ones subtract it. A kernel with opposite signs on two sides responds to an edge.
layer, weights = archlab.filter_weights(cnn, "layer1.0")
archlab.plot_filters(weights, layer)

# %%
# Activations for test image 42
# -----------------------------
# After layer1 each image is 32 maps of 14×14, after layer2 64 maps of 6×6: the sizes
# ``archlab.trace_shapes("cnn")`` predicts.
index = 42
acts = archlab.activations(cnn, data.test_images[index], checkpoint["normalize"])
for name, a in acts.items():
    print(name, tuple(a.shape))
archlab.plot_activations(acts, f"cnn: test image {index}")

# %%
# The DNN has no maps, only hidden units (after each ReLU).
dnn, dnn_checkpoint = archlab.load_or_train("dnn", RUNS, data, epochs=1, progress=False)
archlab.plot_activations(
    archlab.activations(dnn, data.test_images[index], dnn_checkpoint["normalize"]),
    f"dnn: test image {index}",
)
