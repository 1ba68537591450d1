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

import contextlib
import copy
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from archlab._modes import in_mode
from archlab._report import Report
from archlab._table import Table, Tabular
from archlab.analysis._image import pick_image
from archlab.errors import ArchlabError
from archlab.models import IMAGE_SHAPE
from archlab.trace.formulas import fmt_shape
from archlab.training.checkpoint import check_normalize
from archlab.training.data import CLASSES
from archlab.training.predict import model_device, to_input

METHODS = ("saliency", "ig", "smoothgrad", "occlusion", "gradcam")
IG_STEPS = 50
SMOOTHGRAD_SAMPLES = 25
SMOOTHGRAD_NOISE = 0.15  # σ as a share of the input's value range (SmoothGrad's 10–20 %)
OCCLUSION_WINDOW = 4
OCCLUSION_STRIDE = 2
IG_BATCH = 256  # images per forward pass inside IG, SmoothGrad and occlusion


@dataclass
class Attribution:
    """One method's map for one image: ``map`` is ``(28, 28)``; signed where the method is."""

    method: str
    title: str
    settings: str
    map: torch.Tensor
    signed: bool
    native: torch.Tensor | None = None  # Grad-CAM at the layer's own resolution
    delta: float | None = None  # IG's convergence delta


@dataclass
class Explanation(Report):
    """The result of :func:`explain`: the image, the class probabilities and one map per
    method (and the sanity check when asked for). ``str()`` gives the verdict and each
    method's settings; ``.plot()`` draws the whole figure (image, maps, overlays, the
    sanity check), ``.plot(ax)`` the first map over the image; Jupyter shows the figure.

    Example::

        >>> e = archlab.explain("cnn", 42, methods=["saliency", "gradcam"])   # doctest: +SKIP
        >>> e.verdict, [a.method for a in e.attributions]   # doctest: +SKIP
        ('true: Sneaker · predicted: Sneaker (1.00)', ['saliency', 'gradcam'])
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
        """``true: Sneaker · predicted: Sandal (0.71)``."""
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


def spearman(a: torch.Tensor, b: torch.Tensor) -> float:
    """Spearman's rank correlation of two same-sized tensors (ties broken by position)."""
    ra = a.flatten().argsort().argsort().double()
    rb = b.flatten().argsort().argsort().double()
    ra, rb = ra - ra.mean(), rb - rb.mean()
    denominator = (ra.norm() * rb.norm()).item()
    return float((ra @ rb).item() / denominator) if denominator else 0.0


def _convs(model: nn.Module) -> list[tuple[str, nn.Module]]:
    return [(n, m) for n, m in model.named_modules() if isinstance(m, nn.Conv2d)]


def last_conv_layer(model: nn.Module) -> tuple[str, nn.Module] | None:
    """The last convolution in registration order (Grad-CAM's default before issue 20,
    kept to compare with :func:`gradcam_layer`); None if none."""
    convs = _convs(model)
    return convs[-1] if convs else None


def gradcam_layer(model: nn.Module, input_shape=IMAGE_SHAPE) -> tuple[str, str] | None:
    """Grad-CAM's default layer, read off one forward pass: the output of the last
    convolutional block on the main path, after its normalisation and activation (as
    pytorch-grad-cam advises: ``layer4`` for a ResNet).

    It is the module that *finishes last* in forward order among those whose output is a
    feature map at the resolution of the last convolution called: for the lecture's CNN
    ``layer2.2`` (the ReLU after layer2's conv and BatchNorm, 12×12, before the pool); for
    the zoo's ``resnet`` ``stage3`` (the block's output, after the addition and ReLU, not
    the 1×1 projection shortcut that is the last convolution registered). None for a model
    without convolutions.

    Returns:
        ``(layer name, why)``.

    Example:

        >>> archlab.analysis.explain.gradcam_layer(archlab.create_model("cnn"))[0]
        'layer2.2'
    """
    if not _convs(model):
        return None
    names = {m: n for n, m in model.named_modules()}
    finished: list[tuple[str, tuple, bool]] = []  # (name, output shape, is a convolution)

    def record(module, args, output):
        if isinstance(output, torch.Tensor):
            finished.append((names[module], tuple(output.shape), isinstance(module, nn.Conv2d)))

    handles = [m.register_forward_hook(record) for n, m in model.named_modules() if n]
    from archlab.training.predict import model_device

    try:
        with in_mode(model), torch.no_grad():
            model(torch.zeros((1, *input_shape), device=model_device(model)))
    finally:
        for handle in handles:
            handle.remove()
    convs = [i for i, (_, _, conv) in enumerate(finished) if conv]
    if not convs:
        return None
    size = finished[convs[-1]][1][2:]
    same = [n for n, shape, _ in finished[convs[-1] :] if len(shape) == 4 and shape[2:] == size]
    name = same[-1]
    return name, "the last block's output (after its norm and activation)"


