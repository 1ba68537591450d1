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
cnn = archlab.train("cnn", runs=RUNS, data=data, epochs=1, reuse=True)

# %%
# The 32 kernels of layer1.0
# --------------------------
# One colour scale for all kernels, centred at zero: red weights add the pixel, blue
# ones subtract it. A kernel with opposite signs on two sides responds to an edge.
archlab.filters(cnn, "layer1.0").plot()

# %%
# Activations for test image 42
# -----------------------------
# After layer1 each image is 32 maps of 14×14, after layer2 64 maps of 6×6: the sizes
# ``archlab.trace_shapes("cnn")`` predicts.
acts = archlab.activations(cnn, 42, data=data)
print(acts)
acts.plot()

# %%
# The DNN has no maps, only hidden units (after each ReLU).
dnn = archlab.train("dnn", runs=RUNS, data=data, epochs=1, reuse=True)
archlab.activations(dnn, 42, data=data).plot()
