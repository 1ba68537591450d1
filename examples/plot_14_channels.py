"""
What does a channel look for?
=============================

A convolution's kernels and its response to one image do not say what a channel has
learned. Three views do: the test images that excite it most (and least), an image
*synthesised* to excite it, and its effective receptive field, the pixels its centre unit
actually depends on. To keep this page quick it searches 2,000 test images and
optimises 64 steps (the command's defaults: all 10,000 images, 128 steps).
"""

# %%
import os

import archlab

RUNS = os.environ.get("ARCHLAB_DOCS_RUNS", "runs")
data = archlab.load_fashion_mnist()
archlab.train("cnn", runs=RUNS, data=data, reuse=True, epochs=1, progress=False)

# %%
# Every channel of the second convolution
# ---------------------------------------
# The table sorts the channels by how often they fire (the share of positions and images
# where the output is above 0) and marks dead ones, which never fire. The figure shows
# the synthesised images in the same order, then the first channel in detail: its nine
# strongest test images with the receptive field of the unit where it fires most outlined
# in red, the nine weakest, the nine where it contributes most to the predicted class
# (gradient × activation), and its effective receptive field beside the theoretical size.
report = archlab.channels("cnn", "layer2.0", images=2000, steps=64, runs=RUNS, data=data)
print(report)
report.plot()

# %%
# Why the synthesis is regularised
# --------------------------------
# Optimised pixel by pixel, the image that excites a channel most is high-frequency
# noise that no garment contains. archlab's default parametrises the image in the
# Fourier domain with every frequency scaled by 1/f (low frequencies move as easily as
# high ones), keeps the pixels in [0, 1] with a sigmoid, and shifts the image by a pixel
# at random at each step, so that only patterns that survive a small translation grow.
plain = archlab.channels(
    "cnn",
    "layer2.0",
    top=8,
    images=2000,
    steps=64,
    regularize=False,
    erf_images=0,
    runs=RUNS,
    data=data,
)
plain.plot()

# %%
# Several optima per channel
# --------------------------
# A channel can answer more than one pattern. ``diverse=3`` (``--diverse 3``) optimises
# three images per channel together, with a penalty on how alike their textures are at
# the layer (the cosine of their Gram matrices, Olah et al. 2017): each row below is one
# channel, each image a different way to excite it, each a little weaker than the single
# best one.
import matplotlib.pyplot as plt

many = archlab.channels(
    "cnn",
    "layer2.0",
    top=4,
    images=2000,
    steps=64,
    diverse=3,
    erf_images=0,
    relevant=False,
    runs=RUNS,
    data=data,
)
fig, axes = plt.subplots(4, 3, figsize=(4, 5.5))
for row, channel in zip(axes, many.layers[0].channels, strict=True):
    for ax, image, value in zip(row, channel.diverse, channel.diverse_values, strict=True):
        ax.imshow(image.numpy(), cmap="gray", vmin=0, vmax=1)
        ax.set_title(f"{channel.index}: {value:.2f}", fontsize=7)
        ax.axis("off")

# %%
# What the numbers say
# --------------------
# - The effective field is much smaller than the theoretical one (Luo et al., 2016): the
#   centre of the field carries most of the gradient.
# - A synthesised image that beats every test image shows what the channel responds to
#   beyond what the data contains; the report gives the share of channels where it does
#   (with 128 steps: 95 of the lecture CNN's 96 conv channels).
# - On the command line: ``archlab channels cnn --layer layer2.0 --top 8``.
