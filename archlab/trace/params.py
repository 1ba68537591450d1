"""Parameter and multiply-accumulate counts, layer by layer.

torchinfo already counts multiply-accumulates (MACs) per layer, so archlab takes them
from ``torchinfo.summary`` rather than re-deriving them; its convention counts one MAC
per weight per output position plus one per bias per output element (conv1: 32·9·28·28
+ 32·28·28 = 250,880). Parameter counts come from the modules themselves.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

from torch import nn

from archlab import _table
from archlab._report import Report
from archlab.errors import ArchlabError
from archlab.models.spec import resolve_model, user_code
from archlab.trace._limits import check_forward_memory
from archlab.trace.formulas import Shape, fmt_shape


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
        (1475338, 4370826)
    """

    model: str
    input_shape: Shape
    layers: list[LayerParams] = field(default_factory=list)
    total_params: int = 0
    trainable_params: int = 0
    total_macs: int = 0

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
        return f"{self.model}: parameters and multiply-accumulates per {shape} image"

    def _parts(self) -> list[_table.Table | str]:
        return [_table.Table(self._HEADERS, self._rows(), self._title())]


def count_params(
    model, input_shape: Sequence[int] | None = None, overrides: Sequence[str] = ()
) -> ParamReport:
    """Count parameters and multiply-accumulates per layer, for one input image.

    The totals equal ``torchinfo.summary(model, input_size=(1, *input_shape))``'s.

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
    built, name = resolve_model(model, overrides)
    from archlab.models import IMAGE_SHAPE

    default = getattr(built, "input_shape", IMAGE_SHAPE)
    shape = tuple(input_shape) if input_shape is not None else tuple(default)
    check_forward_memory(built, shape, f"counting {name}'s multiply-accumulates")
    _check_trace(built, shape, name)
    stats = _summary(built, shape, name)
    names = {id(m): n for n, m in built.named_modules()}
    layers, seen = [], set()
    for info in stats.summary_list:
        module = info.module
        own = list(module.named_parameters(recurse=False))
        if id(module) in seen or (not info.is_leaf_layer and not own):
            continue
        seen.add(id(module))
        weight = dict(own).get("weight")
        bias = dict(own).get("bias")
        layers.append(
            LayerParams(
                name=names.get(id(module), info.var_name),
                type=type(module).__name__,
                weight=tuple(weight.shape) if weight is not None else None,
                bias=tuple(bias.shape) if bias is not None else None,
                params=sum(p.numel() for _, p in own),
                trainable=sum(p.numel() for _, p in own if p.requires_grad),
                macs=int(info.macs),
            )
        )
    return ParamReport(
        name,
        shape,
        layers,
        total_params=int(stats.total_params),
        trainable_params=int(stats.trainable_params),
        total_macs=int(stats.total_mult_adds),
    )


def _check_trace(built: nn.Module, shape: tuple[int, ...], name: str) -> None:
    """The shape trace's checks first (exit 1, its diagnosis): torchinfo runs one image,
    so on its own it would count ``view(-1, 784)`` on a 3×28×28 image as three images."""
    from archlab.trace.shapes import trace_shapes

    with user_code(f"tracing {name}"):
        report = trace_shapes(built, shape)
    if report.error is not None:
        raise ArchlabError(
            f"{name}: {report.error}", 1, cli_message=f"{name}: {report.error.render(flags=True)}"
        )


def _summary(built: nn.Module, shape: tuple[int, ...], name: str):
    """torchinfo's summary of one forward pass; a pass that fails is diagnosed the way
    ``archlab shapes`` diagnoses it, in one line."""
    from torchinfo import summary

    from archlab._modes import in_mode

    # torchinfo's mode="eval" leaves the model in train mode after: put back each mode
    with in_mode(built), user_code(f"counting {name}'s multiply-accumulates"):
        try:
            return summary(built, input_size=(1, *shape), verbose=0, device="cpu", mode="eval")
        except RuntimeError as exc:  # torchinfo wraps what the forward pass raised
            if exc.__cause__ is None:
                raise
            failure = exc.__cause__
    text = str(failure).strip().splitlines()
    detail = f": {text[0]}" if text else ""
    raise ArchlabError(
        f"{name}: the forward pass on a {fmt_shape(shape)} input failed "
        f"({type(failure).__name__}{detail})",
        1,
    )


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
        return [_table.Table(self._HEADERS, rows), note]


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
        [('cnn', 1475338, 4370826), ('dnn', 235146, 235146)]
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
