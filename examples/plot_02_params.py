"""
Parameters and multiply-accumulates
===================================

Where do the two models keep their weights, and where do they spend their arithmetic?
"""

# %%
import archlab

dnn = archlab.count_params("dnn")
cnn = archlab.count_params("cnn")
print(dnn)
print()
print(cnn)

# %%
# Weights and work per layer
# --------------------------
# In the CNN almost all parameters sit in ``fc1`` (2304 × 600), while most
# multiply-accumulates happen in ``layer2.0``, whose 18,496 weights are reused at every
# one of its 12×12 output positions.
cnn.plot()
