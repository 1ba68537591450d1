"""How fragile is a trained model? Accuracy under FGSM and PGD attacks.

Both attacks move every pixel by at most ε (an L∞ ball) in the direction that raises the
cross-entropy of the model's logits for the true class, and keep each pixel within black
to white. ε is in **pixel units** ([0, 1], 1 = black to white) for every run: a run
trained on normalised inputs is attacked through its normalisation, so ε = 0.1 moves a
pixel by about 25 of 255 grey levels whatever the recipe (Madry's MNIST ε = 0.3 is in the
same units).

- FGSM (Goodfellow et al., 2015): one step, ``x' = clip(x + ε·sign(∇ₓ CE(f(x), y)))``.
- PGD (Madry et al., 2018): a uniform random start in the ε-ball (``random_start``), then
  ``steps`` steps of size α (default 2.5·ε/steps) along the gradient's sign, each
  projected back into the ball and the pixel box [0, 1]. A stronger attack: with enough
  steps its accuracy is at most FGSM's.

Both are written here directly (the tests check them against torchattacks); Captum's
``captum.robust`` attacks ascend −log of the output at the target by default, which is the
cross-entropy only for a model that outputs probabilities.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from archlab._bounds import check_float, check_int, check_seed
from archlab._report import Report
from archlab._table import Table
from archlab._text import plural
from archlab.analysis._settings import ATTACK_IMAGES as IMAGES
from archlab.analysis._settings import EPS, PGD_STEPS
from archlab.errors import ArchlabError
from archlab.training.data import CLASSES
from archlab.training.run import held_out_note

if TYPE_CHECKING:
    from archlab.training.run import Run

FLIPS = 2  # images shown per model
BATCH = 500
MAX_EPS = 1.0  # pixel units: ε = 1 can turn any image into any other
MAX_PGD_STEPS = 1000
MAX_IMAGES = 10_000  # Fashion-MNIST's test set
MASKING = (
    "every input gradient is zero, so gradient attacks cannot move it: its accuracy under "
    "attack is gradient masking, not robustness"
)


@dataclass
class Flip:
    """One test image that the smallest ε flips, with its saliency before and after."""

    index: int
    eps: float
    before: str  # predicted class on the clean image
    after: str  # on the attacked one
    image: torch.Tensor  # (H, W) pixels in [0, 1]
    adversarial: torch.Tensor
    map_before: torch.Tensor
    map_after: torch.Tensor


@dataclass
class ModelRobustness:
    model: str
    fgsm: list[float]  # accuracy per ε
    pgd: list[float]
    flips: list[Flip] = field(default_factory=list)
    masked: bool = False  # every input gradient was zero: the numbers say nothing


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
    random_start: bool = True
    step_size: float | None = None  # PGD's α as a multiple of ε; None: 2.5/steps
    held_out: int | None = None  # the class the runs never saw: not among the images

    def _parts(self) -> list[Table | str]:
        headers = ["model", "attack", *(f"ε={e:g}" for e in self.eps)]
        rows = []
        for r in self.results:
            rows.append([r.model, "FGSM", *(f"{100 * a:.1f}" for a in r.fgsm)])
            rows.append([r.model, f"PGD-{self.pgd_steps}", *(f"{100 * a:.1f}" for a in r.pgd)])
        alpha = self.step_size if self.step_size is not None else 2.5 / self.pgd_steps
        start = "a uniform random start in the ball" if self.random_start else "no random start"
        caption = (
            f"test accuracy (%) under attack, {plural(self.images, 'test image')}"
            f"{held_out_note(self.held_out)}; ε is an "
            f"L∞ radius in pixel units (0–1), loss: cross-entropy of the logits; PGD: {start}, "
            f"steps of {alpha:.3g}·ε"
        )
        parts: list[Table | str] = [Table(headers, rows, caption)]
        parts += [f"warning: {r.model}: {MASKING}" for r in self.results if r.masked]
        return parts

    def plot(self, ax=None):
        from archlab.viz.faithfulness import plot_robustness

        return plot_robustness(self, ax=ax)

    def plot_flips(self):
        from archlab.viz.faithfulness import plot_flips

        return plot_flips(self)


def check_attack_options(
    eps: Sequence[float],
    *,
    images: int = IMAGES,
    pgd_steps: int = PGD_STEPS,
    step_size: float | None = None,
    seed: int = 0,
) -> list[float]:
    """Check :func:`attack`'s options (the CLI calls it before any work).

    Args:
        eps: L∞ radii in pixel units, each from 0 to 1.
        images: from 1 to 10,000. Default: 1000.
        pgd_steps: from 1 to 1000. Default: 10.
        step_size: PGD's α as a multiple of ε, above 0 and at most 1 (None: 2.5/steps).
            Default: None.
        seed: from 0 to 2**63 − 1. Default: 0.

    Returns:
        The radii, sorted, without repeats.

    Example:

        >>> archlab.analysis.robustness.check_attack_options([0.1, 0, 0.1])
        [0.0, 0.1]
    """
    if isinstance(eps, str) or not isinstance(eps, Sequence) or not eps:
        raise ArchlabError(
            f"eps={eps!r}: give a list of radii from 0 to {MAX_EPS:g}, e.g. [0, 0.05, 0.1]",
            cli_message=f"--eps {eps}: give radii from 0 to {MAX_EPS:g}, e.g. 0,0.05,0.1",
        )
    radii = sorted({check_float("eps", e, 0.0, MAX_EPS) for e in eps})
    check_int("images", images, 1, MAX_IMAGES)
    check_int("pgd_steps", pgd_steps, 1, MAX_PGD_STEPS)
    if step_size is not None:
        check_float("step_size", step_size, 0.0, 1.0, low_open=True)
    check_seed(seed)
    return radii


def _model_input(pixels: torch.Tensor, normalize) -> torch.Tensor:
    """Pixels in [0, 1] → the model's input, ``(p − mean)/std`` (as torchattacks'
    ``set_normalization_used`` computes it)."""
    if normalize is None:
        return pixels
    mean = torch.tensor([float(normalize[0])], device=pixels.device).view(1, 1, 1, 1)
    std = torch.tensor([float(normalize[1])], device=pixels.device).view(1, 1, 1, 1)
    return (pixels - mean) / std


def _logits(model: nn.Module, pixels: torch.Tensor, normalize) -> torch.Tensor:
    """The model's logits for pixels in [0, 1], through its normalisation."""
    return model(_model_input(pixels, normalize))