@contextlib.contextmanager
def _prepared(model: nn.Module) -> Iterator[nn.Module]:
    """Eval mode and no in-place ReLU while attributing; both restored afterwards."""
    inplace = [m for m in model.modules() if isinstance(m, nn.ReLU) and m.inplace]
    for m in inplace:
        m.inplace = False  # in-place ReLU breaks gradient hooks (DeepLift, layer methods)
    try:
        with in_mode(model):
            yield model
    finally:
        for m in inplace:
            m.inplace = True


def check_methods(methods: Sequence[str] | str) -> list[str]:
    """The attribution methods ``methods`` names (``"all"``, ``"saliency,ig"`` or a list),
    in order, once each; an unknown name, or none at all, is one error."""
    if isinstance(methods, str):
        methods = [m.strip() for m in methods.split(",") if m.strip()]
    if not methods:  # `--methods ''` (a variable left empty) is a mistake, not "all"
        raise ArchlabError(f"methods: name at least one of {', '.join(METHODS)}, or all")
    if list(methods) == ["all"]:
        return list(METHODS)
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ArchlabError(
            f"unknown method {unknown[0]!r}; choose from {', '.join(METHODS)} or all"
        )
    return list(dict.fromkeys(methods))


def _saliency(model, x, target, black, layer):
    from captum.attr import Saliency

    a = Saliency(model).attribute(x, target=target, abs=True)
    return Attribution("saliency", "Saliency", "|gradient| of the score", a[:, 0].detach(), False)


def _integrated_gradients(model, x, target, black, layer):
    from captum.attr import IntegratedGradients

    a, delta = IntegratedGradients(model).attribute(
        x,
        baselines=torch.full_like(x, black),
        target=target,
        n_steps=IG_STEPS,
        internal_batch_size=IG_BATCH,
        return_convergence_delta=True,
    )
    d = float(delta.abs().max().item())
    return Attribution(
        "ig",
        "Integrated Gradients",
        f"baseline: black image, {IG_STEPS} steps, convergence delta {d:.1e}",
        a[:, 0].detach(),
        True,
        delta=d,
    )


def _smoothgrad(model, x, target, black, layer):
    from captum.attr import NoiseTunnel, Saliency

    maps = []
    for i in range(len(x)):  # σ follows each image's own range (NoiseTunnel takes one σ)
        one = x[i : i + 1]
        sigma = SMOOTHGRAD_NOISE * float(one.detach().max() - one.detach().min())
        maps.append(
            NoiseTunnel(Saliency(model)).attribute(
                one,
                nt_type="smoothgrad",
                nt_samples=SMOOTHGRAD_SAMPLES,
                stdevs=sigma,
                target=target if isinstance(target, int) else target[i : i + 1],
                abs=True,
            )
        )
    a = torch.cat(maps)
    return Attribution(
        "smoothgrad",
        "SmoothGrad",
        f"{SMOOTHGRAD_SAMPLES} noisy copies, σ = {SMOOTHGRAD_NOISE:.0%} of the input range",
        a[:, 0].detach(),
        False,
    )


