"""Defaults of calibration and ood, importable without torch (the CLI's help)."""

BINS = 15  # equal-width confidence bins of the ECE (Guo et al., 2017)
MAX_BINS = 1_000  # more hold a few of the 10,000 test images each
FIT_IMAGES = 5_000  # the last 5,000 training images: where the temperature is fitted
SETS = ("digits", "flip", "invert", "rotate", "noise")
METHODS = ("msp", "energy", "maxlogit")
OOD_IMAGES = 2_000  # test images (stratified), and the images of each transformed set
BOOTSTRAP = 1_000  # resamples for the confidence intervals
CONFIDENT = 5  # the most confident out-of-distribution images shown per run
