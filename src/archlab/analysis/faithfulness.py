"""Can the map be trusted? Deletion curves, ROAD, Captum's metrics and control maps.

A map is *faithful* when the pixels it ranks highest are the ones the model's score
depends on. Measured here, for every method of :mod:`archlab.analysis.explain` and for
three control maps that know nothing about the model (a random map, a Sobel edge map of
the image, a constant map), on the same images with the same metric:

- **deletion curves**: remove the pixels in the map's order, ``step`` at a time (28 by
  default, so 29 forward passes per curve at 28×28), and record the probability of the
  explained class. MoRF (most relevant first) should fall fast: a low area under the curve
  (AUC) is good. LeRF (least relevant first) should stay high: a high AUC is good.
  Insertion (add the most relevant pixels to an empty image) needs no pass of its own:
  inserting the top k pixels leaves the same image as deleting the other 784 − k, so the
  insertion curve is the LeRF curve read backwards, with the same AUC.
- **the fill** says what a removed pixel becomes: ``zero`` (black, pixel 0: the classic,
  and on Fashion-MNIST's black background a deletion that traces the silhouette),
  ``blur`` (the image blurred, Gaussian σ = 2 pixels) or ``road`` (Rong et al., 2022:
  noisy linear imputation, each removed pixel the 1/6 edge, 1/12 diagonal weighted mean of
  its neighbours, solved jointly, plus N(0, 0.01²) noise in the model's input units, so
  the shape of the hole does not give the class away).
- **infidelity** (Captum; Yeh et al., 2019): the mean squared gap between ``Iᵀ·map`` and the
  score's drop for Gaussian perturbations ``I`` (σ = 0.2 in input units), the map rescaled
  by its best factor first (``normalize=True``). Lower is better.
- **max-sensitivity** (Captum): the largest relative change of the map within an L∞ ball
  of radius 0.02 (10 samples). Lower is steadier.
- **sanity ρ**: Spearman ρ of |map| against the map of the fully randomised model
  (Adebayo et al., 2018; the last step of :func:`archlab.explain`'s sanity check). Near 1
  means the map does not depend on what the model learned.

Only the ranking matters: a map is judged against the controls, never in absolute terms.
"""

from __future__ import annotations

import copy
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from archlab._bounds import check_int, check_seed
from archlab._report import Report
from archlab._table import Table
from archlab._text import plural
from archlab.analysis._settings import DETAIL_IMAGES, FILLS, STEP
from archlab.analysis._settings import FAITHFULNESS_IMAGES as IMAGES
from archlab.errors import ArchlabError

CONTROLS = ("random", "sobel", "constant")
CHUNK = 16  # images per batch of perturbed inputs: 16 × 2 curves × 29 steps = 928
BLUR_SIGMA = 2.0
ROAD_NOISE = 0.01  # σ of the imputation noise, in the model's input units
ROAD_ITERATIONS = 40  # conjugate-gradient steps; the 28×28 system converges well within
INFIDELITY_NOISE = 0.2
SENSITIVITY_RADIUS = 0.02
N_PERTURB = 10


@dataclass
class Row:
    """One map's scores over the images: ``morf``/``lerf`` are AUCs (mean, half-width of
    the 95 % interval); the others means over the detail images (None where not computed)."""

    name: str
    kind: str  # "method" or "control"
    settings: str
    morf: tuple[float, float]
    lerf: tuple[float, float]
    infidelity: float | None = None
    sensitivity: float | None = None
    sanity_rho: float | None = None
    morf_curve: torch.Tensor | None = None  # (steps + 1,), mean over images
    lerf_curve: torch.Tensor | None = None

    @property
    def gap(self) -> float:
        """LeRF − MoRF AUC: larger when the map separates relevant from irrelevant pixels."""
        return self.lerf[0] - self.morf[0]