def _occlusion(model, x, target, black, layer):
    from captum.attr import Occlusion

    w, s = OCCLUSION_WINDOW, OCCLUSION_STRIDE
    a = Occlusion(model).attribute(
        x,
        sliding_window_shapes=(1, w, w),
        strides=(1, s, s),
        baselines=black,
        target=target,
        perturbations_per_eval=max(1, IG_BATCH // len(x)),
    )
    return Attribution(
        "occlusion",
        "Occlusion",
        f"black {w}×{w} patch, stride {s}: drop in the score",
        a[:, 0].detach(),
        True,
    )


def _gradcam(model, x, target, black, layer):
    from captum.attr import LayerAttribution, LayerGradCam

    modules = dict(model.named_modules())
    if layer is None:
        found = gradcam_layer(model, tuple(x.shape[1:]))
        if found is None:
            return "the model has no convolution, so there is no feature map to weight"
        name, why = found
    elif layer == "last-conv":  # the old default, kept to measure it against the new one
        name, why = last_conv_layer(model)[0], "the last convolution registered, before its BN"
    else:
        if layer not in modules or not layer:
            convs = ", ".join(n for n, _ in _convs(model)) or "none"
            raise ArchlabError(f"--layer {layer!r}: no such layer; convolutions: {convs}")
        name, why = layer, "the chosen layer"
    native = LayerGradCam(model, modules[name]).attribute(x, target=target, relu_attributions=True)
    if native.dim() != 4:
        return f"{name} outputs no feature map ({native.dim() - 1}-d), so Grad-CAM has no map"
    up = LayerAttribution.interpolate(native, x.shape[-2:], interpolate_mode="bilinear")
    return Attribution(
        "gradcam",
        f"Grad-CAM on {name}",
        f"{why}; its {fmt_shape(native.shape[-2:])} map upsampled bilinearly",
        up[:, 0].detach(),
        False,
        native=native[:, 0].detach(),
    )


# method name → the function that computes it (or returns why it does not apply)
_METHOD_FUNCTIONS = {
    "saliency": _saliency,
    "ig": _integrated_gradients,
    "smoothgrad": _smoothgrad,
    "occlusion": _occlusion,
    "gradcam": _gradcam,
}


def _import_captum() -> None:
    """Import Captum without the TqdmWarning its ``tqdm.auto`` raises in a Jupyter kernel
    without ipywidgets (a red box in a lecture notebook, about a progress bar archlab never
    shows); the methods' own imports then find it loaded."""
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="IProgress not found")
        import captum.attr  # noqa: F401


def attribute_batch(
    model: nn.Module, x: torch.Tensor, target, method: str, black: float, layer=None
) -> Attribution | str:
    """One method's maps for a batch ``x`` ``(N, 1, H, W)`` (model input, requiring grad)
    and its targets (an int or ``(N,)``): an :class:`Attribution` whose ``map`` is
    ``(N, H, W)``, or the reason the method does not apply."""
    return _METHOD_FUNCTIONS[method](model, x, target, black, layer)


def _attribute(
    model: nn.Module, x: torch.Tensor, target: int, method: str, black: float, layer=None
) -> Attribution | str:
    """One method's attribution for one image, or the reason it does not apply."""
    result = attribute_batch(model, x, target, method, black, layer)
    if isinstance(result, Attribution):  # on the CPU for reports, wherever the model ran
        result.map = result.map[0].cpu()
        result.native = result.native[0].cpu() if result.native is not None else None
    return result


def attribute_images(
    model: nn.Module,
    images: torch.Tensor,
    targets: torch.Tensor,
    *,
    normalize: tuple[float, float] | None = None,
    methods: Sequence[str] | str = "all",
    layer: str | None = None,
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
        layer: the layer for Grad-CAM. Default: the last convolution.
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


def _randomisation_steps(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Layers with weights, top (output) first: the cascade's order."""
    layers = [
        (n, m)
        for n, m in model.named_modules()
        if n and hasattr(m, "reset_parameters") and any(True for _ in m.parameters(False))
    ]
    return layers[::-1]


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
        for _name, module in steps:
            module.reset_parameters()
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

        >>> e = archlab.explain("cnn", 42)   # doctest: +SKIP
        >>> e.verdict                         # doctest: +SKIP
        'true: Sneaker · predicted: Sneaker (1.00)'
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
