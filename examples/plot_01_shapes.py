"""
Shapes: 28×28, not 784×784
==========================

The lecture's CNN turns a 28×28 image into 64 maps of 6×6 before ``fc1``. This example
traces it layer by layer, then asks two what-ifs and reads the diagnosis.
"""

# %%
# The trace
# ---------
# Every row is one layer, in the order ``forward`` calls it. Shape-changing layers show
# their formula with the numbers filled in; each analytic shape is checked against a
# real forward pass of a batch of 11 zero images (shapes are shown per image).
import archlab

report = archlab.trace_shapes("cnn")
print(report)

# %%
# The side of the feature map, layer by layer: padding 1 keeps 28, each 2×2 pooling
# halves it, and the unpadded 3×3 convolution trims one pixel on each side.
report.plot()

# %%
# What if layer2's convolution were padded too?
# ---------------------------------------------
# ``overrides`` rebuilds one layer with one argument changed. The maps now stay 14×14
# through the convolution, pool to 7×7, and fc1 no longer fits.
what_if = archlab.trace_shapes("cnn", overrides=["layer2.0.padding=1"])
print(what_if)

# %%
# What if the images were 32×32?
# ------------------------------
# The same break, found from the other side: the diagnosis names the layer, what it
# expected, what it received and where that came from.
bigger = archlab.trace_shapes("cnn", input_shape=(1, 32, 32))
print("fits:", bigger.ok)
print(bigger.error)

# %%
# A map that shrinks to nothing
# -----------------------------
# A 4×4 input pools to 2×2 before layer2's 3×3 kernel, which cannot fit.
print(archlab.trace_shapes("cnn", input_shape=(1, 4, 4)).error)
