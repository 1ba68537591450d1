"""
Can the explanation be trusted?
===============================

An attribution map ranks the pixels. It is *faithful* when the pixels it ranks highest
are the ones the model's score depends on. Delete them first (MoRF, most relevant first)
and the probability of the explained class should fall fast; delete the least relevant
first (LeRF) and it should hold. The area under each curve (AUC) is the score, and a
score means something only beside what a map that knows nothing reaches: a random map,
the image's Sobel edges, a constant map. To keep this page quick it scores 20 test
images (the command's default is 300).
"""

# %%
import os

import archlab

RUNS = os.environ.get("ARCHLAB_DOCS_RUNS", "runs")
data = archlab.load_fashion_mnist()
archlab.train("cnn", runs=RUNS, data=data, reuse=True, epochs=1, progress=False)

# %%
# The curves of one image
# -----------------------
# ``faithfulness="zero"`` adds test image 42's deletion curves beside the maps. Grad-CAM
# now sits on the output of the last block (after its BatchNorm and ReLU, 12×12); its
# title says which layer and why.
archlab.explain("cnn", 42, runs=RUNS, data=data, faithfulness="zero").plot()

# %%
# The fill decides what is measured
# ---------------------------------
# A removed pixel must become *something*. Black (``zero``) is what the background
# already is on Fashion-MNIST, so deleting background pixels changes nothing and the
# curve traces the garment's silhouette: the edge map (a control!) scores well. A blur,
# or ROAD's noisy imputation from the neighbours, hides the shape of the hole.
for fill in ("zero", "road"):
    report = archlab.faithfulness("cnn", images=20, fill=fill, detail=4, runs=RUNS, data=data)
    print(report)
report.plot()

# %%
# What the numbers do and do not say
# ----------------------------------
# - Only the ranking against the controls counts: a method that does not beat the
#   random map on this model and fill has not shown it is faithful.
# - Deletion favours blurry maps (an upsampled Grad-CAM removes whole regions at once).
# - IG from a black image cannot credit black pixels: half of every image here.
# - A faithful map says what the *model* uses, not what makes a coat a coat.
#
# The same table for a zoo model: ``archlab.faithfulness("resnet")``, or on the command
# line ``archlab faithfulness cnn resnet --fill road``. How fragile each model is under
# attack: ``archlab attack dnn cnn resnet``.
