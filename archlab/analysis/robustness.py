"""How fragile is a trained model? Accuracy under Captum's FGSM and PGD attacks.

Both attacks move every pixel of the model's (normalised) input by at most ε (an L∞
ball), in the direction that raises the cross-entropy of the true class, and keep the
input within the range of real pixels (black to white). FGSM (Goodfellow et al., 2015)
takes one step of size ε along the sign of the gradient; PGD (Madry et al., 2018) takes
``steps`` smaller steps of 2.5·ε/steps, each projected back into the ball: a stronger
attack, so its accuracy is lower. ε is in the normalised input's units: for
Fashion-MNIST (std 0.353) ε = 0.1 moves a pixel by about 9 of 255 grey levels.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from archlab._report import Report
from archlab._table import Table
from archlab.analysis._settings import ATTACK_IMAGES as IMAGES
from archlab.analysis._settings import EPS, PGD_STEPS
from archlab.errors import ArchlabError
from archlab.training.data import CLASSES

if TYPE_CHECKING:
    from archlab.training.run import Run

FLIPS = 2  # images shown per model
BATCH = 500


@dataclass
class Flip:
    """One test image that the smallest ε flips, with its saliency before and after."""

    index: int
    eps: float
    before: str  # predicted class on the clean image
    after: str  # on the attacked one
    image: torch.Tensor  # (H, W) input units
    adversarial: torch.Tensor
    map_before: torch.Tensor
    map_after: torch.Tensor


@dataclass
class ModelRobustness:
    model: str
    fgsm: list[float]  # accuracy per ε
    pgd: list[float]
    flips: list[Flip] = field(default_factory=list)


@dataclass
class Robustness(Report):
    """The result of :func:`attack`: accuracy per ε under FGSM and PGD for each run.

    ``str()`` is the table; ``.plot()`` the accuracy curves (FGSM and PGD panels; on a
    given ``ax``, PGD alone); ``.plot_flips()`` the images that flip first, with their
    saliency maps before and after.

    Example::

        >>> report = archlab.attack(["dnn", "cnn"], eps=[0, 0.1])  # doctest: +SKIP
        >>> report.results[1].fgsm                                  # doctest: +SKIP
        [0.917, 0.31]
    """

    _shows_figure = True

    eps: list[float]
    images: int
    pgd_steps: int
    results: list[ModelRobustness] = field(default_factory=list)

    def _parts(self) -> list[Table | str]:
        headers = ["model", "attack", *(f"ε={e:g}" for e in self.eps)]
        rows = []
        for r in self.results:
            rows.append([r.model, "FGSM", *(f"{100 * a:.1f}" for a in r.fgsm)])
            rows.append([r.model, f"PGD-{self.pgd_steps}", *(f"{100 * a:.1f}" for a in r.pgd)])
        caption = (
            f"test accuracy (%) under attack, {self.images} test images; ε is an L∞ radius "
            "in the normalised input's units"
        )
        return [Table(headers, rows, caption)]

    def plot(self, ax=None):
        from archlab.viz.faithfulness import plot_robustness

        return plot_robustness(self, ax=ax)

    def plot_flips(self):
        from archlab.viz.faithfulness import plot_flips

        return plot_flips(self)


def _bounds(normalize) -> tuple[float, float]:
    from archlab.training.predict import to_input

    ends = to_input(torch.tensor([[[0, 255]]], dtype=torch.uint8), normalize).flatten()
    return float(ends[0]), float(ends[1])


def fgsm(model: nn.Module, x, labels, eps: float, bounds) -> torch.Tensor:
    """One FGSM step of size ``eps`` (Captum's :class:`captum.robust.FGSM`), clamped to
    ``bounds``."""
    from captum.robust import FGSM

    if eps == 0:
        return x.clone()
    return (
        FGSM(model, lower_bound=bounds[0], upper_bound=bounds[1])
        .perturb(x.detach().requires_grad_(True), eps, labels)
        .detach()
    )


def pgd(model: nn.Module, x, labels, eps: float, bounds, steps: int = PGD_STEPS):
    """PGD within the L∞ ball of radius ``eps`` (Captum's :class:`captum.robust.PGD`):
    ``steps`` steps of 2.5·eps/steps."""
    from captum.robust import PGD

    if eps == 0:
        return x.clone()
    import warnings

    with warnings.catch_warnings():  # PGD's inner FGSM steps take plain tensors
        warnings.filterwarnings("ignore", "Input Tensor 0 did not already require gradients")
        adv = PGD(model, lower_bound=bounds[0], upper_bound=bounds[1]).perturb(
            x.detach().requires_grad_(True), eps, 2.5 * eps / steps, steps, labels
        )
    return adv.detach()


def robustness_of_model(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    *,
    normalize=None,
    eps: Sequence[float] = EPS,
    pgd_steps: int = PGD_STEPS,
    flips: int = FLIPS,
    model_name: str | None = None,
    indices: torch.Tensor | None = None,
) -> ModelRobustness:
    """Accuracy per ε under FGSM and PGD for a model in hand, on uint8 ``images``
    ``(N, H, W)`` with their ``labels`` ``(N,)``; and the ``flips`` images that FGSM flips
    at the smallest ε."""
    from archlab.analysis.explain import _prepared, attribute_batch
    from archlab.training.predict import to_input

    x = to_input(images, normalize)
    bounds = _bounds(normalize)
    result = ModelRobustness(model_name or type(model).__name__, [], [])
    flipped_at = torch.full((len(x),), float("inf"))
    first_adv: dict[int, torch.Tensor] = {}
    with _prepared(model):
        for e in eps:
            fgsm_right = pgd_right = 0
            for i in range(0, len(x), BATCH):
                xi, yi = x[i : i + BATCH], labels[i : i + BATCH]
                adv = fgsm(model, xi, yi, e, bounds)
                with torch.no_grad():
                    wrong = model(adv).argmax(1) != yi
                fgsm_right += int((~wrong).sum())
                for j in wrong.nonzero().flatten().tolist():
                    if flipped_at[i + j] == float("inf"):
                        flipped_at[i + j] = e
                        first_adv[i + j] = adv[j].detach()
                adv = pgd(model, xi, yi, e, bounds, pgd_steps)
                with torch.no_grad():
                    pgd_right += int((model(adv).argmax(1) == yi).sum())
            result.fgsm.append(fgsm_right / len(x))
            result.pgd.append(pgd_right / len(x))
        # the images right when clean that flip at the smallest ε
        candidates = [k for k in flipped_at.argsort().tolist() if 0 < flipped_at[k] < float("inf")][
            :flips
        ]
        black = bounds[0]
        for k in candidates:
            pair = torch.stack([x[k], first_adv[k]])
            with torch.no_grad():
                preds = model(pair).argmax(1)
            maps = attribute_batch(
                model, pair.clone().requires_grad_(True), preds[:1].repeat(2), "saliency", black
            ).map
            result.flips.append(
                Flip(
                    int(indices[k]) if indices is not None else k,
                    float(flipped_at[k]),
                    CLASSES[int(preds[0])],
                    CLASSES[int(preds[1])],
                    x[k, 0],
                    first_adv[k][0],
                    maps[0],
                    maps[1],
                )
            )
    return result


def loss_rises(model: nn.Module, x, labels, eps: float, bounds=(-1e9, 1e9)) -> tuple[float, float]:
    """The cross-entropy before and after one FGSM step (a check: it must rise)."""
    with torch.no_grad():
        before = float(F.cross_entropy(model(x), labels))
        after = float(F.cross_entropy(model(fgsm(model, x, labels, eps, bounds)), labels))
    return before, after


def attack(
    models: Sequence | str | Run = ("dnn", "cnn"),
    *,
    eps: Sequence[float] = EPS,
    images: int = IMAGES,
    pgd_steps: int = PGD_STEPS,
    seed: int = 0,
    runs: str | os.PathLike = "runs",
    data=None,
) -> Robustness:
    """Test accuracy of trained runs under FGSM and PGD, for each ε.

    Args:
        models: :class:`~archlab.Run` objects, specs, groups (``"zoo"``) or run folder
            names (one run alone is fine). Default: the lecture's two.
        eps: L∞ radii in the normalised input's units. Default: 0 to 0.3.
        images: test images, stratified by class with a fixed seed. Default: 1000.
        pgd_steps: PGD's steps. Default: 10.
        seed: the images' draw. Default: 0.
        runs: the runs folder, for the names. Default: ``"runs"``.
        data: the dataset. Default: :func:`~archlab.load_fashion_mnist`.

    Returns:
        A :class:`Robustness` report: print it, ``.plot()`` it, ``.plot_flips()``.

    Example::

        >>> print(archlab.attack(["dnn", "cnn"], images=200))   # doctest: +SKIP
    """
    from archlab.analysis.faithfulness import stratified_indices
    from archlab.training.run import as_runs

    eps = sorted(float(e) for e in eps)
    if not eps or eps[0] < 0:
        raise ArchlabError("--eps: give radii ≥ 0, e.g. 0,0.05,0.1")
    if images < 1:
        raise ArchlabError(f"--images {images}: give at least 1")
    loaded = as_runs(models, runs)
    if data is None:
        from archlab.training.data import load_fashion_mnist

        data = load_fashion_mnist()
    chosen = stratified_indices(data.test_labels, min(images, len(data.test_labels)), seed)
    report = Robustness(eps, len(chosen), pgd_steps)
    for run in loaded:
        report.results.append(
            robustness_of_model(
                run.model,
                data.test_images[chosen],
                data.test_labels[chosen].long(),
                normalize=run.normalize,
                eps=eps,
                pgd_steps=pgd_steps,
                model_name=run.name,
                indices=chosen,
            )
        )
    return report
