"""
Confusion matrices and the most confused pairs
==============================================

Where does the CNN go wrong? One pass over the 10,000 test images gives the confusion
matrix, per-class precision, recall and F1, and the most confident mistakes.
"""

# %%
import os

import archlab

RUNS = os.environ.get("ARCHLAB_DOCS_RUNS", "runs")
data = archlab.load_fashion_mnist()
cnn = archlab.train("cnn", runs=RUNS, data=data, epochs=1, reuse=True)

report = archlab.evaluate(cnn, data=data)
print(report)

# %%
report.plot()

# %%
# The most confident mistakes
# ---------------------------
# Some of them are honest ambiguities of the labels, not only of the model.
report.plot_mistakes(16)
