"""
Where the classes come apart: linear probes and the map
=======================================================

The lecture says the CNN learns better features than the DNN. Two pictures show it
without a single accuracy of the model itself. A *linear probe* (Alain & Bengio 2016)
trains a logistic regression on one layer's output and tests it: where the probe's
accuracy jumps, that layer made the classes linearly separable. The *map* projects one
layer's features of the test images to 2-D beside the raw pixels: classes that overlap
in the pixels come apart after the network. To keep this page quick, the runs train one
epoch and the probes learn from 2,000 images (the command's default is 10,000).
"""

# %%
import os

import archlab

RUNS = os.environ.get("ARCHLAB_DOCS_RUNS", "runs")
data = archlab.load_fashion_mnist()
for model in ("dnn", "cnn"):
    archlab.train(model, runs=RUNS, data=data, reuse=True, epochs=1, progress=False)

# %%
# A probe at every row
# --------------------
# Every row of the trace that outputs a map or a vector gets a probe (a map is
# average-pooled to at most 2,048 features); the raw pixels are the first point, at
# depth 0. The CNN's largest jump is at its first ReLU: before it, the row is a linear
# function of the pixels, which a linear probe could already use. A linear layer can
# still lift a probe (fc1 in both models): the CNN's fc1 maps 2,304 features to 600,
# learnt from the whole training set, where the probe on the 2,304 has only its own
# images and overfits them (see its train column).
report = archlab.probes(["dnn", "cnn"], images=2000, test_images=2000, runs=RUNS, data=data)
print(report)
report.plot()

# %%
# The last row against the model
# -------------------------------
# The probe at the last row (the logits) is close to the model's own accuracy but need
# not equal it: the probe is a new linear classifier trained on fewer images, over
# standardised logits, so it can correct a bias in the last layer or lose to noise.

# %%
# The map
# -------
# The input of the CNN's last linear layer (120 features), projected by PCA, beside the
# pixels projected the same way; every point is a test image coloured by its class, a
# black × a mistake of the model, thumbnails where there is room. The k-nearest-neighbour
# accuracy (k = 10) in each 2-D map says how well the classes separate there.
archlab.embedding("cnn", images=2000, runs=RUNS, data=data).plot()

# %%
# The DNN's map of the same images: ``archlab map dnn``; t-SNE instead of PCA:
# ``archlab map cnn --method tsne`` (slower; scikit-learn).
print(archlab.embedding("dnn", images=2000, runs=RUNS, data=data))

# %%
# The model forming
# -----------------
# ``archlab train cnn --snapshots 4`` keeps four states of the model at log-spaced
# iterations (the first step, the last, and two between, spaced evenly in log(iteration):
# the first steps change the model most), each with its accuracy on every 5th test image.
# ``archlab.snapshots(run)`` returns them as runs, which every analysis takes: here the
# map of the same layer at each, as the classes come apart. On the command line:
# ``archlab map cnn --snapshot all``; the explorer animates the map and the first
# layer's kernels over them with a slider.
import matplotlib.pyplot as plt

forming = archlab.train("cnn", name="cnn-forming", runs=RUNS, data=data, reuse=True,
                        epochs=1, snapshots=4, progress=False)  # fmt: skip
states = archlab.snapshots(forming)
fig, axes = plt.subplots(1, len(states), figsize=(4 * len(states), 4.2), layout="constrained")
for ax, state in zip(axes, states, strict=True):
    archlab.embedding(state, images=1000, runs=RUNS, data=data).plot(ax=ax)
    ax.set_title(f"iteration {state.snapshot}: {100 * state.test_accuracy:.1f} %", fontsize=10)
