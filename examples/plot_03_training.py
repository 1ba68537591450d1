"""
Training both models
====================

``archlab.train_model`` trains on Fashion-MNIST held in memory. To keep the docs quick,
this page trains each model for **one epoch** (600 iterations of batch 100) and caches
the checkpoints in the build folder; later examples reuse them.

A full run is five epochs (``archlab train``). Measured on 2026-11-28 on a 2-core CPU with
seed 0 and the default recipe, it reached 88.45 % (DNN) and 91.76 % (CNN) test accuracy;
the lecture printed 86.3 % and 90.5 %. Those two numbers come from that run, recorded in
``benchmarks/README.md``, not from this page.
"""

# %%
import os

import archlab

RUNS = os.environ.get("ARCHLAB_DOCS_RUNS", "runs")
data = archlab.load_fashion_mnist()
print(data)

# %%
# Train (or reuse the cached checkpoints)
# ---------------------------------------
# Every 100 iterations it prints the lecture's line; accuracy is measured on all 10,000
# test images in eval mode.
histories = {}
for name in ("dnn", "cnn"):
    model, checkpoint = archlab.load_or_train(
        name, RUNS, data, epochs=1, log_every=100, progress=False
    )
    histories[name] = checkpoint["history"]
    accuracy = checkpoint["test_accuracy"]
    print(f"{name}: {checkpoint['iteration']} iterations, test accuracy {100 * accuracy:.2f}%")

# %%
# The curves
# ----------
archlab.plot_curves(histories["dnn"])

# %%
archlab.plot_curves(histories["cnn"])
