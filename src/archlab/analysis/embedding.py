"""The map: one layer's features of the test images projected to 2-D, beside the pixels.

The features are a trace row's output, read from the trace's record
(:func:`~archlab.analysis.probes.row_features`, average-pooled to at most 2,048 per image
as for the probes); by default the input of the model's last ``nn.Linear`` (the features
its classifier separates). Projections:

- ``"pca"`` (default): the two leading principal components, from the eigenvectors of the
  features' covariance in float64 (exact and deterministic; the sign of each axis is
  fixed so that its largest loading is positive), as scikit-learn's ``PCA`` finds them;
- ``"tsne"``: scikit-learn's ``TSNE`` (perplexity 30, PCA start, ``seed``) on the
  features' 50 leading principal components: the usual recipe, slow on 10,000 images;
- ``"umap"``: umap-learn's ``UMAP`` (``seed``), where it is installed.

A number to check each map by: the leave-one-out k-nearest-neighbour accuracy (k = 10,
Euclidean, ties to the lowest class) of the 2-D points.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch
from torch import nn

from archlab._bounds import check_int, check_seed
from archlab._report import Report
from archlab._table import Table
from archlab.analysis._probe_budget import METHOD_NAMES, METHODS, NEIGHBOURS, TEST_IMAGES
from archlab.errors import ArchlabError

if TYPE_CHECKING:
    from archlab.training.run import Run


def pca_2d(features: torch.Tensor) -> tuple[torch.Tensor, list[float]]:
    """``features`` ``(N, F)`` on their two leading principal components ``(N, 2)``, and
    the share of the variance each explains.

    Example:

        >>> x = torch.tensor([[0.0, 0.0], [2.0, 0.0], [4.0, 0.1]])  # variances 4 and 1/300, cov 0.1
        >>> points, shares = pca_2d(x)
        >>> [round(float(v), 1) + 0.0 for v in points[:, 0]], round(shares[0], 4)
        ([-2.0, 0.0, 2.0], 0.9998)
    """
    x = features.double()
    x = x - x.mean(0)
    if x.shape[1] < 2:
        x = torch.cat([x, torch.zeros(len(x), 2 - x.shape[1], dtype=x.dtype)], 1)
    values, vectors = torch.linalg.eigh(x.T @ x / max(len(x) - 1, 1))
    values, vectors = values.flip(0)[:2], vectors.flip(1)[:, :2]
    biggest = vectors.abs().argmax(0)
    signs = vectors[biggest, torch.arange(2)].sign()
    vectors = vectors * torch.where(signs == 0, torch.ones_like(signs), signs)
    total = float(x.pow(2).sum()) / max(len(x) - 1, 1)
    shares = [float(v) / total if total > 0 else 0.0 for v in values]
    return (x @ vectors).float(), shares


def _tsne(features: torch.Tensor, seed: int) -> torch.Tensor:
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE

    x = features.double().numpy()
    components = min(50, len(x))  # PCA keeps at most as many components as images
    if x.shape[1] > components:
        x = PCA(components, random_state=seed).fit_transform(x)
    perplexity = min(30.0, max(1.0, (len(x) - 1) / 3))
    points = TSNE(2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(x)
    return torch.from_numpy(points).float()


UMAP_MISSING = (
    "method='umap' needs umap-learn (pip install umap-learn); 'pca' and 'tsne' work without it"
)


def _umap(features: torch.Tensor, seed: int) -> torch.Tensor:
    try:
        import umap
    except ImportError as exc:
        raise ArchlabError(UMAP_MISSING, 1) from exc
    with warnings.catch_warnings():  # a seed makes it single-threaded, which it says twice
        warnings.filterwarnings("ignore", message="n_jobs value", category=UserWarning)
        points = umap.UMAP(n_components=2, random_state=seed).fit_transform(features.numpy())
    return torch.from_numpy(points).float()


def compile_umap() -> None:
    """Compile umap-learn's numba functions into their on-disk cache, as ``make setup``
    does (about 60 s here, a short fit included): otherwise the first ``map --method umap``
    compiles them first (101 s here, where later calls take 65 s; after this, 72 s). A fit
    of 5,000 random float32 points takes the test set's code paths (approximate
    neighbours from 4,096 points on, the Euclidean layout). Nothing happens where
    umap-learn is not installed."""
    import importlib.util

    if importlib.util.find_spec("umap") is None:
        return
    import umap

    g = torch.Generator().manual_seed(0)
    points = torch.rand(5_000, 8, generator=g).numpy()
    with warnings.catch_warnings():  # 2 layout epochs: the same compiled code, less fitting
        warnings.filterwarnings("ignore", message="n_jobs value", category=UserWarning)
        umap.UMAP(n_components=2, random_state=0, n_epochs=2).fit_transform(points)


def project(features: torch.Tensor, method: str = "pca", seed: int = 0) -> torch.Tensor:
    """``features`` ``(N, F)`` projected to ``(N, 2)`` by ``method`` (pca, tsne, umap)."""
    if method == "pca":
        return pca_2d(features)[0]
    # scikit-learn and umap-learn take numpy's 32-bit seeds: archlab's larger ones fold
    return {"tsne": _tsne, "umap": _umap}[method](features, seed % 2**32)


def knn_accuracy(points: torch.Tensor, labels: torch.Tensor, k: int = NEIGHBOURS) -> float:
    """Leave-one-out k-nearest-neighbour accuracy of ``points`` ``(N, D)``: each point
    takes the majority class of its ``k`` nearest other points (Euclidean; a tie goes to
    the lowest class).

    Example:

        >>> pts = torch.tensor([[0.0], [0.1], [0.2], [5.0], [5.1], [5.2]])
        >>> knn_accuracy(pts, torch.tensor([0, 0, 0, 1, 1, 1]), k=2)
        1.0
    """
    x = points.double()
    k = min(k, len(x) - 1)
    classes = int(labels.max()) + 1
    right = 0
    for start in range(0, len(x), 1000):
        d = torch.cdist(x[start : start + 1000], x)
        rows = torch.arange(len(d))
        d[rows, rows + start] = float("inf")  # not its own neighbour
        nearest = d.topk(k, largest=False).indices
        votes = torch.zeros(len(d), classes, dtype=torch.long)
        votes.scatter_add_(1, labels[nearest], torch.ones_like(nearest))
        right += int((votes.argmax(1) == labels[start : start + 1000]).sum())
    return right / len(x)


def default_layer(rows, model: nn.Module) -> int:
    """The row whose output is the input of the model's last ``nn.Linear`` call."""
    from archlab.trace.record import row_module

    modules = dict(model.named_modules())
    linear = [i for i, r in enumerate(rows) if isinstance(row_module(r, modules, model), nn.Linear)]
    if not linear or linear[-1] == 0:
        names = ", ".join(dict.fromkeys(r.name for r in rows if not r.functional))
        said = f"{type(model).__name__} has no linear layer after another row; name one with "
        raise ArchlabError(
            f"{said}layer= (rows: {names})", cli_message=f"{said}--layer (rows: {names})"
        )
    return linear[-1] - 1