def _no_gradient(what: str) -> ArchlabError:
    return ArchlabError(
        f"{what}: its output has no gradient with respect to the input (an argmax, a "
        "detach or torch.no_grad inside its forward?), so gradient attacks cannot run on it"
    )


def input_gradient(
    model: nn.Module, pixels: torch.Tensor, labels: torch.Tensor, normalize=None
) -> torch.Tensor:
    """The gradient of the mean cross-entropy of the logits with respect to ``pixels``
    ``(N, 1, H, W)``; one :class:`ArchlabError` when the output has no gradient."""
    p = pixels.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        logits = _logits(model, p, normalize)
        if (
            not isinstance(logits, torch.Tensor)
            or not logits.is_floating_point()
            or not logits.requires_grad
        ):
            raise _no_gradient(type(model).__name__)
        loss = F.cross_entropy(logits, labels)
        (grad,) = torch.autograd.grad(loss, p, allow_unused=True)
    if grad is None:
        raise _no_gradient(type(model).__name__)
    return grad


def fgsm(
    model: nn.Module, pixels: torch.Tensor, labels: torch.Tensor, eps: float, normalize=None
) -> torch.Tensor:
    """FGSM: one step of size ``eps`` along the sign of the cross-entropy's gradient,
    clipped to [0, 1].

    Args:
        model: the classifier, in eval mode.
        pixels: the images in [0, 1], ``(N, 1, H, W)``.
        labels: the true classes ``(N,)``.
        eps: the L∞ radius in pixel units.
        normalize: the ``(mean, std)`` the model was trained with. Default: none.

    Returns:
        The attacked pixels ``(N, 1, H, W)``.
    """
    if eps == 0:
        return pixels.detach().clone()
    grad = input_gradient(model, pixels, labels, normalize)
    return torch.clamp(pixels.detach() + eps * grad.sign(), min=0, max=1)


