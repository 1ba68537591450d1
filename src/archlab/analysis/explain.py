"""Why did the model answer that? Captum attributions for one image, and a sanity check.

Methods (all through Captum, on the model's own normalised input):

- ``saliency``: |∂ score / ∂ pixel| (Simonyan et al., 2014).
- ``ig``: Integrated Gradients from a black image (Sundararajan et al., 2017), with its
  convergence delta (how far the attributions' sum is from score(image) − score(black)).
- ``smoothgrad``: saliency averaged over noisy copies of the image (NoiseTunnel).
- ``occlusion``: the score's drop when a square patch is painted black.
- ``gradcam``: Grad-CAM on the output of the last convolutional block, after its
  normalisation and activation (:func:`gradcam_layer`), at its native resolution and
  upsampled to 28×28. Not defined for a model without convolutions.

The sanity check (``sanity=True``) is the model-randomisation test of Adebayo et al.
(2018), "Sanity Checks for Saliency Maps": the layers' weights are re-initialised from the
top layer down, one more layer at each step, and each method's map is compared with the
trained model's map by Spearman rank correlation of their absolute values. A method whose
map barely changes when the weights are destroyed is not showing what the model learned.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from archlab._report import Report
from archlab._table import Table, Tabular
from archlab.analysis._attribution import (  # noqa: F401  (the public names live on here)
    _METHOD_FUNCTIONS,
    IG_BATCH,
    IG_STEPS,
    METHODS,
    OCCLUSION_STRIDE,
    OCCLUSION_WINDOW,
    SMOOTHGRAD_NOISE,
    SMOOTHGRAD_SAMPLES,
    Attribution,
    _attribute,
    _import_captum,
    _prepared,
    _randomisation_steps,
    attribute_batch,
    check_methods,
    gradcam_layer,
    last_conv_layer,
    spearman,
)
from archlab.analysis._image import pick_image
from archlab.errors import ArchlabError
from archlab.training.checkpoint import check_normalize
from archlab.training.data import CLASSES
from archlab.training.predict import model_device, to_input


@dataclass
class Explanation(Report):
    """The result of :func:`explain`: the image, the class probabilities and one map per
    method (and the sanity check when asked for). ``str()`` gives the verdict and each
    method's settings; ``.plot()`` draws the whole figure (image, maps, overlays, the
    sanity check), ``.plot(ax)`` the first map over the image; Jupyter shows the figure.

    Example::

        >>> e = archlab.explain("dnn", 42, methods=["saliency", "ig"])   # doctest: +SKIP
        >>> e.verdict, [a.method for a in e.attributions]   # doctest: +SKIP
        ('true: Dress · predicted: Shirt (0.59)', ['saliency', 'ig'])
        >>> e.save("explain.png")   # doctest: +SKIP
    """

    _shows_figure = True

    model: str
    index: int | None
    image: torch.Tensor  # (28, 28) uint8
    label: int | None
    probs: torch.Tensor  # (10,)
    target: int
    attributions: list[Attribution] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    sanity: SanityCheck | None = None
    faithfulness: object | None = None  # a Faithfulness report over this one image
    classes: tuple[str, ...] = CLASSES

    @property
    def predicted(self) -> int:
        return int(self.probs.argmax())

    def top(self, k: int = 3) -> list[tuple[str, float]]:
        values, indices = self.probs.topk(k)
        return [(self.classes[i], float(v)) for v, i in zip(values, indices, strict=True)]

    @property
    def verdict(self) -> str:
        """``true: Dress · predicted: Shirt (0.59)``."""
        pred = self.predicted
        true = f"true: {self.classes[self.label]} · " if self.label is not None else ""
        return f"{true}predicted: {self.classes[pred]} ({float(self.probs[pred]):.2f})"

    def describe(self) -> str:
        """Whose score is explained, and each method's settings (or why it was skipped)."""
        lines = [f"explaining the score of: {self.classes[self.target]}"]
        lines += [f"  {a.title}: {a.settings}" for a in self.attributions]
        lines += [f"  {m}: skipped, {why}" for m, why in self.skipped.items()]
        return "\n".join(lines)

    def _parts(self) -> list[Table | str]:
        sanity = self.sanity._parts() if self.sanity is not None else []
        curves = self.faithfulness._parts()[:1] if self.faithfulness is not None else []
        return [f"{self.verdict}\n{self.describe()}", *sanity, *curves]

    def plot(self, ax=None):
        from archlab.viz.explanation import plot_attribution, plot_explanation

        if ax is None:
            return plot_explanation(self)
        if not self.attributions:
            raise ArchlabError("no method gave a map: " + "; ".join(self.skipped.values()))
        return plot_attribution(self.attributions[0], self.image, ax=ax, blend=True)