def find_layer(rows, layer: str) -> int:
    """The first row of the layer named ``layer`` (a qualified module name)."""
    for i, row in enumerate(rows):
        if not row.functional and row.name == layer:
            return i
    names = ", ".join(dict.fromkeys(r.name for r in rows if not r.functional))
    said = f"no such row in the trace; choose from {names}"
    raise ArchlabError(f"layer={layer!r}: {said}", cli_message=f"--layer {layer!r}: {said}")


@dataclass
class Embedding(Report):
    """The test images in 2-D, by pixels and by one layer's features: what
    :func:`embedding` returns. ``.plot()`` draws both maps side by side (coloured by true
    class, mistakes marked, thumbnails where the points leave room); ``.plot(ax)`` the
    layer's map alone.

    Example::

        >>> m = archlab.embedding("cnn")  # doctest: +SKIP
        >>> m.layer, round(m.knn_layer, 3) > round(m.knn_pixels, 3)  # doctest: +SKIP
        ('fc3 Linear (its input)', True)
    """

    model: str
    layer: str  # what was projected, in words
    method: str
    features: int  # per image, after pooling
    indices: torch.Tensor  # (N,) test-set indices
    labels: torch.Tensor  # (N,)
    predictions: torch.Tensor  # (N,) the model's
    pixels: torch.Tensor  # (N, 2) the pixels' map
    points: torch.Tensor  # (N, 2) the layer's map
    knn_pixels: float
    knn_layer: float
    k: int = NEIGHBOURS
    images: torch.Tensor | None = field(default=None, repr=False)  # (N, H, W) uint8
    _shows_figure = True

    @property
    def accuracy(self) -> float:
        return float((self.predictions == self.labels).double().mean())

    def _parts(self) -> list[Table | str]:
        n = len(self.labels)
        side = tuple(self.images.shape[1:]) if self.images is not None else (28, 28)
        rows = [
            ["pixels", f"{side[0] * side[1]:,}", f"{100 * self.knn_pixels:.2f}"],
            [self.layer, f"{self.features:,}", f"{100 * self.knn_layer:.2f}"],
        ]
        return [
            Table(
                ["map", "features", f"{self.k}-NN accuracy in 2-D %"],
                rows,
                f"{self.model}: {n:,} test images projected by {METHOD_NAMES[self.method]}",
            ),
            f"{self.model} classifies {100 * self.accuracy:.2f} % of them right "
            f"({int((self.predictions != self.labels).sum()):,} mistakes, marked ×)",
        ]

    def to_dict(self) -> dict:
        from archlab._report import jsonable

        return jsonable(
            {
                "model": self.model,
                "layer": self.layer,
                "method": self.method,
                "features": self.features,
                "k": self.k,
                "knn_pixels": self.knn_pixels,
                "knn_layer": self.knn_layer,
                "accuracy": self.accuracy,
                "indices": self.indices,
                "labels": self.labels,
                "predictions": self.predictions,
                "pixels": self.pixels,
                "points": self.points,
            }
        )

    def plot(self, ax=None):
        from archlab.viz.probes import plot_embedding

        return plot_embedding(self, ax)


