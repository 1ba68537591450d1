"""What the explorer shows, computed: one trained run's trace, activations, kernels,
probabilities, attributions and confusion matrix, as plain numbers and uint8 arrays.

Nothing here writes a file or knows the page: :mod:`archlab.explorer.write` lays the
result out as JSON and PNG files, and ``static/`` renders them.

Quantisation: every activation map and every flat layer's values are stored as uint8,
linearly between that layer's minimum and maximum for that image (over all its
channels, so channels stay comparable): ``value = lo + q · (hi − lo) / 255``, off by at
most ``(hi − lo) / 510`` from the forward pass. Kernels are stored the same way between
``−m`` and ``m``, ``m`` the layer's largest absolute weight; attribution maps between
``−m`` and ``m`` (signed methods) or ``0`` and ``m``, per image and method.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

from archlab.explorer.onnx import LiveModel

MAX_KERNELS = 64  # output and input channels of a convolution's kernel grid that are shown
TILE_GAP = 1  # pixels between the tiles of a sprite, so that scaled tiles never bleed


@dataclass
class Activation:
    """One trace row's output for every exported image.

    ``kind`` is ``"maps"`` (``(N, C, H, W)`` uint8 in ``q``), ``"bars"`` (``(N, F)``) or
    ``"none"`` (``why`` says why); ``ranges[i]`` is image i's (lo, hi).
    """

    kind: str
    shape: tuple[int, ...] = ()
    q: torch.Tensor | None = None
    ranges: list[tuple[float, float]] = field(default_factory=list)
    why: str = ""


@dataclass
class RunExport:
    """Everything the page shows about one run, for the images ``indices``."""

    name: str
    label: str
    accuracy: float | None
    params: int
    macs: int
    normalize: tuple[float, float] | None
    rows: list[dict]
    activations: list[Activation]
    kernels: dict[int, tuple[torch.Tensor, float]]  # row → ((out, in, k, k) uint8, max |w|)
    probs: torch.Tensor  # (N, 10) for the exported images
    confusion: list[list[int]]  # [true][predicted] on the whole test set
    cells: dict[str, list[int]]  # "true,predicted" → positions in the exported images
    methods: list[dict]  # name, title, settings, signed
    skipped: dict[str, str]
    attributions: dict[str, tuple[torch.Tensor, list[float]]]  # method → (N, H, W) uint8, scales
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # one line each, for the terminal
    panels: object = None  # explorer.panels.PanelsExport: channels, map, timeline, confidence
    live: LiveModel | None = None  # the model as an ONNX graph for the page (explorer.onnx)


def quantise(x: torch.Tensor) -> tuple[torch.Tensor, float, float]:
    """``x`` as uint8 between its min and max (a constant tensor maps to 0)."""
    lo, hi = float(x.min()), float(x.max())
    scale = (hi - lo) or 1.0
    q = ((x.float() - lo) * (255.0 / scale)).round_().clamp_(0, 255).to(torch.uint8)
    return q, lo, hi


def dequantise(q: torch.Tensor, lo: float, hi: float) -> torch.Tensor:
    """The inverse of :func:`quantise` (to within ``(hi − lo) / 510``)."""
    return lo + q.float() * ((hi - lo) / 255.0)


def choose_images(
    labels: torch.Tensor, predictions: Sequence[torch.Tensor], n: int, seed: int = 0
) -> list[int]:
    """``n`` test images: about a third right (every class), the rest the runs' mistakes,
    one from each of the most frequent (true, predicted) cells in turn, so that the
    confusion matrix's busiest cells have images to show. Shared by all runs.

    Args:
        labels: the test labels ``(M,)``.
        predictions: each run's predicted classes ``(M,)``.
        n: how many images.
        seed: picks among the candidates of a class or cell. Default: 0.
    """
    g = torch.Generator().manual_seed(seed)
    classes = int(labels.max()) + 1 if len(labels) else 0
    chosen: list[int] = []

    def pick(mask: torch.Tensor) -> bool:
        candidates = [i for i in mask.nonzero().flatten().tolist() if i not in chosen]
        if not candidates:
            return False
        chosen.append(candidates[int(torch.randint(len(candidates), (1,), generator=g))])
        return True

    first = predictions[0] if predictions else labels
    right_share = max(classes, n // 3) if predictions else n
    for round_ in range(math.ceil(right_share / max(classes, 1))):
        for k in range(classes):
            if len(chosen) < min(n, right_share):
                pick((labels == k) & (first == k)) or (round_ == 0 and pick(labels == k))
    # the mistakes: each run's busiest cells, taken in turn across runs
    queues = []
    for pred in predictions:
        wrong = pred != labels
        cells = torch.bincount(labels[wrong] * classes + pred[wrong], minlength=classes**2)
        order = [int(c) for c in cells.argsort(descending=True) if cells[c] > 0]
        queues.append([(c // classes, c % classes, pred) for c in order])
    while len(chosen) < n and any(queues):
        for queue in queues:
            if queue and len(chosen) < n:
                t, p, pred = queue.pop(0)
                pick((labels == t) & (pred == p))
    for k in range(n - len(chosen)):  # fewer mistakes than asked for: more right ones
        if not pick(labels == (k % max(classes, 1))):
            break
    return sorted(chosen[:n])


def activation(tensor: torch.Tensor | None) -> Activation:
    """One row's output ``(N, ...)`` quantised per image (see the module docstring)."""
    if tensor is None:
        return Activation("none", why="no output with one row per image")
    if not tensor.is_floating_point():
        return Activation("none", why=f"{str(tensor.dtype).removeprefix('torch.')} output")
    per = tuple(tensor.shape[1:])
    if len(per) == 3:
        kind, maps = "maps", tensor
    elif len(per) == 2:  # (T, F): one map
        kind, maps = "maps", tensor.unsqueeze(1)
    elif len(per) == 1:
        kind, maps = "bars", tensor
    elif len(per) == 0:
        kind, maps = "bars", tensor.unsqueeze(1)
    else:
        return Activation("none", per, why=f"a {len(per)}-d output per image")
    qs, ranges = [], []
    for image in maps:
        q, lo, hi = quantise(image)
        qs.append(q)
        ranges.append((lo, hi))
    return Activation(kind, tuple(maps.shape[1:]), torch.stack(qs), ranges)


