"""Parameter and multiply-accumulate counts, layer by layer: a view of the trace's rows.

The rows of :func:`~archlab.trace_shapes` hold each layer's parameters and MACs
(:mod:`archlab.trace.record`); this module lists them by layer and totals them. The MACs
are the multiply-adds each layer performs (:mod:`archlab.trace.macs` states the rule for
every layer type): conv1 of the lecture's CNN does 32·9·28·28 = 225,792. Parameter counts
come from the modules themselves (torchinfo is the tests' check of them).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

from torch import nn

from archlab import _table
from archlab._report import Report
from archlab.errors import ArchlabError
from archlab.models.spec import resolve_model, user_code, what_ifs
from archlab.trace.formulas import Shape, fmt_shape
from archlab.trace.macs import CONVENTION
from archlab.trace.record import claim, row_module


@dataclass
class LayerParams:
    """One layer's parameters (its own, not its children's) and MACs per image."""

    name: str
    type: str
    weight: Shape | None
    bias: Shape | None
    params: int
    trainable: int
    macs: int


@dataclass
class ParamReport(Report):
    """The result of :func:`count_params`; prints as a table, renders as HTML in Jupyter.

    Example::

        >>> report = archlab.count_params("cnn")
        >>> report.total_params, report.total_macs
        (1475338, 4369904)
    """

    model: str
    input_shape: Shape
    layers: list[LayerParams] = field(default_factory=list)
    total_params: int = 0
    trainable_params: int = 0
    total_macs: int = 0
    overrides: list[str] = field(default_factory=list)  # the what-ifs, for the title

    def to_dict(self) -> dict:
        return asdict(self)

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    def plot(self, ax=None):
        """Each layer's share of the parameters and of the multiply-accumulates (bars)."""
        from archlab.viz.architecture import plot_params

        return plot_params(self, ax)

    _HEADERS = (
        "layer",
        "type",
        "weight",
        "bias",
        "params",
        "% params",
        "trainable",
        "MACs",
        "% MACs",
    )

    def _rows(self) -> list[list[object]]:
        def share(part: int, whole: int) -> str:
            return f"{100 * part / whole:.1f}%" if whole else "-"

        rows = []
        for layer in self.layers:
            trainable = (
                "-"
                if layer.params == 0
                else "yes"
                if layer.trainable == layer.params
                else "no"
                if layer.trainable == 0
                else "partly"
            )
            rows.append(
                [
                    layer.name,
                    layer.type,
                    fmt_shape(layer.weight) if layer.weight else "",
                    fmt_shape(layer.bias) if layer.bias else "",
                    f"{layer.params:,}",
                    share(layer.params, self.total_params),
                    trainable,
                    f"{layer.macs:,}",
                    share(layer.macs, self.total_macs),
                ]
            )
        rows.append(
            [
                "total",
                "",
                "",
                "",
                f"{self.total_params:,}",
                "100.0%",
                f"{self.trainable_params:,}",
                f"{self.total_macs:,}",
                "100.0%",
            ]
        )
        return rows

    def _title(self) -> str:
        shape = fmt_shape(self.input_shape)
        # named as `archlab shapes` and `draw` name a what-if
        changed = f" with {', '.join(self.overrides)}" if self.overrides else ""
        return f"{self.model}{changed}: parameters and multiply-accumulates per {shape} image"

    def _parts(self) -> list[_table.Table | str]:
        return [_table.Table(self._HEADERS, self._rows(), self._title()), CONVENTION]


