"""
Does it know when it is wrong?
==============================

Accuracy says how often a model is right; it does not say whether the model's
*confidence* can be believed. Two questions, on dnn, cnn and resnet:

- **Calibration**: of the images a model is 90 % sure about, are nine in ten right? The
  expected calibration error (ECE) is the average gap, and temperature scaling (one
  number T dividing every logit, fitted on held-out images) is the classic fix (Guo et
  al., ICML 2017).
- **Out-of-distribution inputs**: shown a handwritten digit, a shirt upside down or pure
  noise, is the model less sure than on a real test image? Each run's confidence scores
  separate the test set from each such set; the AUROC says how well (0.5 is chance).

The models here are trained briefly (one epoch) so that the page builds quickly; the
numbers for the 5-epoch runs are in ``benchmarks/README.md``.
"""

# %%
import os

import archlab

RUNS = os.environ.get("ARCHLAB_DOCS_RUNS", "runs")
data = archlab.load_fashion_mnist()
dnn = archlab.train("dnn", runs=RUNS, data=data, epochs=1, reuse=True, progress=False)
cnn = archlab.train("cnn", runs=RUNS, data=data, epochs=1, reuse=True, progress=False)
# resnet as the zoo page trains it: on the first 12,000 training images only
subset = archlab.FashionMNIST(
    data.train_images[:12_000], data.train_labels[:12_000], data.test_images, data.test_labels
)
zoo = os.path.join(RUNS, "zoo-subset")
resnet = archlab.train("resnet", runs=zoo, data=subset, epochs=1, reuse=True, progress=False)

# %%
# Reliability diagrams
# --------------------
# Each bar is one confidence bin of the test set: its height is the bin's accuracy, and
# a calibrated model's bars reach the diagonal. Below each diagram, how many test images
# fall in each bin (log scale): most sit in the top bin, so the top bin decides most of
# the ECE. The adaptive ECE uses bins of equal *count* instead and so looks inside that
# crowded top bin.
#
# The temperature is fitted on the last 5,000 training images, never on the test set.
# dnn and cnn trained on those images (the default recipes use all 60,000), so they
# are surer of them than of new images and the fitted T comes out too small: compare it
# with "the temperature the test set itself would choose" printed under the table (on
# these one-epoch runs it makes their ECE worse). resnet here never saw them (it trained
# on the first 12,000), so its T is honest, and it mends resnet's large error. A T below
# 1 says the model was *under*-confident (one epoch leaves the logits small); above 1,
# over-confident, as Guo et al. found for deep nets trained long.
report = archlab.calibration([dnn, cnn, resnet], data=data)
print(report)
report.plot()

# %%
# What the model says about images from elsewhere
# -----------------------------------------------
# Three scores from the logits: the maximum softmax probability (MSP), the energy
# (logsumexp of the logits) and the largest logit. The softmax divides by the sum of all
# exponentiated logits, so it forgets how large they were; the energy and the max logit
# keep it, and separate the digits and the transformed images better. Not the noise, for
# the two conv nets: noise gives them large logits, and a score that rewards large
# logits calls it *more* familiar than the test set (AUROC near or below 50 %). No
# score wins everywhere.
report = archlab.ood([dnn, cnn, resnet], data=data, images=1000, resamples=200)
print(report)
report.plot()

# %%
# Sure and wrong
# --------------
# Each set's image the model is surest about. A confident answer on an image that is
# not a garment at all is exactly what the histograms above warned of.
report.plot_confident()

# %%
# A class it never saw
# --------------------
# Train the DNN without a single Shirt (class 6), then ask whether Shirts look unfamiliar
# to it. Only partly (an AUROC far below the digits'): a shirt is close to a T-shirt, a
# pullover and a coat, and the model is often sure it is one of those. And here the MSP
# does better than the energy: a new class of the same kind of thing is told apart by
# *which* class the model leans to, not by how strongly it responds.
no_shirt = archlab.train(
    "dnn", runs=RUNS, data=archlab.without_class(data, 6), name="dnn-no-Shirt", epochs=1,
    reuse=True, progress=False,
)  # fmt: skip
held = archlab.ood([no_shirt], data=data, sets=["digits"], held_out=6, resamples=200)
print(held)
held.plot()
