"""
Why deep nets train: dynamics, BatchNorm and the learning rate
==============================================================

Three questions about the lecture's CNN, each answered from inside the network while it
trains. What does one unit of ``layer2`` see? Why does the CNN with BatchNorm train so
much faster than the same net without it? Why Adam's lr 0.001, and what happens at 0.1?

To keep the docs build quick, each run here is **300 iterations** (half an epoch) with
its dynamics recorded every 20 (``archlab train --watch 20``); the pictures already
tell the story.
"""

# %%
# What one unit sees: the receptive field
# ---------------------------------------
# ``archlab shapes`` has a ``field`` column: the pixels one unit of each row sees, and
# the jump between neighbouring units. One unit of ``layer2.3`` sees 10×10 of the
# 28×28 image; ``fc1`` is the first layer that sees all of it.
import os

import archlab

report = archlab.trace_shapes("cnn")
for row in report.layers[:9]:
    print(f"{row.name:10} {row.type:12} {row.receptive}")
print(report.notes[-1])

# %%
# The CNN with and without BatchNorm
# ----------------------------------
# ``--set layer1.1=Identity`` takes a layer out. The heat-maps show, per layer, the
# histogram of the absolute activation over training (fast.ai's "colourful dimension"): with
# BatchNorm every layer keeps the same scale from the first step; without it the scale
# drifts layer by layer and the linear layers' activations spread out.
RUNS = os.path.join(os.environ.get("ARCHLAB_DOCS_RUNS", "runs"), "dynamics")
no_bn = ["layer1.1=Identity", "layer2.1=Identity"]
settings = dict(runs=RUNS, epochs=1, max_iterations=300, watch=20, progress=False)
with_bn = archlab.train("cnn", log=lambda line: None, **settings)
without = archlab.train("cnn", no_bn, log=lambda line: None, **settings)
bn = archlab.dynamics([with_bn, without], runs=RUNS)
print(bn)
bn.plot()

# %%
# lr 0.001 against lr 0.1
# -----------------------
# At 0.1 Adam's steps are a hundred times larger: the update-to-weight ratio jumps far
# above the healthy 1e-3, the ReLUs die (the table's "dead %") and the histograms
# collapse to zero.
fast = archlab.train("cnn", name="cnn-lr0.1", lr=0.1, log=lambda line: None, **settings)
lr = archlab.dynamics([with_bn, fast], runs=RUNS)
print(lr)
lr.plot()

# %%
# Finding the rate: the learning-rate finder
# ------------------------------------------
# ``archlab lr-find cnn`` trains a throw-away copy while the rate grows from 1e-7 to 10
# and suggests the rate where the smoothed loss falls fastest. ``archlab train cnn
# --recipe onecycle`` uses it as the peak of a one-cycle schedule. (A short sweep here.)
found = archlab.lr_find("cnn", iterations=100, start=1e-6, end=1.0)
print(found)
found.plot()
