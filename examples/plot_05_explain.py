"""
Attributions, and a sanity check
================================

Which pixels made the CNN answer as it did for test image 42? Five Captum methods,
then the model-randomisation test of Adebayo et al. (2018): a map that stays the same
when the weights are destroyed is not showing what the model learned.
"""

# %%
import os

import archlab

RUNS = os.environ.get("ARCHLAB_DOCS_RUNS", "runs")
data = archlab.load_fashion_mnist()
cnn = archlab.train("cnn", runs=RUNS, data=data, epochs=1, reuse=True)

explanation = archlab.explain(cnn, 42, sanity=True, data=data)
print(explanation)

# %%
# Top row: each method's map (Grad-CAM at its native resolution); middle row: the map
# over the image; bottom row: the same method on the fully randomised model, and the
# rank correlation as layers are re-initialised from the top down.
explanation.plot()