def count_params(
    model, input_shape: Sequence[int] | None = None, overrides: Sequence[str] = ()
) -> ParamReport:
    """Count parameters and multiply-accumulates per layer, for one input image.

    A view of :func:`~archlab.trace_shapes`' rows (one traced forward pass): one line per
    layer the forward pass calls (a layer called twice: once, its MACs summed), then any
    module whose parameters no row holds (a parameter used in ``forward`` itself, a layer
    never called). MACs follow :mod:`archlab.trace.macs`: the multiply-adds each layer
    performs, weights only (the lecture's CNN: 4,369,904; torchinfo, which adds one per
    bias per output element and counts BatchNorm per parameter, says 4,370,826).

    Args:
        model: a spec (``"cnn"``, ``"file.py:Class"``...), an ``nn.Module`` or a
            trained :class:`~archlab.Run`.
        input_shape: per-sample ``(C, H, W)``. Default: the model's, else (1, 28, 28).
        overrides: what-ifs, e.g. ``["layer2.0.padding=1"]``. Default: none.

    Returns:
        A :class:`ParamReport`.

    Example::

        >>> archlab.count_params("cnn").total_params
        1475338
    """
    from archlab.trace.shapes import trace_shapes

    built, name = resolve_model(model, overrides)
    from archlab.models import IMAGE_SHAPE

    default = getattr(built, "input_shape", IMAGE_SHAPE)
    shape = tuple(input_shape) if input_shape is not None else tuple(default)
    with user_code(f"tracing {name}"):
        report = trace_shapes(built, shape)
    if report.error is not None:
        raise ArchlabError(
            f"{name}: {report.error}", 1, cli_message=f"{name}: {report.error.render(flags=True)}"
        )
    counts = param_report(report, built, name)
    counts.overrides = what_ifs(model, overrides)
    return counts


def param_report(report, model: nn.Module, name: str | None = None) -> ParamReport:
    """The parameters and MACs view of a trace's rows (no forward pass of its own).

    Args:
        report: ``trace_shapes(model, ...)``'s :class:`~archlab.trace.shapes.ShapeReport`,
            unfolded (no ``depth``).
        model: the model it traced.
        name: the report's model name. Default: the trace's.

    Returns:
        A :class:`ParamReport`.

    Example:

        >>> model = archlab.create_model("dnn")
        >>> param_report(archlab.trace_shapes(model), model).total_macs
        234752
    """
    if report.depth is not None:
        raise ArchlabError("param_report needs the unfolded rows: trace with depth=None")
    modules = dict(model.named_modules())
    layers: dict[int, LayerParams] = {}
    counted: set[int] = set()  # parameter tensors counted: a tied weight at its first layer
    for row in report.layers:
        module = row_module(row, modules, model)
        if module is None:
            continue
        if id(module) in layers:
            layers[id(module)].macs += row.macs  # a second call: the same weights, more MACs
            continue
        layers[id(module)] = _layer(row.name, module, row.macs, counted=counted)
        layers[id(module)].params = row.params  # the row's count: one record, two views
    for module_name, module in modules.items():  # parameters no row holds
        own = sum(p.numel() for p in module.parameters(recurse=False) if id(p) not in counted)
        if own and id(module) not in layers and not _inside_unit(module_name, modules, layers):
            name = module_name or type(module).__name__
            layers[id(module)] = _layer(name, module, 0, False, counted=counted)
    params = list(dict.fromkeys(model.parameters()))  # a tied weight counts once
    return ParamReport(
        name or report.model,
        tuple(report.input_shape),
        list(layers.values()),
        total_params=sum(p.numel() for p in params),
        trainable_params=sum(p.numel() for p in params if p.requires_grad),
        total_macs=sum(layer.macs for layer in layers.values()),
    )


def _layer(
    name: str, module: nn.Module, macs: int, recurse: bool = True, *, counted: set[int]
) -> LayerParams:
    """A layer's line: its parameters (with its children's where it is one unit, as
    ``nn.MultiheadAttention``) not ``counted`` at an earlier layer (a tied weight counts
    at its first; ``counted`` grows by this layer's), the shapes of its own weight and
    bias, its MACs."""
    own = dict(module.named_parameters(recurse=False))
    weight, bias = own.get("weight"), own.get("bias")
    every = claim(module.parameters(recurse=recurse), counted)
    return LayerParams(
        name=name,
        type=type(module).__name__,
        weight=tuple(weight.shape) if weight is not None else None,
        bias=tuple(bias.shape) if bias is not None else None,
        params=sum(p.numel() for p in every),
        trainable=sum(p.numel() for p in every if p.requires_grad),
        macs=macs,
    )