def kernels(module: nn.Module) -> tuple[torch.Tensor, float] | None:
    """A 2-d convolution's kernels ``(out, in, kh, kw)`` as uint8 around 128 (up to
    :data:`MAX_KERNELS` of each), and the largest absolute weight; None for other layers."""
    if not isinstance(module, nn.Conv2d):
        return None
    w = module.weight.detach().float().cpu()[:MAX_KERNELS, :MAX_KERNELS]
    m = float(w.abs().max()) or 1.0
    q = ((w / m) * 127.5 + 127.5).round_().clamp_(0, 255).to(torch.uint8)
    return q, m


GRADIENT_FREE = ("occlusion",)  # attribution methods that only run the model forward


def gradient_problem(model: nn.Module, x: torch.Tensor) -> str | None:
    """Why gradient attributions cannot explain ``model``, or None when they can: its output
    on ``x`` ``(N, C, H, W)`` does not depend differentiably on the input (an ``argmax``,
    a comparison or a ``.detach()`` in ``forward``)."""
    from archlab._modes import in_mode

    with in_mode(model), torch.enable_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = model(x.detach().clone().requires_grad_(True))
    if isinstance(out, torch.Tensor) and out.requires_grad:
        return None
    return (
        "its output has no gradient with respect to the input (an argmax, a comparison or "
        "a .detach() in forward?), so gradient attributions cannot explain it"
    )


def attribution_maps(maps: torch.Tensor, signed: bool) -> tuple[torch.Tensor, list[float]]:
    """``(N, H, W)`` maps as uint8 (signed: 128 is zero) and each image's scale m."""
    flat = maps.detach().float().flatten(1)
    scales = flat.abs().amax(1).clamp_min(1e-12)
    unit = maps.detach().float() / scales[:, None, None]
    q = (unit * 127.5 + 127.5) if signed else unit.clamp_min(0) * 255.0
    return q.round_().clamp_(0, 255).to(torch.uint8), [float(s) for s in scales]


class _Clock:
    """Adds the seconds since the last call to ``timings[step]`` (nothing without a dict)."""

    def __init__(self, timings: dict[str, float] | None) -> None:
        self.timings = timings
        self.last = time.perf_counter()

    def __call__(self, step: str) -> None:
        now = time.perf_counter()
        if self.timings is not None:
            self.timings[step] = self.timings.get(step, 0.0) + now - self.last
        self.last = now


def seen(run, labels: torch.Tensor) -> torch.Tensor:
    """``(N,)`` bool: the labels of classes ``run`` learned (all but the class it held
    out with ``archlab train --hold-out``): its accuracy, confusion matrix and
    calibration are over these, as its own test accuracy is."""
    held = getattr(run, "held_out", None)
    return labels != held if held is not None else torch.ones(len(labels), dtype=torch.bool)


