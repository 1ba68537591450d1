"""The attribution core shared by :mod:`archlab.analysis.explain` and
:mod:`archlab.analysis.faithfulness`: each method's maps for a batch, Grad-CAM's layer,
the model prepared for attributing, the randomisation cascade's order and Spearman's ρ.

Its own module so that neither analysis imports the other's internals (explain's
``faithfulness=`` option calls faithfulness; faithfulness reads the maps from here).
"""

from __future__ import annotations

import contextlib
import functools
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from archlab._modes import in_mode
from archlab.errors import ArchlabError
from archlab.models import IMAGE_SHAPE
from archlab.trace.formulas import fmt_shape

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


def gradcam_layer(
    model: nn.Module, input_shape=IMAGE_SHAPE, *, rows: Sequence | None = None
) -> tuple[str, str] | None:
    """Grad-CAM's default layer, read off the model's trace: the output of the last
    convolutional block on the main path, after its normalisation and activation (as
    pytorch-grad-cam advises: ``layer4`` for a ResNet).

    It is the last row at the resolution of the last convolution called (a feature map),
    named by the outermost block that ends with that row: for the lecture's CNN
    ``layer2.2`` (the ReLU after layer2's conv and BatchNorm, 12×12, before the pool); for
    the zoo's ``resnet`` ``stage3`` (the block's output, after the addition and ReLU, not
    the 1×1 projection shortcut that is the last convolution registered). None for a model
    without convolutions.

    Args:
        model: the model.
        input_shape: one image's shape. Default: (1, 28, 28).
        rows: the model's trace rows (``trace_shapes(model).layers``), when already
            traced. Default: traced here.

    Returns:
        ``(layer name, why)``.

    Example:

        >>> from archlab.analysis.explain import gradcam_layer
        >>> gradcam_layer(archlab.create_model("cnn"))[0]
        'layer2.2'
    """
    from archlab.trace.record import row_module

    if not _convs(model):
        return None
    if rows is None:
        from archlab.trace.shapes import trace_shapes

        report = trace_shapes(model, tuple(input_shape))
        if report.error is not None:
            raise ArchlabError(f"{type(model).__name__}: {report.error}", 1)
        rows = report.layers
    modules = dict(model.named_modules())
    convs = [i for i, r in enumerate(rows) if isinstance(row_module(r, modules, model), nn.Conv2d)]
    if not convs:
        return None
    size = rows[convs[-1]].output[1:]
    same = [
        i
        for i in range(convs[-1], len(rows))
        if rows[i].output is not None and len(rows[i].output) == 3 and rows[i].output[1:] == size
    ]
    chosen = same[-1]
    name = _block_ending_at(rows, chosen)
    if name is None:  # an operation in forward: the last layer before it (the conv at least)
        chosen = next(i for i in reversed(same) if not rows[i].functional)
        name = rows[chosen].name
    # said as it is (a branch's conv is not "after its norm and activation")
    why = (
        "the last block's output at the last convolution's resolution (it ends in "
        f"{rows[chosen].type})"
    )
    after = [rows[i].type for i in same if i > chosen and rows[i].functional]
    if after:
        why += f"; the {', '.join(dict.fromkeys(after))} after it in forward cannot be hooked"
    return name, why


def _block_ending_at(rows: Sequence, index: int) -> str | None:
    """The outermost module whose last row is ``rows[index]`` (so whose output it is), or
    the row's own layer; None for an operation in the model's own ``forward``."""

    from archlab.trace.shapes import FUNCTIONAL

    def inside(row, block: str) -> bool:
        return row.name == block or row.name.startswith(block + ".")

    row = rows[index]
    if row.functional and row.name == FUNCTIONAL:
        return None
    parts = row.name.split(".")
    for k in range(1, len(parts) + 1):
        block = ".".join(parts[:k])
        if not any(inside(r, block) for r in rows[index + 1 :]):
            return block
    return None if row.functional else row.name


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


GRADIENT_METHODS = ("saliency", "ig", "smoothgrad", "gradcam")


def check_gradient(model: nn.Module, x: torch.Tensor, what: str, methods: Sequence[str]) -> None:
    """One clear :class:`ArchlabError` when ``methods`` need a gradient and the model's
    output has none with respect to its input ``x`` ``(N, 1, H, W)`` (an argmax or a
    detach inside its forward)."""
    needing = [m for m in methods if m in GRADIENT_METHODS]
    if not needing:
        return
    with torch.enable_grad():
        out = model(x[:1].detach().clone().requires_grad_(True))
    if not (isinstance(out, torch.Tensor) and out.is_floating_point() and out.requires_grad):
        raise ArchlabError(
            f"{what}: its output has no gradient with respect to the input (an argmax, a "
            f"detach or torch.no_grad inside its forward?), so {', '.join(needing)} cannot "
            "run on it; methods='occlusion' needs none"
        )


