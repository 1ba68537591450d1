"""Linear probes (Alain & Bengio 2016): where does a model make the classes linearly
separable?

For every row of a model's trace whose output is a feature map or a vector, a linear
classifier (multinomial logistic regression) is trained on that row's output for a fixed
set of training images and tested on the test images; the raw pixels are the first point.
The features come from the trace's record (:func:`~archlab.trace.record.row_outputs`), so
the rows are exactly :func:`~archlab.trace_shapes`' rows.

The budget is fixed and stated in every report:

- ``images`` training images (default 10,000, stratified by class with a fixed seed), the
  test images (default all 10,000);
- a feature map ``(C, H, W)`` is average-pooled (``adaptive_avg_pool2d``) to the largest
  square grid ``s × s`` with ``C·s² ≤ 2048``; a vector longer than 2048 is average-pooled
  to 2048 (``adaptive_avg_pool1d``);
- features are standardised with the training features' mean and standard deviation;
- the probe minimises the mean cross-entropy plus ``l2/2·‖W‖²`` (default ``l2 = 1e-3``),
  from zero, by full-batch L-BFGS (strong-Wolfe line search) for at most ``steps``
  iterations (default 100): the objective is convex, so the answer does not depend on a
  seed. That is scikit-learn's ``LogisticRegression(C=1/(l2·images))``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from archlab._bounds import check_float, check_int, check_seed
from archlab._report import Report
from archlab._table import Table
from archlab.analysis._probe_budget import IMAGES, L2, MAX_FEATURES, STEPS, TEST_IMAGES
from archlab.errors import ArchlabError

if TYPE_CHECKING:
    from archlab.training.run import Run

CHUNK = 500  # images traced at once (a conv net's rows of 10,000 images would not fit)


def pool_features(output: torch.Tensor, most: int = MAX_FEATURES) -> torch.Tensor:
    """One row's output ``(N, ...)`` as at most ``most`` features per image ``(N, F)``.

    A map ``(N, C, H, W)`` is average-pooled to the largest square ``s × s`` with
    ``C·s² ≤ most`` (at least 1×1; its side at most ``max(H, W)``); a vector longer
    than ``most`` to ``most``; anything else is flattened.

    Example:

        >>> tuple(pool_features(torch.zeros(2, 32, 28, 28)).shape)  # 32·8·8 = 2048
        (2, 2048)
        >>> tuple(pool_features(torch.zeros(2, 2304)).shape)
        (2, 2048)
    """
    if output.dim() == 4:
        c, h, w = output.shape[1:]
        if c * h * w > most:
            side = max(1, int((most // c) ** 0.5))
            output = F.adaptive_avg_pool2d(output, (min(side, h), min(side, w)))
    flat = output.reshape(len(output), -1)
    if flat.shape[1] > most:
        flat = F.adaptive_avg_pool1d(flat.unsqueeze(1), most).squeeze(1)
    return flat


def row_label(row) -> str:
    """``layer1.0 Conv2d`` for a layer, ``F.relu (forward)`` for an operation."""
    return f"{row.type} (forward)" if row.functional else f"{row.name} {row.type}"


def trace_rows(model: nn.Module, input_shape: tuple[int, ...]) -> list:
    """The rows of ``model``'s trace, or one line saying why it cannot be traced."""
    from archlab.trace.shapes import trace_shapes

    report = trace_shapes(model, tuple(input_shape))
    if report.error is not None:
        raise ArchlabError(f"{type(model).__name__}: {report.error}", 1)
    return list(report.layers)


