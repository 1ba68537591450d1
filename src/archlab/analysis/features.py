"""What the layers hold: convolution kernels and the activations of one image."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass, field

import torch
from torch import nn

from archlab._modes import in_mode
from archlab._report import Report
from archlab._table import Table
from archlab.errors import ArchlabError
from archlab.models import IMAGE_SHAPE
from archlab.training.predict import model_device, to_input


def conv_layers(model: nn.Module) -> list[str]:
    """Qualified names of the model's 2-d convolutions, in registration order."""
    return [n for n, m in model.named_modules() if isinstance(m, nn.Conv2d)]


def filter_weights(model: nn.Module, layer: str | None = None) -> tuple[str, torch.Tensor]:
    """A convolution's kernels ``(out, in, k, k)``, detached on the CPU.

    Args:
        model: the model.
        layer: a qualified name such as ``"layer2.0"``. Default: the first convolution.

    A model without convolutions gets a one-line reason (:class:`~archlab.ArchlabError`).

    Example::

        >>> from archlab.analysis.features import filter_weights
        >>> layer, weights = filter_weights(archlab.create_model("cnn"), "layer2.0")
        >>> tuple(weights.shape)
        (64, 32, 3, 3)
    """
    names = conv_layers(model)
    if not names:
        raise ArchlabError(f"{type(model).__name__} has no convolution, so no filters to show")
    layer = layer or names[0]
    if layer not in names:
        raise ArchlabError(f"no convolution {layer!r}; choose from {', '.join(names)}")
    return layer, dict(model.named_modules())[layer].weight.detach().cpu().clone()


@contextlib.contextmanager
def capture(model: nn.Module, points: list[tuple[str, str, str]]) -> Iterator[dict]:
    """Record tensors at ``(module, "input"|"output", label)`` points during a forward
    pass; the hooks are removed on exit, even when the forward pass fails."""
    modules = dict(model.named_modules())
    captured: dict[str, torch.Tensor] = {}
    handles = []
    try:
        for name, where, label in points:
            if name not in modules:
                raise ArchlabError(f"no layer {name!r} in {type(model).__name__}")

            def keep(_m, args, output=None, label=label, where=where):
                # a copy: an in-place op after the point (ReLU(inplace=True)) would change it
                captured[label] = (args[0] if where == "input" else output).detach().clone()

            module = modules[name]
            if where == "input":
                handles.append(module.register_forward_pre_hook(keep))
            else:
                handles.append(module.register_forward_hook(keep))
        yield captured
    finally:
        for handle in handles:
            handle.remove()


def activation_points(model: nn.Module, input_shape=IMAGE_SHAPE) -> list[tuple[str, str, str]]:
    """Where to look inside a model, read off the rows of its trace.

    A network with feature maps is shown where its blocks end: the output of each of its
    top-level blocks that outputs maps (``layer1`` and ``layer2`` for the lecture's CNN);
    where the model is one flat stack, after each step that shrinks the maps (a pooling
    or strided layer) and at its last map. A network without maps is shown at its hidden
    representations: the input of every ``nn.Linear`` after the first (for the lecture's
    DNN, fc1 → ReLU and fc2 → ReLU).

    Returns:
        ``(module name, "input" | "output", label)`` points for :func:`capture`.

    Example:

        >>> [p[2] for p in archlab.analysis.features.activation_points(archlab.create_model("cnn"))]
        ['layer1', 'layer2']
    """
    from archlab.trace.record import row_module
    from archlab.trace.shapes import trace_shapes

    report = trace_shapes(model, tuple(input_shape))
    if report.error is not None:
        raise ArchlabError(f"{type(model).__name__}: {report.error}")
    modules = dict(model.named_modules())
    calls: list[tuple[str, tuple, tuple]] = []  # (leaf, input shape, output shape) per image
    for row in report.layers:
        module = row_module(row, modules, model)
        if module is not None and next(module.children(), None) is None and row.output:
            calls.append((row.name, tuple(row.input), tuple(row.output)))
    maps = [(n, i, o) for n, i, o in calls if len(o) == 3]
    if maps:
        last_of_block: dict[str, str] = {}
        for n, _, _ in maps:
            if "." in n:
                last_of_block[n.split(".")[0]] = n
        blocks = [
            b
            for b, leaf in last_of_block.items()
            if leaf == _last_call(calls, b) and _contiguous(calls, b)
        ]
        if len(blocks) >= 2:
            return [(last_of_block[b], "output", b) for b in blocks]
        shrinks = [n for n, i, o in maps if o[1:] < i[1:] and _downsamples(modules[n])]
        points = list(dict.fromkeys([*shrinks, maps[-1][0]]))
        return [(n, "output", _block_label(n, [c[0] for c in calls])) for n in points]
    linears = [n for n, m in model.named_modules() if isinstance(m, nn.Linear)]
    called = [n for n, _, _ in calls if n in linears]
    return [(n, "input", f"into {n}") for n in list(dict.fromkeys(called))[1:]]