def _inside_unit(name: str, modules: dict[str, nn.Module], layers: dict) -> bool:
    """A child of a layer counted as one unit (``nn.MultiheadAttention``'s ``out_proj``)."""
    parts = name.split(".")
    return any(id(modules.get(".".join(parts[:k]))) in layers for k in range(1, len(parts)))


@dataclass
class ParamComparison(Report):
    """Totals of several models side by side (what ``archlab params dnn cnn`` ends with)."""

    reports: list[ParamReport]

    _HEADERS = ("model", "parameters", "trainable", "MACs per image", "MACs per parameter")

    def _rows(self) -> list[list[object]]:
        return [
            [
                r.model,
                f"{r.total_params:,}",
                f"{r.trainable_params:,}",
                f"{r.total_macs:,}",
                f"{r.total_macs / r.total_params:.2f}" if r.total_params else "-",
            ]
            for r in self.reports
        ]

    def _parts(self) -> list[_table.Table | str]:
        parts: list[_table.Table | str] = [_table.Table(self._HEADERS, self._rows(), "comparison")]
        parts.append(CONVENTION)
        if len(self.reports) == 2:
            a, b = self.reports
            if a.total_params and a.total_macs:  # a parameterless model has no ratio
                parts.append(
                    f"{b.model} has {b.total_params / a.total_params:.2f}× the parameters of "
                    f"{a.model} and does {b.total_macs / a.total_macs:.2f}× the "
                    "multiply-accumulates"
                )
        return parts


def compare_params(reports: Sequence[ParamReport]) -> ParamComparison:
    """Put several :class:`ParamReport` totals side by side.

    Example::

        >>> reports = [archlab.count_params("dnn"), archlab.count_params("cnn")]
        >>> "1,475,338" in str(archlab.trace.params.compare_params(reports))
        True
    """
    return ParamComparison(list(reports))


@dataclass
class ModelTable(_table.Tabular):
    """The registered models with their group, parameters and MACs (``archlab models``).

    ``rows`` holds ``(name, group, parameters, MACs per image, accuracy, description)`` per
    model; accuracy is the card's measured test accuracy (%) after 5 epochs, or None.
    """

    rows: list[tuple[str, str, int, int, float | None, str]]

    _HEADERS = ("model", "group", "parameters", "MACs per image", "accuracy", "description")

    def _parts(self) -> list[_table.Table | str]:
        rows = [
            [n, g, f"{p:,}", f"{m:,}", f"{a:.2f}%" if a is not None else "-", d]
            for n, g, p, m, a, d in self.rows
        ]
        note = "accuracy: test accuracy after 5 epochs, seed 0, measured by benchmarks/zoo.py"
        return [_table.Table(self._HEADERS, rows), note, CONVENTION]


def model_table(group: str | None = None) -> ModelTable:
    """Every registered model (or one group's) with its parameters and MACs per image.

    The counts are :func:`count_params`'s for the model's own input shape.

    Args:
        group: only this group's models, e.g. ``"zoo"``. Default: all groups.

    Returns:
        A :class:`ModelTable`; ``print`` it for the table ``archlab models`` shows.

    Example:

        >>> table = archlab.trace.params.model_table("lecture")
        >>> [(name, params, macs) for name, _, params, macs, _, _ in table.rows]
        [('cnn', 1475338, 4369904), ('dnn', 235146, 234752)]
    """
    from archlab.models import list_models, model_card

    rows = []
    for name in list_models(group):
        report = count_params(name)
        card = model_card(name)
        accuracy = card.measured.get("accuracy")
        rows.append(
            (name, card.group, report.total_params, report.total_macs, accuracy, card.description)
        )
    return ModelTable(rows)