def row_features(
    model: nn.Module,
    images: torch.Tensor,
    normalize: tuple[float, float] | None = None,
    *,
    most: int = MAX_FEATURES,
    keep: set[int] | None = None,
    progress=None,
) -> tuple[list, list[torch.Tensor | None]]:
    """Every trace row's output for uint8 ``images`` ``(N, H, W)``, pooled to at most
    ``most`` features (:func:`pool_features`), traced :data:`CHUNK` images at a time.

    Args:
        model: the model (its mode is restored after).
        images: uint8 pixels ``(N, H, W)``.
        normalize: the (mean, std) it was trained with. Default: none.
        most: features per row at most. Default: 2048.
        keep: the rows to keep (the others come back as None). Default: all.
        progress: a tqdm bar to advance by the images done. Default: none.

    Returns:
        ``(rows, features)``: the trace's rows, and ``features[i]`` ``(N, F)`` float for
        row i (None where the row has no one-row-per-image output of at least one
        feature per image).
    """
    from archlab.trace.record import row_outputs
    from archlab.training.predict import model_device, to_input

    rows = trace_rows(model, (1, *images.shape[1:]))
    parts: list[list[torch.Tensor] | None] = [
        [] if keep is None or i in keep else None for i in range(len(rows))
    ]
    device = model_device(model)
    for start in range(0, len(images), CHUNK):
        x = to_input(images[start : start + CHUNK].to(device), normalize)
        outputs, _ = row_outputs(model, x, len(rows))
        for i, out in enumerate(outputs):
            if out is None or out.dim() < 2 or parts[i] is None:
                parts[i] = None
            else:
                parts[i].append(pool_features(out, most))
        if progress is not None:
            progress.update(len(x))
    return rows, [None if p is None else torch.cat(p) for p in parts]