def check_methods(methods: Sequence[str] | str) -> list[str]:
    """The attribution methods named by ``methods``: ``"all"``, a comma-separated string
    or a list of names from :data:`METHODS`; one :class:`ArchlabError` for anything else
    (an empty choice too: it used to mean all, silently).

    Example:

        >>> archlab.analysis.explain.check_methods("ig, saliency")
        ['ig', 'saliency']
    """
    choose = f"choose from {', '.join(METHODS)} or all"
    if isinstance(methods, str):
        methods = [m.strip() for m in methods.split(",") if m.strip()]
    elif not isinstance(methods, Sequence) or not all(isinstance(m, str) for m in methods):
        raise ArchlabError(
            f"methods={methods!r}: give method names, e.g. 'ig,saliency'; {choose}",
            cli_message=f"--methods {methods!r}: {choose}",
        )
    if not methods:
        raise ArchlabError(f"methods: none given; {choose}", cli_message=f"--methods '': {choose}")
    if list(methods) == ["all"]:
        return list(METHODS)
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ArchlabError(f"unknown method {unknown[0]!r}; {choose}")
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
    if isinstance(layer, tuple):  # already found: (name, why) from gradcam_layer
        name, why = layer
    elif layer is None or layer == "last-conv":
        # last-conv: the old default, kept to measure it against the new one
        found = gradcam_layer(model, tuple(x.shape[1:])) if layer is None else None
        if layer == "last-conv" and (last := last_conv_layer(model)) is not None:
            found = last[0], "the last convolution registered, before its BN"
        if found is None:
            return "the model has no convolution, so there is no feature map to weight"
        name, why = found
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
    ``(N, H, W)`` (contiguous), or the reason the method does not apply."""
    result = _METHOD_FUNCTIONS[method](model, x, target, black, layer)
    if isinstance(result, Attribution):
        # a gradient keeps the strides of the model's first view of its input (an RNN
        # over the columns transposes it); Captum's metrics call .view on the maps
        result.map = result.map.contiguous()
        if result.native is not None:
            result.native = result.native.contiguous()
    return result


def _attribute(
    model: nn.Module, x: torch.Tensor, target: int, method: str, black: float, layer=None
) -> Attribution | str:
    """One method's attribution for one image, or the reason it does not apply."""
    result = attribute_batch(model, x, target, method, black, layer)
    if isinstance(result, Attribution):  # on the CPU for reports, wherever the model ran
        result.map = result.map[0].cpu()
        result.native = result.native[0].cpu() if result.native is not None else None
    return result


def _randomisation_steps(model: nn.Module) -> list[tuple[str, Callable[[], None]]]:
    """The cascade's steps, top (output) first: one for each module that owns parameters
    itself (the model's own, such as a class token or a head written as a bare
    ``nn.Parameter``, last, under the model's class name), and the function that
    re-initialises them (:func:`_reinitialise`). Together they re-draw every parameter."""
    steps = [
        (n or type(model).__name__, functools.partial(_reinitialise, m))
        for n, m in model.named_modules()
        if any(True for _ in m.parameters(recurse=False))
    ]
    return steps[::-1]


def _reinitialise(module: nn.Module) -> None:
    """Re-draw ``module``'s own parameters: by its ``reset_parameters`` (or
    ``nn.MultiheadAttention``'s ``_reset_parameters``) where it has one; a parameter that
    this left as it was, or of a module without one, by :func:`_redraw`."""
    own = list(module.parameters(recurse=False))
    before = [p.detach().clone() for p in own]
    reset = getattr(module, "reset_parameters", None) or getattr(module, "_reset_parameters", None)
    if callable(reset):
        reset()
    with torch.no_grad():
        for p, old in zip(own, before, strict=True):
            if torch.equal(p, old):
                _redraw(p)


def _redraw(p: torch.Tensor) -> None:
    """A parameter without a known initialisation, re-drawn: a matrix or kernel as torch's
    ``nn.Linear`` and ``nn.Conv2d`` draw theirs (Kaiming uniform, a = √5); a vector or
    scalar from the normal distribution with its trained values' mean and spread (a scale
    stays near its size, its pattern is gone)."""
    if p.dim() >= 2:
        nn.init.kaiming_uniform_(p, a=math.sqrt(5))
    elif p.numel() > 1:
        p.normal_(float(p.mean()), float(p.std()))