def pgd(
    model: nn.Module,
    pixels: torch.Tensor,
    labels: torch.Tensor,
    eps: float,
    steps: int = PGD_STEPS,
    *,
    step_size: float | None = None,
    random_start: bool = True,
    generator: torch.Generator | None = None,
    normalize=None,
) -> torch.Tensor:
    """PGD as Madry et al. define it: a uniform random start in the ε-ball, then ``steps``
    steps of ``step_size`` along the gradient's sign, each projected back into the ball
    and into [0, 1].

    Args:
        model: the classifier, in eval mode.
        pixels: the images in [0, 1], ``(N, 1, H, W)``.
        labels: the true classes ``(N,)``.
        eps: the L∞ radius in pixel units.
        steps: the number of steps. Default: 10.
        step_size: α in pixel units. Default: 2.5·eps/steps.
        random_start: start from a uniform random point of the ball. Default: True.
        generator: draws the random start (a CPU generator). Default: torch's global one.
        normalize: the ``(mean, std)`` the model was trained with. Default: none.

    Returns:
        The attacked pixels ``(N, 1, H, W)``.
    """
    if eps == 0:
        return pixels.detach().clone()
    alpha = 2.5 * eps / steps if step_size is None else step_size
    clean = pixels.detach()
    adv = clean.clone()
    if random_start:
        noise = torch.empty(adv.shape, dtype=adv.dtype).uniform_(-eps, eps, generator=generator)
        adv = torch.clamp(adv + noise.to(adv.device), min=0, max=1)
    for _ in range(steps):
        grad = input_gradient(model, adv, labels, normalize)
        adv = adv + alpha * grad.sign()
        delta = torch.clamp(adv - clean, min=-eps, max=eps)
        adv = torch.clamp(clean + delta, min=0, max=1)
    return adv


def robustness_of_model(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    *,
    normalize=None,
    eps: Sequence[float] = EPS,
    pgd_steps: int = PGD_STEPS,
    step_size: float | None = None,
    random_start: bool = True,
    seed: int = 0,
    flips: int = FLIPS,
    model_name: str | None = None,
    indices: torch.Tensor | None = None,
) -> ModelRobustness:
    """Accuracy per ε under FGSM and PGD for a model in hand, on uint8 ``images``
    ``(N, H, W)`` with their ``labels`` ``(N,)``; and the ``flips`` images that FGSM flips
    at the smallest ε.

    Args:
        model: the classifier (its modes are restored afterwards).
        images: uint8 pixels ``(N, H, W)``.
        labels: the true classes, int64 ``(N,)``.
        normalize: the ``(mean, std)`` it was trained with. Default: none.
        eps: L∞ radii in pixel units. Default: 0 to 0.3.
        pgd_steps: PGD's steps. Default: 10.
        step_size: PGD's α as a multiple of ε. Default: 2.5/pgd_steps.
        random_start: PGD starts from a uniform random point of the ball. Default: True.
        seed: PGD's random starts. Default: 0.
        flips: how many first-flipped images to keep. Default: 2.
        model_name: for the table. Default: the class name.
        indices: the images' test-set indices, for the flips' captions. Default: 0…N−1.

    Returns:
        A :class:`ModelRobustness` (accuracies as shares, 0–1).
    """
    from archlab.analysis._attribution import _prepared
    from archlab.training.predict import model_device

    eps = check_attack_options(eps, pgd_steps=pgd_steps, step_size=step_size, seed=seed)
    name = model_name or type(model).__name__
    device = model_device(model)
    x = (images.unsqueeze(1).float() / 255).to(device)  # pixels in [0, 1]
    labels = labels.to(device)
    generator = torch.Generator().manual_seed(seed)
    result = ModelRobustness(name, [], [])
    flipped_at = torch.full((len(x),), math.inf, dtype=torch.float64)  # ε as given
    first_adv: dict[int, torch.Tensor] = {}
    with _prepared(model):
        try:
            grad = input_gradient(model, x[:BATCH], labels[:BATCH], normalize)
        except ArchlabError as exc:
            raise _no_gradient(name) from exc
        if not bool(grad.any()):
            result.masked = True
            warnings.warn(f"{name}: {MASKING}", RuntimeWarning, stacklevel=2)
        with torch.no_grad():  # an image wrong from the start is never a "flip"
            right = torch.cat(
                [
                    _logits(model, x[i : i + BATCH], normalize).argmax(1) == labels[i : i + BATCH]
                    for i in range(0, len(x), BATCH)
                ]
            )
        for e in eps:
            fgsm_right = pgd_right = 0
            for i in range(0, len(x), BATCH):
                xi, yi = x[i : i + BATCH], labels[i : i + BATCH]
                adv = fgsm(model, xi, yi, e, normalize)
                with torch.no_grad():
                    wrong = _logits(model, adv, normalize).argmax(1) != yi
                fgsm_right += int((~wrong).sum())
                for j in wrong.nonzero().flatten().tolist():
                    if right[i + j] and flipped_at[i + j] == math.inf:
                        flipped_at[i + j] = e
                        first_adv[i + j] = adv[j].detach()
                adv = pgd(
                    model,
                    xi,
                    yi,
                    e,
                    pgd_steps,
                    step_size=None if step_size is None else step_size * e,
                    random_start=random_start,
                    generator=generator,
                    normalize=normalize,
                )
                with torch.no_grad():
                    pgd_right += int((_logits(model, adv, normalize).argmax(1) == yi).sum())
            result.fgsm.append(fgsm_right / len(x))
            result.pgd.append(pgd_right / len(x))
        # the images right when clean that flip at the smallest ε
        candidates = [k for k in flipped_at.argsort().tolist() if flipped_at[k] < math.inf]
        for k in candidates[:flips]:
            index = int(indices[k]) if indices is not None else k
            flip = _flip(model, index, x[k], first_adv[k], float(flipped_at[k]), normalize)
            result.flips.append(flip)
    return result