def _contiguous(calls: list, block: str) -> bool:
    """Whether ``block``'s calls run one after another: a block, not a container (an
    ``nn.ModuleList`` looped over beside another one interleaves them)."""
    at = [i for i, (n, _, _) in enumerate(calls) if n.startswith(block + ".")]
    return at == list(range(at[0], at[-1] + 1)) if at else False


def _last_call(calls: list, block: str) -> str | None:
    inside = [n for n, _, _ in calls if n.startswith(block + ".")]
    return inside[-1] if inside else None


def _downsamples(module: nn.Module) -> bool:
    """A pooling layer, or a layer that steps by more than one pixel."""
    if isinstance(module, nn.modules.pooling._MaxPoolNd | nn.modules.pooling._AvgPoolNd):
        return True
    if "Adaptive" in type(module).__name__:
        return True
    stride = getattr(module, "stride", 1)
    return any(s > 1 for s in (stride if isinstance(stride, tuple) else (stride,)))


def _block_label(leaf: str, order: list[str]) -> str:
    """The outermost block that ``leaf`` closes (``layer1.3`` → ``layer1``), else the leaf."""
    parts = leaf.split(".")
    for k in range(1, len(parts)):
        prefix = ".".join(parts[:k])
        inside = [n for n in order if n.startswith(prefix + ".")]
        if inside and inside[-1] == leaf:
            return prefix
    return leaf


def activation_maps(
    model: nn.Module,
    image: torch.Tensor,
    normalize: tuple[float, float] | None = None,
    layers: list[str] | None = None,
) -> dict[str, torch.Tensor]:
    """The activations where each block ends, for one uint8 ``(H, W)`` image.

    Args:
        model: the model.
        image: uint8 pixels ``(H, W)``.
        normalize: the (mean, std) it was trained with. Default: none.
        layers: module names whose outputs to show instead. Default: derived from the
            model (:func:`activation_points`).

    Returns:
        ``{label: tensor}``: ``(C, H, W)`` maps for a conv net's blocks (the lecture's CNN:
        layer1 32×14×14, layer2 64×6×6), ``(units,)`` for an MLP's hidden layers.

    Example:

        >>> from archlab.analysis.features import activation_maps
        >>> acts = activation_maps(archlab.create_model("cnn"), torch.zeros(28, 28))
        >>> {k: tuple(v.shape) for k, v in acts.items()}
        {'layer1': (32, 14, 14), 'layer2': (64, 6, 6)}
    """
    shape = (1, *image.shape)
    if layers:
        known = dict(model.named_modules())
        unknown = [n for n in layers if n not in known or not n]
        if unknown:
            raise ArchlabError(f"--layer {unknown[0]!r}: no such layer in {type(model).__name__}")
        points = [(n, "output", n) for n in layers]
    else:
        points = activation_points(model, shape)
    if not points:
        raise ArchlabError(f"{type(model).__name__} has no hidden layers to show")
    with in_mode(model), capture(model, points) as captured, torch.no_grad():
        model(to_input(image.unsqueeze(0).to(model_device(model)), normalize))
    return {label: t[0].cpu() for label, t in captured.items()}


@dataclass
class Filters(Report):
    """A convolution's kernels: what :func:`filters` returns.

    ``weights`` is ``(out, in, k, k)``; ``.plot(ax=None)`` draws them on one diverging scale
    centred at 0 (Jupyter shows the picture).

    Example::

        >>> f = archlab.filters(archlab.create_model("cnn"), "layer1.0")
        >>> f.layer, tuple(f.weights.shape)
        ('layer1.0', (32, 1, 3, 3))
    """

    model: str
    layer: str
    weights: torch.Tensor
    layers: list[str] = field(default_factory=list)  # every convolution, to choose from
    _shows_figure = True

    def _parts(self) -> list[Table | str]:
        w = self.weights
        return [
            f"{self.model}: {self.layer} holds {w.shape[0]}×{w.shape[1]} kernels of "
            f"{w.shape[2]}×{w.shape[3]}, values {float(w.min()):+.3f} to {float(w.max()):+.3f} "
            f"(convolutions: {', '.join(self.layers)})"
        ]

    def plot(self, ax=None):
        from archlab.viz.features import plot_filters

        return plot_filters(self.weights, f"{self.model}: {self.layer}", ax)


