"""
DNN vs CNN
==========

The lecture's conclusion, with numbers measured on this build's models: parameters,
multiply-accumulates, how each was trained, training time and test accuracy, overall
and per class.
"""

# %%
import os

import archlab

RUNS = os.environ.get("ARCHLAB_DOCS_RUNS", "runs")
data = archlab.load_fashion_mnist()
trained = [archlab.train(m, runs=RUNS, data=data, epochs=1, reuse=True) for m in ("dnn", "cnn")]

comparison = archlab.compare(trained, data=data)
print(comparison)

# %%
comparison.plot()
