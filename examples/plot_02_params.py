"""
Parameters and multiply-accumulates
===================================

Where do the two models keep their weights, and where do they spend their arithmetic?
"""

# %%
import matplotlib.pyplot as plt

import archlab

dnn = archlab.count_params("dnn")
cnn = archlab.count_params("cnn")
print(dnn)
print()
print(cnn)
print()
print(archlab.compare_params([dnn, cnn]))

# %%
# Weights and work per layer
# --------------------------
# In the CNN almost all parameters sit in ``fc1`` (2304 × 600), while most
# multiply-accumulates happen in ``layer2.0``, whose 18,496 weights are reused at every
# one of its 12×12 output positions.
layers = [layer for layer in cnn.layers if layer.params]
fig, (left, right) = plt.subplots(1, 2, figsize=(11, 3.8), layout="constrained")
left.bar([x.name for x in layers], [x.params for x in layers], color="tab:blue")
left.set(title="cnn: parameters per layer", ylabel="parameters")
right.bar([x.name for x in layers], [x.macs for x in layers], color="tab:orange")
right.set(title="cnn: multiply-accumulates per image", ylabel="MACs")
for ax in (left, right):
    ax.tick_params(axis="x", rotation=30)
