"""
DNN vs CNN
==========

The lecture's conclusion, with numbers measured on this build's models: parameters,
multiply-accumulates, training time and test accuracy, overall and per class.
"""

# %%
import os

import archlab

RUNS = os.environ.get("ARCHLAB_DOCS_RUNS", "runs")
data = archlab.load_fashion_mnist()
for name in ("dnn", "cnn"):
    archlab.load_or_train(name, RUNS, data, epochs=1, progress=False)

comparison = archlab.compare_models(runs=RUNS, data=data)
print(comparison)

# %%
archlab.plot_comparison(comparison)