@dataclass
class Faithfulness(Report):
    """The result of :func:`faithfulness`: one row per method and control map.

    ``str()`` is the table (methods as rows, metrics as columns); ``.plot()`` draws the
    mean MoRF and LeRF curves (on a given ``ax``, the MoRF curves alone).

    Example::

        >>> report = archlab.faithfulness("cnn", images=50, fill="road")  # doctest: +SKIP
        >>> report.beats_random()["ig"]                                    # doctest: +SKIP
        ['MoRF', 'LeRF', 'gap']
    """

    _shows_figure = True

    model: str
    fill: str
    images: int
    detail_images: int
    step: int
    fractions: torch.Tensor  # (steps + 1,) share of the pixels removed at each point
    rows: list[Row] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    gradcam_note: str = ""

    def row(self, name: str) -> Row:
        return next(r for r in self.rows if r.name == name)

    def beats_random(self) -> dict[str, list[str]]:
        """For each method, the metrics on which it does better than the random control
        (MoRF lower, LeRF higher, gap larger, infidelity lower)."""
        rnd = self.row("random")
        out = {}
        for r in self.rows:
            if r.kind != "method":
                continue
            wins = []
            if r.morf[0] + r.morf[1] < rnd.morf[0] - rnd.morf[1]:
                wins.append("MoRF")
            if r.lerf[0] - r.lerf[1] > rnd.lerf[0] + rnd.lerf[1]:
                wins.append("LeRF")
            if r.gap > rnd.gap:
                wins.append("gap")
            if None not in (r.infidelity, rnd.infidelity) and r.infidelity < rnd.infidelity:
                wins.append("infidelity")
            out[r.name] = wins
        return out

    def _parts(self) -> list[Table | str]:
        def opt(v, fmt):
            return "-" if v is None else format(v, fmt)

        def ci(pair):  # one image has no interval
            return f"{pair[0]:.3f}" + ("" if math.isnan(pair[1]) else f" ± {pair[1]:.3f}")

        rows = [
            [
                r.name + (" (control)" if r.kind == "control" else ""),
                ci(r.morf),
                ci(r.lerf),
                f"{r.gap:+.3f}",
                opt(r.infidelity, ".3g"),
                opt(r.sensitivity, ".3f"),
                opt(r.sanity_rho, "+.2f"),
            ]
            for r in self.rows
        ]
        detail = (
            f"; infidelity, max-sensitivity and sanity ρ over the first "
            f"{plural(self.detail_images, 'image')}"
            if self.detail_images
            else ""
        )
        several = self.images > 1  # one image: no class strata, no interval
        caption = (
            f"{self.model}: faithfulness over {plural(self.images, 'test image')}"
            f"{' (stratified by class)' if several else ''}, "
            f"{plural(self.step, 'pixel a step', 'pixels a step')}, fill: {self.fill}; "
            f"AUC of the explained class's probability{', mean ± 95 % interval' if several else ''}"
            f"{detail}"
        )
        headers = [
            "map",
            "MoRF AUC ↓",
            "LeRF = insertion AUC ↑",
            "gap ↑",
            "infidelity ↓",
            "max-sens ↓",
            "sanity ρ ↓",
        ]
        wins = self.beats_random()
        verdict = "\n".join(
            f"  {m}: beats the random map on {', '.join(w) if w else 'nothing'}"
            for m, w in wins.items()
        )
        notes = [
            "only the ranking against the controls counts; blurry maps are favoured by "
            "deletion; a faithful map shows what the model uses, not what causes the class",
            *(f"{m}: skipped, {why}" for m, why in self.skipped.items()),
        ]
        if self.gradcam_note:
            notes.append(self.gradcam_note)
        return [Table(headers, rows, caption), verdict, "\n".join(notes)]

    def plot(self, ax=None):
        from archlab.viz.faithfulness import plot_faithfulness

        return plot_faithfulness(self, ax=ax)


MAX_IMAGES = 10_000  # Fashion-MNIST's test set


