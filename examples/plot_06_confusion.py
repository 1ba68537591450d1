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
cnn, checkpoint = archlab.load_or_train("cnn", RUNS, data, epochs=1, progress=False)

report = archlab.evaluate_report("cnn", cnn, data, checkpoint["normalize"])
print(report)

# %%
archlab.plot_confusion(report)

# %%
# The most confident mistakes
# ---------------------------
# Some of them are honest ambiguities of the labels, not only of the model.
wrong = report.mistakes(data.test_labels, 16)
archlab.plot_mistakes(data.test_images, data.test_labels, report.probs, wrong, report.classes)
