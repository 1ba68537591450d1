"""Figures of a model's insides: its convolution kernels and its feature maps."""

from __future__ import annotations

import matplotlib
import torch
from matplotlib.figure import Figure

from archlab._text import plural
from archlab.trace.formulas import fmt_shape
from archlab.viz._figure import _symmetric, figure, subplots, wrap_title

MOST_TILES = 128  # kernels drawn at most: more are not read on a slide


def plot_filters(weights, layer: str, ax=None) -> Figure:
    """Convolution kernels as a grid on one diverging scale centred at 0, with a colour bar.

    ``weights`` is ``(out, in, k, k)``. With one input channel, each kernel is a tile (a
    4×8 grid for layer1.0's 32); with several, each output map's tile is the mean of its
    kernels over the input maps (layer2.0: 64 tiles, where all its kernels are 2,048), and
    the title says so. At most the first 128 are drawn (the title says so too), so that
    the figure fits a 16:9 slide.

    Example::

        >>> from archlab.viz import plot_filters
        >>> len(plot_filters(torch.randn(32, 1, 3, 3), "layer1.0").axes)  # and a colour bar
        2
    """
    out_c, in_c, kh, kw = weights.shape
    shown_c = min(out_c, MOST_TILES)
    if in_c == 1:
        kernels = weights[:shown_c, 0]
        note = f"{plural(out_c, 'kernel')} {kh}×{kw}"
    else:
        # all 64 × 32 kernels of layer2.0 are 2,048 tiles: unreadable at any size; the
        # mean over the input maps keeps one tile per output map, on the same scale
        kernels = weights[:shown_c].mean(1)
        note = f"{plural(out_c, 'kernel')} {kh}×{kw}, each the mean over its {in_c} input maps"
    if shown_c < out_c:
        note += f" (the first {shown_c})"
    vmax = _symmetric(kernels)
    gap = 1
    cols = 8 if shown_c <= 64 else 16
    cols = min(shown_c, cols)
    rows = -(-shown_c // cols)
    tiles = [(i // cols, i % cols, kernels[i]) for i in range(shown_c)]
    canvas = torch.full((rows * (kh + gap) - gap, cols * (kw + gap) - gap), float("nan"))
    for r, c, k in tiles:
        canvas[r * (kh + gap) : r * (kh + gap) + kh, c * (kw + gap) : c * (kw + gap) + kw] = k
    if ax is None:
        # tiles of at most 0.5 in, the grid within a 16:9 slide's 13.33 × 7.5 in
        tile = min(0.5, 11.0 / cols, 6.0 / rows)
        width = max(5.0, tile * cols + 1.5)
        fig, ax = subplots(figsize=(width, max(3.0, tile * rows + 1.0)), layout="constrained")
    fig = ax.figure
    cmap = matplotlib.colormaps["RdBu_r"].with_extremes(bad="white")
    shown = ax.imshow(canvas.numpy(), cmap=cmap, vmin=-vmax, vmax=vmax, interpolation="nearest")
    fig.colorbar(shown, ax=ax, fraction=0.046, pad=0.02, label="weight")
    ax.set_title(wrap_title(f"{layer}: {note}", fig.get_figwidth() - 1.0, 12), fontsize=12)
    ax.set_axis_off()
    return fig


def _mosaic(maps: torch.Tensor, cols: int, gap: int = 1) -> torch.Tensor:
    """``(C, H, W)`` maps tiled ``cols`` to a row, NaN between them (drawn as background).

    Example:

        >>> archlab.viz.features._mosaic(torch.ones(3, 2, 2), cols=2).shape
        torch.Size([5, 5])
    """
    c, h, w = maps.shape
    cols = min(cols, c)
    rows = -(-c // cols)
    out = torch.full((rows * (h + gap) - gap, cols * (w + gap) - gap), float("nan"))
    for i in range(c):
        r, k = divmod(i, cols)
        out[r * (h + gap) : r * (h + gap) + h, k * (w + gap) : k * (w + gap) + w] = maps[i]
    return out


def plot_activations(activations, title: str = "") -> Figure:
    """Feature maps (``(C, H, W)``, a grid per block) or hidden units (``(N,)``, a strip).

    Example::

        >>> from archlab.viz import plot_activations
        >>> maps = {"layer1": torch.rand(32, 14, 14), "fc1": torch.rand(600)}
        >>> plot_activations(maps, "random maps")._suptitle.get_text()
        'random maps'
    """
    names = list(activations)
    heights = []
    for name in names:
        a = activations[name]
        heights.append(1.2 if a.dim() == 1 else 1.0 + 0.55 * -(-a.shape[0] // 16))
    fig = figure(figsize=(12, sum(heights) + 0.8), layout="constrained")
    subfigs = fig.subfigures(len(names), 1, height_ratios=heights, squeeze=False)[:, 0]
    for sub, name in zip(subfigs, names, strict=True):
        ax = sub.subplots()
        shown, text = _block(activations[name], name, ax)
        if shown is not None:
            sub.colorbar(shown, ax=ax, fraction=0.02, pad=0.01)
        sub.suptitle(text, fontsize=11)
    if title:
        fig.suptitle(title, fontsize=13)
    return fig


def plot_activation_block(maps, name: str, ax) -> Figure:
    """One block's feature maps (a mosaic) or hidden units (a strip) on ``ax``."""
    _, text = _block(maps, name, ax)
    ax.set_title(text, fontsize=11)
    return ax.figure


def _block(a, name: str, ax):
    """Draw one block on ``ax``; returns (the image to give a colour bar, or None; title)."""
    a = a.detach().cpu()
    if a.dim() == 1:
        shown = ax.imshow(a[None].numpy(), aspect="auto", cmap="viridis", interpolation="nearest")
        ax.set_yticks([])
        ax.set_xlabel("unit")
        return shown, f"{name}: {plural(a.shape[0], 'unit')}"
    ax.set_axis_off()
    # each map on its own colour scale: mid-network maps differ in size by orders of
    # magnitude, and on one scale shared by 64 channels all but the largest looked alike
    # (dark); the title says so, and a map that is zero everywhere stays dark
    scaled, signed = per_map_scale(a)
    cmap = matplotlib.colormaps["RdBu_r" if signed else "viridis"].with_extremes(bad="white")
    # one mosaic, 16 maps to a row with a 1-pixel gap: one image instead of one axis
    # per map (192 axes made `archlab activations` spend seconds on layout)
    mosaic = _mosaic(scaled, cols=16).numpy()
    ax.imshow(mosaic, cmap=cmap, vmin=-1 if signed else 0, vmax=1, interpolation="nearest")
    size = fmt_shape(a.shape[1:])
    scale = "−its largest |value| to +it" if signed else "0 to its own maximum"
    return None, f"{name}: {plural(a.shape[0], 'map')} of {size}, each coloured from {scale}"


def per_map_scale(maps: torch.Tensor) -> tuple[torch.Tensor, bool]:
    """``(C, H, W)`` maps each divided by its own largest ``|value|`` (a map of zeros stays
    zero), and whether any value is negative (then the range is −1 to 1, else 0 to 1).

    Example:

        >>> maps = torch.stack([torch.full((2, 2), 0.01), torch.full((2, 2), 50.0)])
        >>> scaled, signed = archlab.viz.features.per_map_scale(maps)
        >>> scaled.amax((1, 2)).tolist(), signed
        ([1.0, 1.0], False)
    """
    peak = maps.abs().amax(dim=(1, 2), keepdim=True)
    scaled = maps / torch.where(peak > 0, peak, torch.ones_like(peak))
    return scaled, bool((maps < 0).any())