def check_faithfulness_options(
    *,
    images: int = IMAGES,
    fill: str = "zero",
    methods: Sequence[str] | str = "all",
    step: int = STEP,
    detail: int = DETAIL_IMAGES,
    seed: int = 0,
    pixels: int = 28 * 28,
) -> list[str]:
    """Check :func:`faithfulness`'s options (the CLI calls it before any work).

    Args:
        images: from 1 to 10,000. Default: 300.
        fill: one of ``FILLS``. Default: zero.
        methods: names from ``METHODS`` or ``"all"``. Default: all.
        step: pixels per step, from 1 to ``pixels``. Default: 28.
        detail: images for the detail metrics, from 0 to 10,000. Default: 32.
        seed: from 0 to 2**63 − 1. Default: 0.
        pixels: pixels per image. Default: 784.

    Returns:
        The methods, checked.

    Example:

        >>> archlab.analysis.faithfulness.check_faithfulness_options(methods="ig,saliency")
        ['ig', 'saliency']
    """
    from archlab.analysis._attribution import check_methods

    check_int("images", images, 1, MAX_IMAGES)
    check_int("step", step, 1, pixels)
    check_int("detail", detail, 0, MAX_IMAGES)
    check_seed(seed)
    if fill not in FILLS:
        raise ArchlabError(
            f"fill={fill!r}: choose from {', '.join(FILLS)}",
            cli_message=f"--fill {fill!r}: choose from {', '.join(FILLS)}",
        )
    return check_methods(methods)


# ---------------------------------------------------------------------------- the images


def stratified_indices(labels: torch.Tensor, n: int, seed: int = 0) -> torch.Tensor:
    """``n`` indices drawn with a fixed seed, as evenly over the classes as ``n`` allows
    (classes in order take the remainder), sorted."""
    g = torch.Generator().manual_seed(seed)
    classes = sorted(set(labels.tolist()))
    per, extra = divmod(n, len(classes))
    chosen = []
    for i, c in enumerate(classes):
        members = (labels == c).nonzero().flatten()
        take = min(len(members), per + (i < extra))
        chosen.append(members[torch.randperm(len(members), generator=g)[:take]])
    return torch.cat(chosen).sort().values


# ----------------------------------------------------------------------------- the orders