@dataclass
class SanityCheck(Tabular):
    """Rank correlation between trained and randomised maps, per method and depth.

    ``steps[k]`` names the layers re-initialised at step k (top layer first);
    ``rho[method][k]`` is Spearman's ρ of |map| at that step against the trained |map|;
    ``maps[method]`` is the map of the fully randomised model.
    """

    steps: list[str]
    rho: dict[str, list[float]]
    maps: dict[str, torch.Tensor]

    def _parts(self) -> list[Table | str]:
        headers = ["method", *(f"…{s}" for s in self.steps)]
        rows = [[m, *(f"{r:+.2f}" for r in rhos)] for m, rhos in self.rho.items()]
        caption = (
            "sanity check (Adebayo et al., 2018): Spearman ρ of |map| against the trained "
            "model's, as layers are re-initialised from the top down"
        )
        return [
            Table(headers, rows, caption),
            "ρ near 1 all the way down: the map does not depend on what the model learned.",
        ]


def attribute_images(
    model: nn.Module,
    images: torch.Tensor,
    targets: torch.Tensor,
    *,
    normalize: tuple[float, float] | None = None,
    methods: Sequence[str] | str = "all",
    layer: str | tuple[str, str] | None = None,
    chunk: int = 16,
) -> tuple[list[Attribution], dict[str, str]]:
    """Each method's maps for many images at once (what :func:`explain_image` computes for
    one), in chunks of ``chunk`` images: Captum runs a chunk's steps, noisy copies and
    patches as one batch, several times faster than one image at a time.

    Args:
        model: a trained classifier (left as it was).
        images: uint8 ``(N, H, W)``.
        targets: the class whose score to explain, per image, int64 ``(N,)``.
        normalize: the (mean, std) it was trained with. Default: none.
        methods: names from ``METHODS`` or ``"all"``. Default: all.
        layer: the layer for Grad-CAM, or ``gradcam_layer``'s ``(name, why)`` already
            found. Default: :func:`gradcam_layer`'s.
        chunk: images per Captum call. Default: 16.

    Returns:
        ``(attributions, skipped)``: one :class:`Attribution` per method whose ``map`` is
        ``(N, H, W)`` (``native`` ``(N, h, w)``; ``delta`` the largest over the images),
        and method → why it does not apply.
    """
    chosen = check_methods(methods)
    black = float(to_input(torch.zeros(1, 1, 1, dtype=torch.uint8), normalize).item())
    parts: dict[str, list[Attribution]] = {m: [] for m in chosen}
    skipped: dict[str, str] = {}
    with _prepared(model):
        for start in range(0, len(images), chunk):
            x = to_input(images[start : start + chunk], normalize)
            tgt = targets[start : start + chunk]
            for method in chosen:
                if method in skipped:
                    continue
                result = _METHOD_FUNCTIONS[method](
                    model, x.clone().requires_grad_(True), tgt, black, layer
                )
                if isinstance(result, str):
                    skipped[method] = result
                else:
                    parts[method].append(result)
    out = []
    for method, pieces in parts.items():
        if method in skipped or not pieces:
            continue
        first = pieces[0]
        deltas = [p.delta for p in pieces if p.delta is not None]
        natives = [p.native for p in pieces if p.native is not None]
        out.append(
            Attribution(
                method,
                first.title,
                first.settings,
                torch.cat([p.map for p in pieces]),
                first.signed,
                native=torch.cat(natives) if natives else None,
                delta=max(deltas) if deltas else None,
            )
        )
    return out, skipped


def _sanity(
    model: nn.Module, x, target, black, trained: dict[str, torch.Tensor], layer=None
) -> SanityCheck:
    """Re-initialise the layers top-down, one more each step, and compare each method's
    map with the trained model's (``trained``: method → map)."""
    methods = list(trained)
    randomised = copy.deepcopy(model)
    steps = _randomisation_steps(randomised)
    rho: dict[str, list[float]] = {m: [] for m in methods}
    maps: dict[str, torch.Tensor] = {}
    with torch.random.fork_rng():
        torch.manual_seed(0)
        for _name, reinitialise in steps:
            reinitialise()
            for method in methods:
                result = _attribute(
                    randomised, x.clone().requires_grad_(True), target, method, black, layer
                )
                rho[method].append(spearman(trained[method].abs(), result.map.abs()))
                maps[method] = result.map
    return SanityCheck([n for n, _ in steps], rho, maps)