def export_run(
    run,
    data,
    indices: Sequence[int],
    *,
    test_probs: torch.Tensor | None = None,
    methods: Sequence[str] | str = "all",
    timings: dict[str, float] | None = None,
) -> RunExport:
    """Compute what the page shows about ``run`` for the test images ``indices``.

    Args:
        run: a :class:`~archlab.Run`.
        data: the dataset (its test split is used).
        indices: the test images that flow through the page.
        test_probs: the run's probabilities on the whole test set ``(M, 10)``. Default:
            computed.
        methods: the attribution methods. Default: all five.
        timings: filled with the seconds of each step (``trace``, ``test set``,
            ``activations``, ``attributions``), for the benchmark. Default: not kept.

    Returns:
        A :class:`RunExport`.
    """
    from archlab.analysis.evaluation import confusion_matrix
    from archlab.analysis.explain import attribute_images, check_methods, gradcam_layer
    from archlab.trace.params import param_report
    from archlab.trace.record import row_outputs
    from archlab.trace.shapes import trace_shapes
    from archlab.training.predict import predict_logits, to_input

    clock = _Clock(timings)
    model = run.model
    from archlab.models import IMAGE_SHAPE

    shape = tuple(getattr(model, "input_shape", IMAGE_SHAPE))
    report = trace_shapes(model, shape)
    notes = list(report.notes)
    if report.error is not None:
        from archlab.errors import ArchlabError

        raise ArchlabError(f"{run.name}: {report.error}", 1)
    counts = param_report(report, model, run.name)  # the rows' counts: no second pass
    images = data.test_images[list(indices)]
    labels = data.test_labels
    clock("trace")
    if test_probs is None:
        test_probs = torch.softmax(predict_logits(model, data.test_images, run.normalize), 1)
        clock("test set")
    predicted = test_probs.argmax(1)
    outputs, scopes = row_outputs(model, to_input(images, run.normalize), len(report.layers))
    modules = dict(model.named_modules())
    rows, acts, kerns = [], [], {}
    warned: list[str] = []
    for i, layer in enumerate(report.layers):
        rows.append(
            {
                "name": layer.name,
                "type": layer.type,
                "input": list(layer.input),
                "output": list(layer.output) if layer.output is not None else None,
                "formula": layer.formula,
                "inputs": list(layer.inputs),
                "functional": layer.functional,
                "params": layer.params,  # a layer called twice: on its first row
                "macs": layer.macs,  # each call's
                "blocks": scopes[i] if i < len(scopes) else [],
            }
        )
        acts.append(activation(outputs[i]))
        module = modules.get(layer.name) if not layer.functional else None
        found = kernels(module) if module is not None else None
        if found is not None:
            kerns[i] = found
    clock("activations")
    live = _live(model, run.normalize, images, outputs)
    clock("live")
    if live.onnx is None:  # the page still shows everything else, and says why
        warned.append(f"{run.name}: not live in the page: {live.why}")
    targets = predicted[list(indices)]
    chosen = check_methods(methods)
    skipped = {}
    why = gradient_problem(model, to_input(images[:1], run.normalize))
    if why is not None:  # the gradient methods cannot run; occlusion needs no gradient
        skipped = {m: why for m in chosen if m not in GRADIENT_FREE}
        chosen = [m for m in chosen if m in GRADIENT_FREE]
        warned.append(f"{run.name}: {why}; its page shows no {', '.join(skipped)} maps")
    # Grad-CAM's layer from the rows already traced, not from another pass per chunk
    layer = gradcam_layer(model, rows=report.layers) if "gradcam" in chosen else None
    attributions, more = (
        attribute_images(
            model, images, targets, normalize=run.normalize, methods=chosen, layer=layer
        )
        if chosen
        else ([], {})
    )
    skipped.update(more)
    clock("attributions")
    cells: dict[str, list[int]] = {}
    learned = seen(run, labels)
    for position, index in enumerate(indices):
        if not learned[index]:  # the class it never saw: not in its confusion matrix
            continue
        key = f"{int(labels[index])},{int(predicted[index])}"
        cells.setdefault(key, []).append(position)
    return RunExport(
        name=run.name,
        label=run.label,
        accuracy=float((predicted == labels)[learned].float().mean()),
        params=counts.total_params,
        macs=counts.total_macs,
        normalize=run.normalize,
        rows=rows,
        activations=acts,
        kernels=kerns,
        probs=test_probs[list(indices)],
        confusion=confusion_matrix(
            predicted[learned], labels[learned], test_probs.shape[1]
        ).tolist(),
        cells=cells,
        methods=[
            {"name": a.method, "title": a.title, "settings": a.settings, "signed": a.signed}
            for a in attributions
        ],
        skipped=skipped,
        attributions={a.method: attribution_maps(a.map, a.signed) for a in attributions},
        notes=notes,
        warnings=warned,
        live=live,
    )


def _live(model: nn.Module, normalize, images: torch.Tensor, outputs) -> LiveModel:
    """The model as an ONNX graph for the page, checked on the exported ``images``."""
    from archlab._modes import in_mode
    from archlab.explorer.onnx import export_live
    from archlab.training.predict import to_input

    with in_mode(model), torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        logits = model(to_input(images, normalize))
    if isinstance(logits, (tuple, list)) and logits:
        logits = logits[0]
    if not isinstance(logits, torch.Tensor) or logits.dim() != 2:
        return LiveModel(None, why="its output is not one score per class")
    return export_live(model, normalize, to_input(images), outputs, logits)