def rank_pixels(maps: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """The order of each map's pixels, highest first: ``(N, H, W)`` → ``(N, H·W)`` indices.
    Ties are broken at random (so a constant map gives a random order)."""
    flat = maps.reshape(len(maps), -1).float()
    shuffle = torch.stack([torch.randperm(flat.shape[1], generator=generator) for _ in flat])
    order = torch.sort(flat.gather(1, shuffle), dim=1, descending=True, stable=True).indices
    return shuffle.gather(1, order)


def control_maps(name: str, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """A control map ``(N, H, W)`` for inputs ``(N, 1, H, W)``: ``random`` (uniform noise),
    ``sobel`` (the image's edge magnitude) or ``constant`` (ones)."""
    if name == "random":
        return torch.rand(x.shape[0], *x.shape[2:], generator=generator)
    if name == "constant":
        return torch.ones(x.shape[0], *x.shape[2:])
    if name == "sobel":
        gx = torch.tensor([[-1.0, 0, 1], [-2, 0, 2], [-1, 0, 1]]).view(1, 1, 3, 3)
        padded = F.pad(x.detach(), (1, 1, 1, 1), mode="replicate")
        dx, dy = F.conv2d(padded, gx), F.conv2d(padded, gx.transpose(2, 3))
        return (dx.square() + dy.square()).sqrt()[:, 0]
    raise ArchlabError(f"unknown control map {name!r}; choose from {', '.join(CONTROLS)}")


# ------------------------------------------------------------------------------ the fills


def blur(x: torch.Tensor, black: float, sigma: float = BLUR_SIGMA) -> torch.Tensor:
    """A Gaussian blur of ``(N, 1, H, W)``, the border padded with black."""
    radius = math.ceil(2 * sigma)
    t = torch.arange(-radius, radius + 1, dtype=x.dtype)
    k = torch.exp(-(t**2) / (2 * sigma**2))
    k = k / k.sum()
    padded = F.pad(x, (radius,) * 4, value=black)
    out = F.conv2d(padded, k.view(1, 1, 1, -1))
    return F.conv2d(out, k.view(1, 1, -1, 1))


# the neighbour weights as the paper gives them (road_impute sums shifted slices; the
# tests check it against this kernel)
_ROAD_KERNEL = torch.tensor(
    [[1 / 12, 1 / 6, 1 / 12], [1 / 6, 0.0, 1 / 6], [1 / 12, 1 / 6, 1 / 12]]
).view(1, 1, 3, 3)


def road_impute(
    x: torch.Tensor,
    removed: torch.Tensor,
    black: float,
    generator: torch.Generator | None = None,
    noise: float = ROAD_NOISE,
    iterations: int = ROAD_ITERATIONS,
) -> torch.Tensor:
    """ROAD's noisy linear imputation (Rong et al., 2022) of ``(N, 1, H, W)`` inputs.

    Every removed pixel (``removed``, bool, same shape) is set to the weighted mean of its
    in-image neighbours (1/6 for the 4 edge neighbours, 1/12 for the 4 diagonal ones),
    known or imputed, all solved at once: the system ``(D − W)_rr v = W_rk x_k`` of a
    weighted graph Laplacian, symmetric positive definite where a hole touches a known
    pixel, by batched conjugate gradients. A hole that touches no known pixel (everything
    removed) stays black. Then N(0, ``noise``²) is added to the removed pixels.
    """
    m = removed.to(x.dtype)
    known = 1 - m

    def w(v):  # W·v: the weighted sum of the in-image neighbours (zero outside the image)
        # shifted slices, not a 1-channel conv2d: 5× faster on a CPU, the same sums
        p = F.pad(v, (1, 1, 1, 1))
        edge = p[..., :-2, 1:-1] + p[..., 2:, 1:-1] + p[..., 1:-1, :-2] + p[..., 1:-1, 2:]
        diag = p[..., :-2, :-2] + p[..., :-2, 2:] + p[..., 2:, :-2] + p[..., 2:, 2:]
        return edge / 6 + diag / 12

    degree = w(torch.ones_like(x[:1]))

    def a(v):
        return m * (degree * v - w(m * v))

    b = m * w(known * x)
    v = m * black
    r = b - a(v)
    p = r.clone()
    rr = (r * r).sum((1, 2, 3), keepdim=True)
    tiny = 1e-20
    for _ in range(iterations):
        ap = a(p)
        alpha = rr / (p * ap).sum((1, 2, 3), keepdim=True).clamp_min(tiny)
        v = v + alpha * p
        r = r - alpha * ap
        rr_new = (r * r).sum((1, 2, 3), keepdim=True)
        p = r + (rr_new / rr.clamp_min(tiny)) * p
        rr = rr_new
    # nothing known: the system is singular (any constant solves it); black, as promised
    v = torch.where(known.sum((1, 2, 3), keepdim=True) == 0, m * black, v)
    if noise:
        v = v + m * noise * torch.randn(x.shape, generator=generator, dtype=x.dtype)
    return known * x + m * v


# ----------------------------------------------------------------------------- the curves


def deletion_curves(
    model: nn.Module,
    x: torch.Tensor,
    targets: torch.Tensor,
    order: torch.Tensor,
    *,
    fill: str = "zero",
    black: float = 0.0,
    step: int = STEP,
    generator: torch.Generator | None = None,
    channels_last: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """MoRF and LeRF deletion curves: the probability of ``targets`` as the pixels are
    removed in ``order`` (most relevant first) and in reverse, ``step`` at a time.

    Args:
        model: the classifier, in eval mode.
        x: model inputs ``(N, 1, H, W)``.
        targets: the explained class of each image ``(N,)``.
        order: pixel indices, most relevant first ``(N, H·W)`` (:func:`rank_pixels`).
        fill: ``zero`` (black), ``blur`` or ``road``. Default: zero.
        black: a black pixel in the model's input units. Default: 0.
        step: pixels per step. Default: 28.
        generator: for ROAD's noise. Default: torch's global generator.
        channels_last: feed the model NHWC inputs (inside
            :func:`~archlab.training.predict.inference_layout`). Default: False.

    Returns:
        ``(morf, lerf)``, each ``(N, steps + 1)``: point 0 is the image itself, the last
        point the image with every pixel removed.
    """
    n, _, h, wd = x.shape
    pixels = h * wd
    check_faithfulness_options(fill=fill, step=step, pixels=pixels)
    counts = removal_counts(pixels, step)
    rank = torch.empty_like(order)
    rank.scatter_(1, order, torch.arange(pixels).expand(n, -1))  # rank[pixel] = position
    k = counts.view(1, -1, 1)
    morf = rank.unsqueeze(1) < k  # (N, S, P): the top k removed
    lerf = rank.unsqueeze(1) >= pixels - k  # the bottom k removed
    removed = torch.stack([morf, lerf], 1).view(-1, 1, h, wd)  # (N·2·S, 1, H, W)
    base = x.detach().unsqueeze(1).expand(n, 2 * len(counts), 1, h, wd).reshape(-1, 1, h, wd)
    if fill == "zero":
        inputs = torch.where(removed, torch.full_like(base, black), base)
    elif fill == "blur":
        blurred = blur(x.detach(), black).repeat_interleave(2 * len(counts), 0)
        inputs = torch.where(removed, blurred, base)
    else:
        inputs = road_impute(base, removed, black, generator)
    if channels_last:
        inputs = inputs.contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        probs = F.softmax(model(inputs), dim=1)
    p = probs.view(n, 2 * len(counts), -1).gather(
        2, targets.view(n, 1, 1).expand(n, 2 * len(counts), 1)
    )[..., 0]
    return p[:, : len(counts)], p[:, len(counts) :]


def removal_counts(pixels: int, step: int) -> torch.Tensor:
    """How many pixels are removed at each point of a curve: 0, step, 2·step, … and the
    last point ``pixels`` (a shorter last step when ``step`` does not divide it).

    Example:

        >>> archlab.analysis.faithfulness.removal_counts(784, 100).tolist()[-3:]
        [600, 700, 784]
    """
    counts = torch.arange(0, pixels + step, step).clamp_max(pixels)
    return torch.unique_consecutive(counts)


def auc(curves: torch.Tensor, fractions: torch.Tensor) -> torch.Tensor:
    """Area under each curve ``(N, S)`` over the share removed ``fractions`` ``(S,)``,
    0 → 1, by trapezoids on the real x (the last step may be shorter than the others)."""
    return torch.trapezoid(curves.double(), fractions.double().to(curves.device), dim=1)


def mean_ci(values: torch.Tensor) -> tuple[float, float]:
    """Mean and half-width of its 95 % normal interval."""
    values = values.double()
    if len(values) < 2:
        return float(values.mean()), float("nan")
    return float(values.mean()), float(1.96 * values.std() / math.sqrt(len(values)))


# ------------------------------------------------------------------------------ the table


def _fully_randomised(model: nn.Module) -> nn.Module:
    from archlab.analysis._attribution import _randomisation_steps

    randomised = copy.deepcopy(model)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        for _name, reinitialise in _randomisation_steps(randomised):
            reinitialise()
    return randomised.eval()


def _maps_in_chunks(model, x, targets, method, black, layer):
    """One method's maps for all images, CHUNK·4 at a time (IG and SmoothGrad multiply the
    batch inside), or the reason the method does not apply."""
    from archlab.analysis._attribution import attribute_batch

    maps, first = [], None
    for i in range(0, len(x), CHUNK * 4):
        xi = x[i : i + CHUNK * 4].clone().requires_grad_(True)
        result = attribute_batch(model, xi, targets[i : i + CHUNK * 4], method, black, layer)
        if isinstance(result, str):
            return result
        first = first or result
        maps.append(result.map)
    first.map = torch.cat(maps)
    return first


def faithfulness_of_model(
    model: nn.Module,
    images: torch.Tensor,
    *,
    normalize: tuple[float, float] | None = None,
    methods: Sequence[str] | str = "all",
    controls: Sequence[str] = CONTROLS,
    fill: str = "zero",
    step: int = STEP,
    detail: int = DETAIL_IMAGES,
    compare_last_conv: bool = True,
    seed: int = 0,
    model_name: str | None = None,
    layer: str | None = None,
) -> Faithfulness:
    """The faithfulness table of a model in hand, on uint8 ``images`` ``(N, H, W)``
    (:func:`faithfulness` does it for a trained run on stratified test images).

    Args:
        model: the classifier (left as it was).
        images: uint8 pixels ``(N, H, W)``.
        normalize: the (mean, std) it was trained with. Default: none.
        methods: names from ``archlab.analysis.explain.METHODS`` or ``"all"``. Default: all.
        controls: control maps from ``CONTROLS``. Default: all three.
        fill: ``zero``, ``blur`` or ``road``. Default: zero.
        step: pixels removed per step. Default: 28.
        detail: images for infidelity, max-sensitivity and sanity ρ (0: skip them).
            Default: 32.
        compare_last_conv: add Grad-CAM on the last registered convolution (the old
            default) as a row when it differs from the default layer. Default: True.
        seed: for the random control, the tie-breaking and ROAD's noise. Default: 0.
        model_name: for the caption. Default: the class name.
        layer: Grad-CAM's layer. Default: :func:`~archlab.analysis.explain.gradcam_layer`.

    Returns:
        A :class:`Faithfulness` report.
    """
    from archlab.analysis._attribution import (
        _prepared,
        check_gradient,
        gradcam_layer,
        last_conv_layer,
    )
    from archlab.training.predict import to_input

    if not len(images):
        raise ArchlabError("faithfulness needs at least one image")
    chosen = check_faithfulness_options(
        images=len(images),
        fill=fill,
        methods=methods,
        step=step,
        detail=detail,
        seed=seed,
        pixels=images[0].numel(),
    )
    if isinstance(controls, str) or not all(c in CONTROLS for c in controls):
        raise ArchlabError(
            f"controls={controls!r}: give a list of control maps from {', '.join(CONTROLS)}"
        )
    x = to_input(images, normalize)
    black = float(to_input(torch.zeros(1, 1, 1, dtype=torch.uint8), normalize).item())
    g = torch.Generator().manual_seed(seed)
    counts = removal_counts(x[0].numel(), step)
    report = Faithfulness(
        model_name or type(model).__name__,
        fill,
        len(images),
        min(detail, len(images)),
        step,
        counts.double() / x[0].numel(),
    )
    with _prepared(model):
        check_gradient(model, x, report.model, chosen)
        with torch.no_grad():
            targets = model(x).argmax(1)
        entries: list[tuple[str, str, str | None]] = [(m, "method", layer) for m in chosen]
        if "gradcam" in chosen and compare_last_conv and layer is None:
            new, old = gradcam_layer(model, tuple(x.shape[1:])), last_conv_layer(model)
            if new is not None and old is not None and new[0] != old[0]:
                entries.insert(
                    chosen.index("gradcam") + 1, (f"gradcam@{old[0]}", "method", "last-conv")
                )
                report.gradcam_note = (
                    f"gradcam uses {new[0]} ({new[1]}); gradcam@{old[0]} is the last "
                    "convolution registered, before its normalisation (the old default)"
                )
        entries += [(c, "control", None) for c in controls]
        randomised = _fully_randomised(model) if detail else None
        for name, kind, layer in entries:
            method = name.split("@")[0]
            if kind == "method":
                result = _maps_in_chunks(model, x, targets, method, black, layer)
                if isinstance(result, str):
                    report.skipped[name] = result
                    continue
                maps, settings = result.map, f"{result.title}: {result.settings}"
            else:
                maps, settings = control_maps(name, x, g), f"control: {name}"
            row = _score(model, x, targets, maps, fill, black, step, g)
            row.name, row.kind, row.settings = name, kind, settings
            if detail:
                d = slice(0, min(detail, len(x)))
                explain_fn = _explanation_function(model, method, kind, black, layer, g)
                row.infidelity = _infidelity(model, x[d], targets[d], maps[d])
                row.sensitivity = _sensitivity(explain_fn, x[d], targets[d])
                if kind == "method":
                    with _prepared(randomised):
                        rnd = _maps_in_chunks(randomised, x[d], targets[d], method, black, layer)
                    row.sanity_rho = float(
                        torch.tensor(
                            [
                                _spearman(a.abs(), b.abs())
                                for a, b in zip(maps[d], rnd.map, strict=True)
                            ]
                        ).mean()
                    )
            report.rows.append(row)
    return report


def _spearman(a, b):
    from archlab.analysis._attribution import spearman

    return spearman(a, b)


def _score(model, x, targets, maps, fill, black, step, g) -> Row:
    from archlab.training.predict import inference_layout

    order = rank_pixels(maps, g)
    morfs, lerfs = [], []
    with inference_layout(model, x[:2]) as nhwc:
        for i in range(0, len(x), CHUNK):
            s = slice(i, i + CHUNK)
            m, le = deletion_curves(
                model,
                x[s],
                targets[s],
                order[s],
                fill=fill,
                black=black,
                step=step,
                generator=g,
                channels_last=nhwc,
            )
            morfs.append(m)
            lerfs.append(le)
    morf, lerf = torch.cat(morfs), torch.cat(lerfs)
    fractions = removal_counts(x[0].numel(), step).double() / x[0].numel()
    return Row(
        "",
        "",
        "",
        mean_ci(auc(morf, fractions)),
        mean_ci(auc(lerf, fractions)),
        morf_curve=morf.mean(0),
        lerf_curve=lerf.mean(0),
    )


def _explanation_function(model, method, kind, black, layer, g):
    """``f(inputs, target) -> maps (N, 1, H, W)`` for Captum's sensitivity_max."""
    from archlab.analysis._attribution import attribute_batch

    def explain_fn(inputs, target):
        if isinstance(inputs, tuple):  # Captum passes its inputs as a tuple
            inputs = inputs[0]
        if kind == "control":
            return (control_maps(method, inputs, g).unsqueeze(1),)
        with torch.enable_grad():  # Captum calls it under no_grad; a tuple, as it iterates
            xi = inputs.detach().clone().requires_grad_(True)
            return (attribute_batch(model, xi, target, method, black, layer).map.unsqueeze(1),)

    return explain_fn


def _infidelity(model, x, targets, maps) -> float:
    from captum.metrics import infidelity

    def perturb(inputs):
        noise = INFIDELITY_NOISE * torch.randn_like(inputs)
        return noise, inputs - noise

    with torch.random.fork_rng():
        torch.manual_seed(0)
        values = infidelity(
            model,
            perturb,
            x.detach(),
            maps.unsqueeze(1).to(x.dtype),
            target=targets,
            n_perturb_samples=N_PERTURB,
            normalize=True,
        )
    return float(values.mean())


def _sensitivity(explain_fn, x, targets) -> float:
    from captum.metrics import sensitivity_max

    with torch.random.fork_rng():
        torch.manual_seed(0)
        values = sensitivity_max(
            explain_fn,
            x.detach(),
            perturb_radius=SENSITIVITY_RADIUS,
            n_perturb_samples=N_PERTURB,
            target=targets,
            max_examples_per_batch=min(CHUNK, len(x)) * N_PERTURB,
        )
    return float(values.mean())


def faithfulness(
    run,
    *,
    images: int = IMAGES,
    fill: str = "zero",
    methods: Sequence[str] | str = "all",
    step: int = STEP,
    detail: int = DETAIL_IMAGES,
    seed: int = 0,
    runs: str | os.PathLike = "runs",
    data=None,
) -> Faithfulness:
    """How faithful each attribution method is for a trained run, against control maps.

    Args:
        run: a :class:`~archlab.Run`, or a spec or run folder's name to load from ``runs``.
        images: how many test images, stratified by class with a fixed seed. Default: 300.
        fill: what a removed pixel becomes: ``zero``, ``blur`` or ``road``. Default: zero.
        methods: names from ``archlab.analysis.explain.METHODS`` or ``"all"``. Default: all.
        step: pixels removed per step. Default: 28.
        detail: images for infidelity, max-sensitivity and sanity ρ. Default: 32.
        seed: the images' draw, the random control and ROAD's noise. Default: 0.
        runs: the runs folder, when ``run`` is a name. Default: ``"runs"``.
        data: the dataset (:func:`~archlab.load_fashion_mnist`). Default: loaded.

    Returns:
        A :class:`Faithfulness` report: print it, ``.plot()`` the mean curves.

    Example::

        >>> print(archlab.faithfulness("cnn", images=100))   # doctest: +SKIP
    """
    from archlab.training.run import as_run

    check_faithfulness_options(
        images=images, fill=fill, methods=methods, step=step, detail=detail, seed=seed
    )
    run = as_run(run, runs)
    if data is None:
        from archlab.training.data import load_fashion_mnist

        data = load_fashion_mnist()
    chosen = stratified_indices(data.test_labels, min(images, len(data.test_labels)), seed)
    return faithfulness_of_model(
        run.model,
        data.test_images[chosen],
        normalize=run.normalize,
        methods=methods,
        fill=fill,
        step=step,
        detail=detail,
        seed=seed,
        model_name=run.name,
    )
