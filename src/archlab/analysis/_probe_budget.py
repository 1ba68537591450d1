"""The probes' and the map's fixed budget, importable without torch (the CLI's help
states it)."""

MAX_FEATURES = 2048  # what a probe or a map sees of one row at most (average-pooled to it)
IMAGES = 10_000  # training images a probe learns from
TEST_IMAGES = 10_000  # test images: all of them
STEPS = 100  # L-BFGS iterations per probe
L2 = 1e-3  # weight of ½‖W‖² next to the mean cross-entropy
NEIGHBOURS = 10  # k of the k-NN accuracy in a 2-D map
METHODS = ("pca", "tsne", "umap")  # the map's projections
METHOD_NAMES = {"pca": "PCA", "tsne": "t-SNE", "umap": "UMAP"}