def explain_image(
    model: nn.Module,
    image: torch.Tensor,
    label: int | None = None,
    *,
    normalize: tuple[float, float] | None = None,
    methods: Sequence[str] | str = "all",
    target: str | int = "pred",
    sanity: bool = False,
    model_name: str | None = None,
    index: int | None = None,
    layer: str | None = None,
    faithfulness: str | None = None,
) -> Explanation:
    """Attribute one image's class score to its pixels with each method, for a model in
    hand (:func:`explain` does it for a trained run, which knows its normalisation).

    Args:
        model: a trained classifier (left as it was: mode, weights, no hooks).
        image: uint8 pixels ``(H, W)``.
        label: the true class, if known. Default: None.
        normalize: the (mean, std) the model was trained with. Default: none.
        methods: names from ``METHODS`` or ``"all"``. Default: all.
        target: whose score to explain: ``"pred"``, ``"true"`` or a class index/name.
            Default: the predicted class.
        sanity: also run the model-randomisation test. Default: False.
        model_name: for titles. Default: the class name.
        index: the test-set index, for titles. Default: None.
        layer: the layer for Grad-CAM (``"last-conv"``: the last convolution registered).
            Default: the last block's output (:func:`gradcam_layer`).
        faithfulness: a fill (``"zero"``, ``"blur"``, ``"road"``): also the deletion
            curves of this image for each map and the controls. Default: None.

    Returns:
        An :class:`Explanation`.

    Example::

        >>> from archlab.analysis.explain import explain_image
        >>> e = explain_image(archlab.create_model("cnn"), torch.zeros(28, 28, dtype=torch.uint8),
        ...                   methods="saliency")
        >>> e.attributions[0].map.shape
        torch.Size([28, 28])
    """
    chosen = check_methods(methods)
    _import_captum()
    try:
        normalize = check_normalize(normalize)
    except ValueError as exc:
        raise ArchlabError(f"normalize: {exc}") from None
    x = to_input(image.unsqueeze(0).to(model_device(model)), normalize)
    black = float(to_input(torch.zeros(1, 1, 1, dtype=torch.uint8), normalize).item())
    with _prepared(model):
        with torch.no_grad():
            probs = F.softmax(model(x), dim=1)[0].cpu()
        tgt = _resolve_target(target, probs, label)
        explanation = Explanation(
            model_name or type(model).__name__, index, image, label, probs, tgt
        )
        for method in chosen:
            result = _attribute(model, x.clone().requires_grad_(True), tgt, method, black, layer)
            if isinstance(result, str):
                explanation.skipped[method] = result
            else:
                explanation.attributions.append(result)
        if sanity and explanation.attributions:
            trained = {a.method: a.map for a in explanation.attributions}
            explanation.sanity = _sanity(model, x, tgt, black, trained, layer)
    if faithfulness is not None:
        from archlab.analysis.faithfulness import faithfulness_of_model

        explanation.faithfulness = faithfulness_of_model(
            model,
            image.unsqueeze(0),
            normalize=normalize,
            methods=[a.method for a in explanation.attributions] or chosen,
            fill=faithfulness,
            detail=0,
            compare_last_conv=False,
            model_name=explanation.model,
            layer=layer,
        )
    return explanation


def _resolve_target(target: str | int, probs: torch.Tensor, label: int | None) -> int:
    if target == "pred":
        return int(probs.argmax())
    if target == "true":
        if label is None:
            raise ArchlabError("--target true needs the image's true label")
        return int(label)
    if isinstance(target, str) and not target.isdigit():
        names = {c.lower(): i for i, c in enumerate(CLASSES)}
        if target.lower() not in names:
            raise ArchlabError(
                f"--target {target!r}: use pred, true, 0-9 or a class name ({', '.join(CLASSES)})"
            )
        return names[target.lower()]
    value = int(target)
    if not 0 <= value < len(probs):
        raise ArchlabError(f"--target {value}: a class index is 0-{len(probs) - 1}")
    return value


def explain(
    run,
    index: int = 42,
    *,
    image: torch.Tensor | None = None,
    label: int | None = None,
    methods: Sequence[str] | str = "all",
    target: str | int = "pred",
    layer: str | None = None,
    sanity: bool = False,
    faithfulness: str | None = None,
    runs: str | os.PathLike = "runs",
    data=None,
) -> Explanation:
    """Attribute a trained run's class score for one image to its pixels, with each method.

    Args:
        run: a :class:`~archlab.Run`, or a spec or run folder's name to load from ``runs``.
        index: which test image, 0-9999. Default: 42.
        image: uint8 pixels ``(H, W)`` to explain instead of a test image. Default: None.
        label: ``image``'s true class, if known. Default: None.
        methods: names from ``METHODS`` or ``"all"``. Default: all.
        target: whose score to explain: ``"pred"``, ``"true"`` or a class index/name.
            Default: the predicted class.
        layer: the layer for Grad-CAM (``"last-conv"``: the last convolution registered).
            Default: the last block's output (:func:`gradcam_layer`).
        sanity: also run the model-randomisation test. Default: False.
        faithfulness: a fill (``"zero"``, ``"blur"``, ``"road"``): also this image's
            deletion curves per map, beside the panels. Default: None.
        runs: the runs folder, when ``run`` is a name. Default: ``"runs"``.
        data: the dataset (:func:`~archlab.load_fashion_mnist`). Default: loaded.

    Returns:
        An :class:`Explanation`: print it, ``.plot()`` it, ``.save("explain.png")``.

    Example::

        >>> e = archlab.explain("dnn", 42)   # doctest: +SKIP
        >>> e.verdict                         # doctest: +SKIP
        'true: Dress · predicted: Shirt (0.59)'
    """
    from archlab.training.run import as_run

    check_methods(methods)
    run = as_run(run, runs)
    image, label, index = pick_image(index, image, label, data)
    return explain_image(
        run.model,
        image,
        label,
        normalize=run.normalize,
        methods=methods,
        target=target,
        sanity=sanity,
        model_name=run.name,
        index=index,
        layer=layer,
        faithfulness=faithfulness,
    )
