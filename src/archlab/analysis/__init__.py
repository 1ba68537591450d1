"""Looking inside a trained model: attributions, filters, activations, evaluation.

- ``explain``: Captum attributions for one image and their sanity check;
- ``features``: a model's kernels and the feature maps one image makes;
- ``evaluation``: confusion matrices, per-class scores, mistakes, runs compared;
- ``faithfulness``: deletion curves, ROAD, Captum's metrics, against control maps;
- ``robustness``: accuracy under FGSM and PGD, and the images that flip first.
"""