def _flip(model, index: int, clean, adv, eps: float, normalize) -> Flip:
    """The clean and attacked image (pixels) with the saliency of the clean prediction
    on each, computed on the model's own input."""
    from archlab.analysis._attribution import attribute_batch

    pair_in = _model_input(torch.stack([clean, adv]), normalize)
    with torch.no_grad():
        preds = model(pair_in).argmax(1)
    black = float(_model_input(torch.zeros(1, 1, 1, 1), normalize))
    maps = attribute_batch(
        model, pair_in.clone().requires_grad_(True), preds[:1].repeat(2), "saliency", black
    ).map
    return Flip(
        index,
        eps,
        CLASSES[int(preds[0])],
        CLASSES[int(preds[1])],
        clean[0].cpu(),
        adv[0].cpu(),
        maps[0].cpu(),
        maps[1].cpu(),
    )


def loss_rises(model: nn.Module, pixels, labels, eps: float, normalize=None) -> tuple[float, float]:
    """The cross-entropy before and after one FGSM step (a check: it must rise)."""
    with torch.no_grad():
        before = float(F.cross_entropy(_logits(model, pixels, normalize), labels))
    adv = fgsm(model, pixels, labels, eps, normalize)
    with torch.no_grad():
        after = float(F.cross_entropy(_logits(model, adv, normalize), labels))
    return before, after


def attack(
    models: Sequence | str | Run = ("dnn", "cnn"),
    *,
    eps: Sequence[float] = EPS,
    images: int = IMAGES,
    pgd_steps: int = PGD_STEPS,
    step_size: float | None = None,
    random_start: bool = True,
    seed: int = 0,
    runs: str | os.PathLike = "runs",
    data=None,
) -> Robustness:
    """Test accuracy of trained runs under FGSM and PGD, for each ε.

    Args:
        models: :class:`~archlab.Run` objects, specs, groups (``"zoo"``) or run folder
            names (one run alone is fine). Default: the lecture's two.
        eps: L∞ radii in pixel units (0–1, whatever the run's normalisation), each at
            most 1. Default: 0 to 0.3.
        images: test images, stratified by class with a fixed seed (1 to 10,000).
            Default: 1000.
        pgd_steps: PGD's steps (1 to 1000). Default: 10.
        step_size: PGD's step α as a multiple of ε (0 < α ≤ 1). Default: 2.5/pgd_steps.
        random_start: PGD starts from a uniform random point of the ε-ball (Madry et al.).
            Default: True.
        seed: the images' draw and PGD's random starts. Default: 0.
        runs: the runs folder, for the names. Default: ``"runs"``.
        data: the dataset. Default: :func:`~archlab.load_fashion_mnist`.

    Returns:
        A :class:`Robustness` report: print it, ``.plot()`` it, ``.plot_flips()``.

    Example::

        >>> print(archlab.attack(["dnn", "cnn"], images=200))   # doctest: +SKIP
    """
    from archlab.analysis.faithfulness import stratified_indices
    from archlab.training.run import as_runs, shared_data

    eps = check_attack_options(
        eps, images=images, pgd_steps=pgd_steps, step_size=step_size, seed=seed
    )
    loaded = as_runs(models, runs)
    if data is None:
        from archlab.training.data import load_fashion_mnist

        data = load_fashion_mnist()
    data = shared_data(loaded, data)  # a held-out class is not attacked: never learned
    chosen = stratified_indices(data.test_labels, min(images, len(data.test_labels)), seed)
    report = Robustness(eps, len(chosen), pgd_steps, [], random_start, step_size)
    report.held_out = loaded[0].held_out if loaded else None
    for run in loaded:
        report.results.append(
            robustness_of_model(
                run.model,
                data.test_images[chosen],
                data.test_labels[chosen].long(),
                normalize=run.normalize,
                eps=eps,
                pgd_steps=pgd_steps,
                step_size=step_size,
                random_start=random_start,
                seed=seed,
                model_name=run.name,
                indices=chosen,
            )
        )
    return report
