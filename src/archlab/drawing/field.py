"""The receptive field of one unit, drawn on the input image to scale.

``archlab draw cnn --field layer2.3`` answers "how much of the 28×28 image does one unit
of layer2 see?": the image at one square per pixel, the pixels the chosen unit sees
inside the image filled, and its textbook field (which may reach into the padding) as a
dashed outline. The numbers come from the trace's receptive fields
(:mod:`archlab.trace.receptive`), the same the ``field`` column of ``archlab shapes``
prints.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from archlab._report import Report
from archlab._table import Table
from archlab.errors import ArchlabError
from archlab.trace.formulas import fmt_shape


@dataclass
class FieldPicture(Report):
    """One unit's receptive field on the input: what :func:`draw_field` returns.

    ``seen`` is ``((top, bottom), (left, right))``, the input pixels (inclusive) the unit
    sees inside the image; ``full`` the same for the textbook field, padding included.

    Example::

        >>> picture = archlab.drawing.field.draw_field("cnn", "layer2.3")
        >>> picture.unit, picture.seen, picture.full
        ((3, 3), ((11, 20), (11, 20)), ((11, 20), (11, 20)))
    """

    model: str
    layer: str
    unit: tuple[int, ...]
    grid: tuple[int, ...]  # units of the layer per spatial axis
    seen: tuple[tuple[int, int], ...]
    full: tuple[tuple[int, int], ...]
    input_shape: tuple[int, ...]
    image: torch.Tensor | None = None  # (H, W) to draw under the field, or None
    _shows_figure = True

    def _parts(self) -> list[Table | str]:
        (t, b), (left, r) = self.seen
        size = f"{b - t + 1}×{r - left + 1}"
        image = fmt_shape(self.input_shape[1:])
        unit = ",".join(map(str, self.unit))
        grid = fmt_shape(self.grid)
        return [
            f"{self.model}: unit ({unit}) of {self.layer} ({grid} units) sees {size} pixels "
            f"of the {image} image: rows {t}-{b}, columns {left}-{r}"
        ]

    def plot(self, ax=None):
        from matplotlib.patches import Rectangle

        from archlab.viz._figure import subplots

        h, w = self.input_shape[1:3]
        if ax is None:
            _, ax = subplots(figsize=(5.6, 5.6), layout="constrained")
        if self.image is not None:
            ax.imshow(self.image.numpy(), cmap="gray", vmin=0, vmax=255)
        else:
            ax.imshow(torch.full((h, w), 0.92).numpy(), cmap="gray", vmin=0, vmax=1)
        # the image's own edge: the field may reach past it into the padding
        ax.add_patch(Rectangle((-0.5, -0.5), w, h, fill=False, color="black", lw=1))
        (ft, fb), (fl, fr) = self.full
        (st, sb), (sl, sr) = self.seen
        ax.add_patch(
            Rectangle((sl - 0.5, st - 0.5), sr - sl + 1, sb - st + 1, color="tab:red", alpha=0.35)
        )
        ax.add_patch(
            Rectangle(
                (fl - 0.5, ft - 0.5),
                fr - fl + 1,
                fb - ft + 1,
                fill=False,
                ls="--",
                lw=1.5,
                color="tab:red",
            )
        )
        # the whole field, padding included, stays in view
        ax.set_xlim(min(-0.5, fl - 1), max(w - 0.5, fr + 1))
        ax.set_ylim(max(h - 0.5, fb + 1), min(-0.5, ft - 1))
        ax.set_xticks([0, w - 1])
        ax.set_yticks([0, h - 1])
        unit = ",".join(map(str, self.unit))
        ax.set_title(
            f"{self.model}: one unit ({unit}) of {self.layer} sees "
            f"{sb - st + 1}×{sr - sl + 1} pixels\n(filled; dashed: its field with padding, "
            f"{fb - ft + 1}×{fr - fl + 1})",
            fontsize=10,
        )
        return ax.figure


def draw_field(
    model,
    layer: str,
    input_shape: Sequence[int] | None = None,
    overrides: Sequence[str] = (),
    *,
    unit: Sequence[int] | None = None,
    index: int | None = None,
    image: torch.Tensor | None = None,
    data=None,
) -> FieldPicture:
    """The receptive field of one unit of ``layer`` on the input, to scale: the Python
    door to ``archlab draw MODEL --field LAYER --unit I,J --index N``.

    Args:
        model: a spec, an ``nn.Module`` or a trained run (as :func:`archlab.draw`).
        layer: a row of the trace (``archlab shapes`` names them), ``"layer2.3"``, or a
            block, ``"layer2"`` (its last row).
        input_shape: one sample's ``(C, H, W)``. Default: the model's.
        overrides: what-ifs. Default: none.
        unit: the unit's position ``(row, column)`` in the layer's output grid.
            Default: the middle unit.
        index: a test image to draw under the field (``--index``). Default: none.
        image: uint8 ``(H, W)`` to draw under the field, instead of a test image.
            Default: a plain grid.
        data: the dataset for ``index`` (:func:`~archlab.load_fashion_mnist`). Default:
            loaded.

    Returns:
        A :class:`FieldPicture`: print it, ``.plot()`` it, ``.save("field.png")``.

    Example::

        >>> archlab.draw_field("cnn", "layer1.0").seen
        ((13, 15), (13, 15))
        >>> archlab.draw_field("cnn", "layer2.3", unit=(0, 0)).seen
        ((0, 8), (0, 8))
    """
    from archlab.models.spec import resolve_model
    from archlab.trace.receptive import field_states, unit_box
    from archlab.trace.shapes import trace_shapes

    if index is not None and image is None:
        from archlab.analysis._image import pick_image

        image = pick_image(index, None, None, data)[0]
    built, name = resolve_model(model, overrides)
    from archlab.models import IMAGE_SHAPE

    shape = tuple(input_shape or getattr(built, "input_shape", IMAGE_SHAPE))
    if len(shape) != 3:
        raise ArchlabError(f"a receptive field is drawn on an image (C, H, W), not {shape}")
    report = trace_shapes(built, shape)
    if report.error is not None:
        raise ArchlabError(f"{name} does not run on {'×'.join(map(str, shape))}: {report.error}")
    rows = report.layers
    names = [r.name for r in rows]
    # a row's name, or a block's (resnet18's "layer3"): then the block's last row
    matches = [i for i, r in enumerate(rows) if r.name == layer] or [
        i for i, r in enumerate(rows) if r.name.startswith(layer + ".")
    ]
    if not matches:
        blocks = list(dict.fromkeys(n.split(".")[0] for n in names))
        raise ArchlabError(
            f"--field {layer!r}: no such layer; give a row of `archlab shapes` or a block "
            f"({', '.join(blocks)})"
        )
    states = field_states(report)
    state = states[matches[-1]]  # a block's name: its last row
    if state is None or len(state.axes) != 2:
        raise ArchlabError(f"{layer} has no spatial units (after a flatten or a global pool?)")
    grid = tuple(len(a) for a in state.axes)
    unit = tuple(unit) if unit is not None else tuple(g // 2 for g in grid)
    if len(unit) != 2 or not all(0 <= u < g for u, g in zip(unit, grid, strict=True)):
        raise ArchlabError(f"--unit {unit}: {layer} has {grid[0]}×{grid[1]} units")
    seen = unit_box(state, unit)
    full = tuple(a.full[u] for a, u in zip(state.axes, unit, strict=True))
    return FieldPicture(name, layer, unit, grid, seen, full, shape, image)