def check_map_options(method: object = "pca", images: object = TEST_IMAGES) -> str:
    """``method`` checked (one :class:`ArchlabError` naming the argument)."""
    if not isinstance(method, str) or method.lower() not in METHODS:
        raise ArchlabError(f"method={method!r}: choose {', '.join(METHODS)}", 2)
    check_int("images", images, 11, 10_000)
    if method.lower() == "umap":  # before any work, not after the features are computed
        import importlib.util

        if importlib.util.find_spec("umap") is None:
            raise ArchlabError(UMAP_MISSING, 1)
    return method.lower()


def embed_model(
    model: nn.Module,
    data,
    layer: str | None = None,
    *,
    normalize: tuple[float, float] | None = None,
    name: str | None = None,
    method: str = "pca",
    images: int = TEST_IMAGES,
    seed: int = 0,
    progress: bool = False,
) -> Embedding:
    """The map of a model in hand (see :func:`embedding` for the arguments)."""
    from archlab._modes import in_mode
    from archlab.analysis.faithfulness import stratified_indices
    from archlab.analysis.probes import _bar, row_features, row_label, trace_rows
    from archlab.training.predict import model_device, to_input

    method = check_map_options(method, images)
    seed = check_seed(seed)
    name = name or type(model).__name__
    at = stratified_indices(data.test_labels, min(images, len(data.test_labels)), seed)
    pictures, labels = data.test_images[at], data.test_labels[at].long()
    rows = trace_rows(model, (1, *pictures.shape[1:]))
    if layer is None:
        row = default_layer(rows, model)
        nxt = rows[row + 1]
        what = f"{nxt.name} {nxt.type} (its input)"
    else:
        row = find_layer(rows, layer)
        what = row_label(rows[row])
    bar = _bar(progress, len(pictures), f"{name}: tracing")
    try:
        _, features = row_features(model, pictures, normalize, keep={row}, progress=bar)
    finally:
        if bar is not None:
            bar.close()
    if features[row] is None:
        raise ArchlabError(f"layer {what}: its output is not one tensor per image", 1)
    device = model_device(model)
    with in_mode(model), torch.no_grad():
        predictions = torch.cat(
            [
                model(to_input(pictures[i : i + 500].to(device), normalize)).argmax(1).cpu()
                for i in range(0, len(pictures), 500)
            ]
        )
    pixels = project(pictures.reshape(len(pictures), -1).float() / 255, method, seed)
    points = project(features[row], method, seed)
    return Embedding(
        name,
        what,
        method,
        int(features[row].shape[1]),
        at,
        labels,
        predictions,
        pixels,
        points,
        knn_accuracy(pixels, labels),
        knn_accuracy(points, labels),
        images=pictures,
    )


def embedding(
    run: Run | str,
    layer: str | None = None,
    *,
    method: str = "pca",
    images: int = TEST_IMAGES,
    seed: int = 0,
    progress: bool = False,
    runs: str | os.PathLike = "runs",
    data=None,
) -> Embedding:
    """A trained run's test images projected to 2-D by one layer's features, beside the
    same images projected by their pixels.

    Args:
        run: a :class:`~archlab.Run`, or a spec or run folder's name (loaded from ``runs``).
        layer: a layer's qualified name (``"fc2"``, ``"layer2.3"``): its output (pooled to
            at most 2,048 features). Default: the input of the last ``nn.Linear``.
        method: ``"pca"``, ``"tsne"`` (scikit-learn) or ``"umap"`` (umap-learn, where
            installed). Default: ``"pca"``.
        images: test images (11 to 10,000), stratified by class. Default: 10,000 (all).
        seed: which images, and t-SNE's and UMAP's randomness. Default: 0.
        progress: show a progress bar on stderr. Default: False.
        runs: the runs folder, when ``run`` is a name. Default: ``"runs"``.
        data: the dataset. Default: :func:`~archlab.load_fashion_mnist`.

    Returns:
        An :class:`Embedding` report (with the k-NN accuracy, k = 10, in each map).

    Example::

        >>> print(archlab.embedding("cnn", images=2000))   # doctest: +SKIP
    """
    from archlab.training.run import as_run

    check_map_options(method, images)
    loaded = as_run(run, runs)
    if data is None:
        from archlab.training.data import load_fashion_mnist

        data = load_fashion_mnist()
    data = loaded.own_data(data)  # the classes it learned: its accuracy is theirs
    return embed_model(
        loaded.model,
        data,
        layer,
        normalize=loaded.normalize,
        name=loaded.name,
        method=method,
        images=images,
        seed=seed,
        progress=progress,
    )