def fit_probe(
    features: torch.Tensor, labels: torch.Tensor, *, l2: float = L2, steps: int = STEPS
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """A linear classifier on standardised ``features`` ``(N, F)`` for ``labels`` ``(N,)``.

    Returns:
        ``(weight (F, K), bias (K,), mean (F,), std (F,))``: predict with
        ``((x − mean) / std) @ weight + bias``.
    """
    wide = features.double()  # the statistics in float64; the optimisation in float32
    mean = wide.mean(0)
    std = wide.std(0, unbiased=False)
    std = torch.where(std > 1e-8, std, torch.ones_like(std))  # a constant feature stays 0
    mean, std = mean.float(), std.float()
    x = (features.float() - mean) / std
    classes = int(labels.max()) + 1
    # the gradient written out, on both layouts of x: autograd's x.T @ grad on an (N, F)
    # matrix was 8 times slower than grad.T @ x (a skinny product, 10 columns), and the
    # forward pass W.T @ x.T twice as fast as x @ W; the same iterates, 5 times faster
    across = x.T.contiguous()  # (F, N)
    onehot = F.one_hot(labels, classes).to(x.dtype)
    weight = torch.zeros(classes, x.shape[1], dtype=x.dtype, requires_grad=True)  # (K, F)
    bias = torch.zeros(classes, dtype=x.dtype, requires_grad=True)
    optimizer = torch.optim.LBFGS(
        [weight, bias],
        lr=1,
        max_iter=steps,
        history_size=10,
        tolerance_grad=1e-6,
        tolerance_change=1e-9,
        line_search_fn="strong_wolfe",
    )

    def closure():
        with torch.no_grad():  # mean cross-entropy + l2/2·‖W‖² and its gradient
            log_p = ((weight @ across).T + bias).log_softmax(1)
            loss = -(log_p * onehot).sum() / len(x) + 0.5 * l2 * (weight * weight).sum()
            slope = (log_p.exp() - onehot) / len(x)  # d loss / d logits (N, K)
            weight.grad = slope.T @ x + l2 * weight
            bias.grad = slope.sum(0)
        return loss

    optimizer.step(closure)
    return weight.detach().T.contiguous(), bias.detach(), mean, std


def same_probe(
    before: tuple[torch.Tensor, torch.Tensor],
    after: tuple[torch.Tensor, torch.Tensor],
    tol: float = 1e-2,
) -> bool:
    """Whether a row's ``(train, test)`` features ``after`` are, feature by feature, an
    affine map ``a·x + b`` (``a ≠ 0``) of the row ``before``'s (an eval-mode batch norm
    or dropout, an identity): then their standardised features differ only by each
    feature's sign, and a probe (L2 and cross-entropy, from zero) gives the same
    accuracies; L-BFGS's steps are mirrored exactly.

    Both are standardised by their training features' mean and standard deviation, the
    sign of each taken from its correlation; equal within ``tol`` (relative, in standard
    deviations) on the training and the test features. The tolerance is float32's: the
    dnn's normalised view of a pixel that is non-zero in one training image of 10,000
    differs from the raw pixel by 1.4e-3 standard deviations after rounding.

    Example:

        >>> x = torch.randn(50, 3), torch.randn(20, 3)
        >>> scale = torch.tensor([2.0, -0.5, 1.0])
        >>> same_probe(x, (x[0] * scale + 1, x[1] * scale + 1))
        True
        >>> same_probe(x, (x[0].relu(), x[1].relu()))
        False
    """
    (train_a, test_a), (train_b, test_b) = before, after
    if train_a.shape != train_b.shape or test_a.shape != test_b.shape:
        return False
    za, zb = _standardised(train_a, test_a), _standardised(train_b, test_b)
    sign = torch.where((za[0] * zb[0]).sum(0) < 0, -1.0, 1.0)
    return all(
        not len(b) or bool(((b - a * sign).abs() <= tol * (1 + a.abs())).all())
        for a, b in zip(za, zb, strict=True)
    )


def _standardised(train: torch.Tensor, test: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    train, test = train.double(), test.double()
    mean, std = train.mean(0), train.std(0, unbiased=False)
    std = torch.where(std > 1e-8 * (1 + mean.abs()), std, torch.ones_like(std))
    return (train - mean) / std, (test - mean) / std


def probe_accuracy(probe, features: torch.Tensor, labels: torch.Tensor) -> float:
    """The share of ``features`` ``(N, F)`` a :func:`fit_probe` answer classifies right."""
    weight, bias, mean, std = probe
    logits = ((features.float() - mean) / std) @ weight + bias
    return float((logits.argmax(1) == labels).double().mean())


@dataclass
class ModelProbes:
    """One model's probes: ``points[0]`` is the pixels, then one per trace row probed."""

    model: str
    points: list[str]  # "pixels", then row labels
    rows: list[int | None]  # the trace row of each point (None: the pixels)
    shapes: list[str]  # what the probe saw: "32×28×28 → 2048"
    train_accuracy: list[float]
    test_accuracy: list[float]
    model_accuracy: float  # the model's own, on the same test images

    @property
    def depth(self) -> list[float]:
        """Relative depth 0 (pixels) … 1 (the last row probed)."""
        last = max(len(self.points) - 1, 1)
        return [i / last for i in range(len(self.points))]

    @property
    def jump(self) -> tuple[int, float]:
        """``(point, gain)``: the point whose test accuracy rose most over the one before."""
        gains = [b - a for a, b in zip(self.test_accuracy, self.test_accuracy[1:], strict=False)]
        if not gains:
            return 0, 0.0
        best = max(range(len(gains)), key=lambda i: gains[i])
        return best + 1, gains[best]

    def to_dict(self) -> dict:
        point, gain = self.jump
        return {
            "model": self.model,
            "points": self.points,
            "rows": self.rows,
            "shapes": self.shapes,
            "depth": self.depth,
            "train_accuracy": self.train_accuracy,
            "test_accuracy": self.test_accuracy,
            "model_accuracy": self.model_accuracy,
            "largest_jump": {"point": self.points[point], "gain": gain},
        }


@dataclass
class Probes(Report):
    """Linear-probe accuracy per trace row, per model: what :func:`probes` returns.

    ``.plot(ax=None)`` draws test accuracy against relative depth, every model on one axis.

    Example::

        >>> report = archlab.probes(["dnn", "cnn"], images=2000)  # doctest: +SKIP
        >>> report.results[1].points[report.results[1].jump[0]]  # doctest: +SKIP
        'layer1.2 ReLU'
    """

    results: list[ModelProbes]
    images: int  # training images each probe learnt from
    test_images: int
    steps: int
    l2: float
    max_features: int = MAX_FEATURES
    _shows_figure = True

    def _parts(self) -> list[Table | str]:
        parts: list[Table | str] = [
            f"Linear probes: logistic regression on each row's output (pooled to at most "
            f"{self.max_features:,} features, standardised), {self.images:,} training images, "
            f"L-BFGS ≤ {self.steps} iterations, L2 {self.l2:g}; accuracy on "
            f"{self.test_images:,} test images"
        ]
        for r in self.results:
            rows = [
                [
                    str(i),
                    name,
                    shape,
                    f"{d:.2f}",
                    f"{100 * tr:.2f}",
                    f"{100 * te:.2f}",
                ]
                for i, (name, shape, d, tr, te) in enumerate(
                    zip(r.points, r.shapes, r.depth, r.train_accuracy, r.test_accuracy, strict=True)
                )
            ]
            parts.append(
                Table(
                    ["#", "row", "features", "depth", "train %", "test %"],
                    rows,
                    f"{r.model}: probes",
                )
            )
            point, gain = r.jump
            jump = (
                f"largest jump at row {point}, {r.points[point]} (+{100 * gain:.2f} points)"
                if gain > 0
                else "no row's probe beats the row before it"
            )
            parts.append(
                f"{r.model}: {jump}; last row {100 * r.test_accuracy[-1]:.2f} % against the "
                f"model's own {100 * r.model_accuracy:.2f} %"
            )
        return parts

    def plot(self, ax=None):
        from archlab.viz.probes import plot_probes

        return plot_probes(self, ax)


def check_probe_options(
    images: object = IMAGES,
    test_images: object = TEST_IMAGES,
    steps: object = STEPS,
    l2: object = L2,
) -> None:
    """One :class:`ArchlabError` naming the first bad argument."""
    check_int("images", images, 10, 60_000)
    check_int("test_images", test_images, 1, 10_000)
    check_int("steps", steps, 1, 10_000)
    check_float("l2", l2, 0.0, 1e3)


def probe_model(
    model: nn.Module,
    data,
    *,
    normalize: tuple[float, float] | None = None,
    name: str | None = None,
    images: int = IMAGES,
    test_images: int = TEST_IMAGES,
    steps: int = STEPS,
    l2: float = L2,
    seed: int = 0,
    progress: bool = False,
    timings: dict[str, float] | None = None,
) -> ModelProbes:
    """The probes of one model in hand on ``data`` (a :class:`~archlab.FashionMNIST`).

    Args:
        model: the classifier (its mode is restored after).
        data: the dataset.
        normalize: the (mean, std) it was trained with. Default: none.
        name: for the table. Default: the class name.
        images: training images (stratified by class, ``seed``). Default: 10,000.
        test_images: test images (stratified by class, ``seed``; 10,000: all). Default: all.
        steps: L-BFGS iterations per probe. Default: 100.
        l2: the weight of ``½‖W‖²``. Default: 1e-3.
        seed: which training images. Default: 0.
        progress: show a progress bar on stderr. Default: False.
        timings: seconds added per step: ``tracing`` (every row's features of the
            training and test images), ``model accuracy``, ``fitting`` (the probes).
            Default: none.

    Returns:
        A :class:`ModelProbes`.
    """
    from archlab.analysis.faithfulness import stratified_indices
    from archlab.trace.formulas import fmt_shape

    check_probe_options(images, test_images, steps, l2)
    seed = check_seed(seed)
    train_at = stratified_indices(data.train_labels, min(images, len(data.train_labels)), seed)
    test_at = stratified_indices(data.test_labels, min(test_images, len(data.test_labels)), seed)
    train_x, test_x = data.train_images[train_at], data.test_images[test_at]
    train_y, test_y = data.train_labels[train_at].long(), data.test_labels[test_at].long()
    name = name or type(model).__name__
    start = time.perf_counter()
    bar = _bar(progress, len(train_x) + len(test_x), f"{name}: tracing")
    try:
        rows, train_f = row_features(model, train_x, normalize, progress=bar)
        _, test_f = row_features(model, test_x, normalize, progress=bar)
    finally:
        if bar is not None:
            bar.close()
    _add(timings, "tracing", start)
    start = time.perf_counter()
    model_accuracy = _model_accuracy(model, test_x, test_y, normalize)
    _add(timings, "model accuracy", start)
    start = time.perf_counter()
    result = ModelProbes(name, [], [], [], [], [], model_accuracy)
    candidates = [("pixels", None, _pixels(train_x), _pixels(test_x), fmt_shape(test_x.shape[1:]))]
    for i, (row, tr, te) in enumerate(zip(rows, train_f, test_f, strict=True)):
        if tr is None or te is None:
            continue
        seen = fmt_shape(tuple(row.output))
        if tr.shape[1] != _numel(row.output):
            seen += f" → {tr.shape[1]:,}"
        candidates.append((row_label(row), i, tr, te, seen))
    bar = _bar(progress, len(candidates), f"{name}: probes")
    try:
        before = None
        for label, row, tr, te, seen in candidates:
            if before is not None and same_probe(before, (tr, te)):
                # an affine map of each feature of the row before: the same probe, not refitted
                train_accuracy = result.train_accuracy[-1]
                test_accuracy = result.test_accuracy[-1]
                seen += " (affine of the row before: same probe)"
            else:
                probe = fit_probe(tr, train_y, l2=l2, steps=steps)
                train_accuracy = probe_accuracy(probe, tr, train_y)
                test_accuracy = probe_accuracy(probe, te, test_y)
            before = (tr, te)
            result.points.append(label)
            result.rows.append(row)
            result.shapes.append(seen)
            result.train_accuracy.append(train_accuracy)
            result.test_accuracy.append(test_accuracy)
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    _add(timings, "fitting", start)
    return result


def _add(timings: dict[str, float] | None, step: str, start: float) -> None:
    if timings is not None:
        timings[step] = timings.get(step, 0.0) + time.perf_counter() - start


def _pixels(images: torch.Tensor) -> torch.Tensor:
    """uint8 ``(N, H, W)`` as ``(N, H·W)`` in [0, 1]: the point before the network."""
    return images.reshape(len(images), -1).float() / 255


def _numel(shape) -> int:
    n = 1
    for d in shape:
        n *= int(d)
    return n


def _bar(show: bool, total: int, what: str):
    if not show:
        return None
    from tqdm.std import tqdm  # a text bar everywhere (as training's)

    return tqdm(total=total, desc=what, leave=False, dynamic_ncols=True)


def _model_accuracy(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, normalize):
    from archlab._modes import in_mode
    from archlab.training.predict import model_device, to_input

    device = model_device(model)
    right = 0
    with in_mode(model), torch.no_grad():
        for start in range(0, len(images), CHUNK):
            x = to_input(images[start : start + CHUNK].to(device), normalize)
            right += int((model(x).argmax(1).cpu() == labels[start : start + CHUNK]).sum())
    return right / len(images)


def probes(
    models: Sequence | str | Run = ("dnn", "cnn"),
    *,
    images: int = IMAGES,
    test_images: int = TEST_IMAGES,
    steps: int = STEPS,
    l2: float = L2,
    seed: int = 0,
    progress: bool = False,
    runs: str | os.PathLike = "runs",
    data=None,
    timings: dict[str, float] | None = None,
) -> Probes:
    """Linear probes along trained runs: where each makes the classes linearly separable.

    Args:
        models: :class:`~archlab.Run` objects, specs, groups (``"zoo"``) or run folder
            names (one run alone is fine). Default: the lecture's two.
        images: training images per probe (10 to 60,000), stratified by class. Default:
            10,000.
        test_images: test images (1 to 10,000), stratified by class. Default: 10,000.
        steps: L-BFGS iterations per probe (1 to 10,000). Default: 100.
        l2: weight of ``½‖W‖²`` next to the mean cross-entropy (0 to 1000). Default: 1e-3.
        seed: which images. Default: 0.
        progress: show progress bars on stderr. Default: False.
        runs: the runs folder, for the names. Default: ``"runs"``.
        data: the dataset. Default: :func:`~archlab.load_fashion_mnist`.
        timings: seconds per step summed over the models (see :func:`probe_model`).
            Default: none.

    Returns:
        A :class:`Probes` report: print it, ``.plot()`` it.

    Example::

        >>> print(archlab.probes(["dnn", "cnn"], images=2000))   # doctest: +SKIP
    """
    from archlab.training.run import as_runs, shared_data

    check_probe_options(images, test_images, steps, l2)
    seed = check_seed(seed)
    loaded = as_runs(models, runs)
    if data is None:
        from archlab.training.data import load_fashion_mnist

        data = load_fashion_mnist()
    data = shared_data(loaded, data)  # the classes the runs learned: the model's accuracy too
    report = Probes([], min(images, len(data.train_labels)), 0, steps, l2)
    for run in loaded:
        result = probe_model(
            run.model,
            data,
            normalize=run.normalize,
            name=run.name,
            images=images,
            test_images=test_images,
            steps=steps,
            l2=l2,
            seed=seed,
            progress=progress,
            timings=timings,
        )
        report.results.append(result)
    report.test_images = min(test_images, len(data.test_labels))
    return report


__all__ = ["ModelProbes", "Probes", "pool_features", "probe_model", "probes", "row_features"]
