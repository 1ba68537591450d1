"""Pictures of :class:`~archlab.analysis.channels.Channels`: a layer's overview grid of
synthesised images, and one channel's dataset examples and effective receptive field."""

from __future__ import annotations

import math

import torch

from archlab.viz._figure import _new_ax, figure, subplots

GAP = 2  # pixels between tiles


def mosaic(tiles: torch.Tensor, columns: int) -> torch.Tensor:
    """Tiles ``(K, H, W)`` laid out row by row ``columns`` wide, NaN between them.

    Example:

        >>> tuple(mosaic(torch.zeros(5, 28, 28), 3).shape)
        (58, 88)
    """
    k, h, w = tiles.shape
    rows = max(1, math.ceil(k / columns))
    out = torch.full((rows * (h + GAP) - GAP, columns * (w + GAP) - GAP), float("nan"))
    for i in range(k):
        r, c = divmod(i, columns)
        out[r * (h + GAP) : r * (h + GAP) + h, c * (w + GAP) : c * (w + GAP) + w] = tiles[i]
    return out


def plot_overview(layer, ax=None, title: str | None = None):
    """A layer's synthesised images in one grid, sorted by how often the channel fires
    (most first); dead channels crossed out in red. Returns the Figure."""
    fig, ax = _new_ax(ax, (6, 6))
    shown = sorted(layer.channels, key=lambda c: -c.fires)
    shown = [c for c in shown if c.synthesised is not None]
    ax.set_axis_off()
    if not shown:
        ax.set_title(f"{layer.layer}: no synthesised images", fontsize=9)
        return fig
    columns = max(1, math.ceil(math.sqrt(len(shown))))
    tiles = mosaic(torch.stack([c.synthesised for c in shown]), columns)
    ax.imshow(tiles.numpy(), cmap="gray", vmin=0, vmax=1)
    size = layer.channels[0].synthesised.shape[-1] + GAP
    for i, c in enumerate(shown):
        r, col = divmod(i, columns)
        ax.text(col * size, r * size, str(c.index), color="yellow", fontsize=6, va="top")
        if c.dead:
            x0, y0 = col * size, r * size
            ax.plot([x0, x0 + size - GAP], [y0, y0 + size - GAP], color="red", lw=1)
            ax.plot([x0, x0 + size - GAP], [y0 + size - GAP, y0], color="red", lw=1)
    ax.set_title(title or f"{layer.layer}: synthesised, by how often it fires", fontsize=9)
    return fig


def _examples(ax, images, indices, boxes, title: str) -> None:
    from matplotlib.patches import Rectangle

    tiles = torch.stack([images[i].float() / 255 for i in indices])
    ax.imshow(mosaic(tiles, 3).numpy(), cmap="gray", vmin=0, vmax=1)
    size = images.shape[-1] + GAP
    for j, box in enumerate(boxes):
        r, c = divmod(j, 3)
        r0, c0, r1, c1 = box
        ax.add_patch(
            Rectangle(
                (c * size + c0 - 0.5, r * size + r0 - 0.5),
                c1 - c0 + 1,
                r1 - r0 + 1,
                fill=False,
                edgecolor="red",
                lw=1,
            )
        )
    ax.set_title(title, fontsize=9)
    ax.set_axis_off()


def plot_channel(channel, images, field_size=None, axes=None, field_box=None):
    """One channel: synthesised image, top and bottom test images (the argmax unit's field
    outlined on the top ones), most relevant images and the effective receptive field with
    the theoretical field (``field_box``: ``(row0, col0, row1, col1)`` of the centre unit,
    outlined) and its size beside it. ``images`` are the test images ``(N, 28, 28)`` uint8.
    Draws on 5 ``axes`` when given. Returns the Figure."""
    if axes is None:
        fig, axes = subplots(1, 5, figsize=(15, 3.4), layout="constrained")
    fig = axes[0].figure
    name = f"{channel.layer}[{channel.index}]"
    if channel.synthesised is not None:
        axes[0].imshow(channel.synthesised.numpy(), cmap="gray", vmin=0, vmax=1)
        axes[0].set_title(f"{name} synthesised\n{channel.synthesised_value:.3f}", fontsize=9)
    axes[0].set_axis_off()
    _examples(
        axes[1],
        images,
        channel.top,
        channel.top_boxes,
        f"top 9 (best {channel.best_value:.3f})" + (" dead" if channel.dead else ""),
    )
    _examples(axes[2], images, channel.bottom, [], "bottom 9")
    if channel.relevant:
        _examples(axes[3], images, channel.relevant, [], "most relevant to the prediction")
    else:
        axes[3].set_axis_off()
    if channel.erf is not None:
        axes[4].imshow(channel.erf.numpy(), cmap="magma")
        if field_box is not None:
            from matplotlib.patches import Rectangle

            r0, c0, r1, c1 = field_box
            axes[4].add_patch(
                Rectangle((c0 - 0.5, r0 - 0.5), c1 - c0 + 1, r1 - r0 + 1, fill=False, ec="cyan")
            )
        width = "×".join(map(str, channel.erf_width))
        theory = "×".join(map(str, field_size)) if field_size else "?"
        axes[4].set_title(f"effective field {width}\n(theoretical {theory})", fontsize=9)
    axes[4].set_axis_off()
    return fig


def plot_channels(report, ax=None):
    """The whole report: one overview grid per layer, then the first channel in detail;
    on a given ``ax``, the first layer's overview grid alone. Returns the Figure."""
    if ax is not None or not report.layers:
        return plot_overview(report.layers[0], ax, f"{report.model}: {report.layers[0].layer}")
    n = len(report.layers)
    fig = figure(figsize=(max(15, 3.2 * n), 7.5), layout="constrained")
    grid = fig.add_gridspec(2, 1, height_ratios=[1.3, 1])
    top = grid[0].subgridspec(1, n)
    for i, layer in enumerate(report.layers):
        plot_overview(layer, fig.add_subplot(top[0, i]), f"{report.model}: {layer.layer}")
    first = report.layers[0]
    if report.test_images is not None and first.channels:
        below = grid[1].subgridspec(1, 5)
        axes = [fig.add_subplot(below[0, j]) for j in range(5)]
        plot_channel(first.channels[0], report.test_images, first.field_size, axes, first.field_box)
    return fig