def filters(model, layer: str | None = None, *, runs: str | os.PathLike = "runs") -> Filters:
    """A model's convolution kernels.

    Args:
        model: a :class:`~archlab.Run`, a run's spec or folder name (its trained weights,
            from ``runs``), or an ``nn.Module`` (its weights as they are).
        layer: a convolution's qualified name such as ``"layer2.0"``. Default: the first.
        runs: the runs folder, when ``model`` is a name. Default: ``"runs"``.

    Example::

        >>> archlab.filters(archlab.create_model("cnn")).layer
        'layer1.0'
    """
    net, name, _ = _model_of(model, runs)
    layer, weights = filter_weights(net, layer)
    return Filters(name, layer, weights, conv_layers(net))


@dataclass
class Activations(Report):
    """The feature maps one image makes where each block ends: what :func:`activations`
    returns. ``maps[label]`` is ``(C, H, W)`` for a conv block, ``(units,)`` for a hidden
    Linear layer; ``.plot()`` draws every block, ``.plot(ax)`` the first block's mosaic.

    Example::

        >>> a = archlab.activations(archlab.create_model("cnn"), image=torch.zeros(28, 28))
        >>> {k: tuple(v.shape) for k, v in a.maps.items()}
        {'layer1': (32, 14, 14), 'layer2': (64, 6, 6)}
    """

    model: str
    image: torch.Tensor  # (H, W) uint8
    maps: dict[str, torch.Tensor]
    index: int | None = None
    label: int | None = None
    _shows_figure = True

    @property
    def title(self) -> str:
        from archlab.training.data import CLASSES

        which = f"test image {self.index}" if self.index is not None else "the image"
        true = f" ({CLASSES[self.label]})" if self.label is not None else ""
        return f"{self.model}: activations of {which}{true}"

    def _parts(self) -> list[Table | str]:
        from archlab.trace.formulas import fmt_shape

        rows = [
            [
                k,
                fmt_shape(tuple(v.shape)),
                f"{float(v.min()):.3f}",
                f"{float(v.max()):.3f}",
                f"{100 * float((v <= 0).float().mean()):.0f} %",
            ]
            for k, v in self.maps.items()
        ]
        return [Table(["block", "shape", "min", "max", "≤ 0"], rows, self.title)]

    def plot(self, ax=None):
        from archlab.viz.features import plot_activation_block, plot_activations

        if ax is None:
            return plot_activations(self.maps, self.title)
        name = next(iter(self.maps))
        return plot_activation_block(self.maps[name], name, ax)


def activations(
    model,
    index: int = 42,
    *,
    image: torch.Tensor | None = None,
    layers: list[str] | None = None,
    runs: str | os.PathLike = "runs",
    data=None,
) -> Activations:
    """The activations one image makes where each block of a model ends.

    Args:
        model: a :class:`~archlab.Run`, a run's spec or folder name (loaded from ``runs``),
            or an ``nn.Module`` (as it is, inputs not normalised).
        index: which test image, 0-9999. Default: 42.
        image: uint8 pixels ``(H, W)`` instead of a test image. Default: None.
        layers: module names whose outputs to show instead of the blocks' ends. Default:
            derived from the model.
        runs: the runs folder, when ``model`` is a name. Default: ``"runs"``.
        data: the dataset. Default: :func:`~archlab.load_fashion_mnist`.

    Returns:
        An :class:`Activations` report.

    Example::

        >>> a = archlab.activations("cnn", 42)   # doctest: +SKIP
    """
    from archlab.analysis._image import pick_image

    net, name, normalize = _model_of(model, runs)
    image, label, index = pick_image(index, image, None, data, size=None)
    maps = activation_maps(net, image, normalize, layers)
    return Activations(name, image, maps, index, label)


def _model_of(model, runs) -> tuple[nn.Module, str, tuple[float, float] | None]:
    """``(module, name, normalize)`` of a module as it is, or of a trained run."""
    if isinstance(model, nn.Module):
        return model, type(model).__name__, None
    from archlab.training.run import as_run

    run = as_run(model, runs)
    return run.model, run.name, run.normalize
