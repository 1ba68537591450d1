"""The live half of the explorer: each run's model as an ONNX graph the page runs itself
(onnxruntime-web), on an image the student draws.

The model is exported by ``torch.onnx`` (the TorchScript exporter, ``dynamo=False``: it
needs no onnxscript) with the normalisation baked in, so the page feeds pixels in
``[0, 1]``. Every trace row's output becomes a graph output named ``row-I``: the exporter
does not know the rows, so the graph's intermediate values are evaluated (onnxruntime) on
the exported images and each row is matched to the value equal to its output in the trace
record (:func:`archlab.trace.record.row_outputs`), searched from the previous row's match
on, since both follow the forward pass's order. A row whose output no value equals stays
without (the page says so); a model the exporter refuses, or whose logits disagree with
PyTorch's, is not live, and ``why`` says why.
"""

from __future__ import annotations

import base64
import contextlib
import io
import math
import os
import sys
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

OPSET = 17  # onnxruntime-web 1.18 (the vendored runtime) runs opsets up to 20
INPUT = "image"  # the graph's input: (N, 1, 28, 28) pixels in [0, 1]
LOGITS = "logits"
AGREE = 1e-4  # largest |ONNX − PyTorch| accepted, relative to the largest |value| (at least 1)


@dataclass
class LiveModel:
    """One run's model for the page, or why it has none.

    ``onnx`` is the graph's bytes (None: not live, ``why`` says why); ``outputs[i]`` is
    row i's graph output name, or None where no value of the graph is that row's output;
    ``error`` is the largest difference from PyTorch over the logits and every row.
    """

    onnx: bytes | None
    outputs: list[str | None] = field(default_factory=list)
    why: str = ""
    error: float = math.nan


class _Pixels(nn.Module):
    """``model`` on pixels in [0, 1]: the run's normalisation inside the graph."""

    def __init__(self, model: nn.Module, normalize: tuple[float, float] | None) -> None:
        super().__init__()
        self.model = model
        self.normalize = normalize

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.normalize is not None:
            x = (x - self.normalize[0]) / self.normalize[1]
        return self.model(x)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


@contextlib.contextmanager
def _quiet_output() -> Iterator[None]:
    """Standard output and error closed at the file-descriptor level: torch.onnx's C++ side
    prints the whole TorchScript graph (dozens of lines, to stdout) before raising on a
    model it cannot export (every export switches its logging on), and the caller says why
    in one line."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 1)
            os.dup2(null.fileno(), 2)
        yield
    finally:
        for fd, copy in enumerate(saved, start=1):
            os.dup2(copy, fd)
            os.close(copy)


def _export(model: nn.Module, normalize, example: torch.Tensor) -> bytes:
    from archlab._modes import in_mode

    wrapper = _Pixels(model, normalize)
    buffer = io.BytesIO()
    with in_mode(wrapper), torch.no_grad(), warnings.catch_warnings(), _quiet_output():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            wrapper,
            (example,),
            buffer,
            dynamo=False,  # the TorchScript exporter: no onnxscript needed
            # the model's own (eval) mode: EVAL would fold each BatchNorm into the conv
            # before it, and the conv's row would have no value in the graph
            training=torch.onnx.TrainingMode.PRESERVE,
            input_names=[INPUT],
            output_names=[LOGITS],
            dynamic_axes={INPUT: {0: "n"}, LOGITS: {0: "n"}},
            opset_version=OPSET,
        )
    return buffer.getvalue()


def _float_values(graph) -> list[str]:
    """The graph's float values (the logits included), in the order their nodes run."""
    import onnx

    inferred = onnx.shape_inference.infer_shapes(graph)
    types = {v.name: v.type.tensor_type.elem_type for v in inferred.graph.value_info}
    types.update({o.name: o.type.tensor_type.elem_type for o in graph.graph.output})
    names = []
    for node in graph.graph.node:
        for name in node.output:
            if name and types.get(name) == onnx.TensorProto.FLOAT:
                names.append(name)
    return names


def _evaluate(graph, names: Sequence[str], x: torch.Tensor) -> dict[str, torch.Tensor]:
    """The values ``names`` (and the logits) of ``graph`` on ``x``, by onnxruntime."""
    import onnx
    import onnxruntime

    probe = onnx.ModelProto()
    probe.CopyFrom(graph)
    for name in names:
        if name == LOGITS:
            continue
        probe.graph.output.append(
            onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None)
        )
    options = onnxruntime.SessionOptions()
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_DISABLE_ALL
    options.log_severity_level = 3
    session = onnxruntime.InferenceSession(
        probe.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )
    wanted = [LOGITS, *(n for n in names if n != LOGITS)]
    got = session.run(wanted, {INPUT: x.numpy()})
    return {n: torch.from_numpy(v) for n, v in zip(wanted, got, strict=True)}


def _error(got: torch.Tensor, want: torch.Tensor) -> float:
    return float((got.float() - want.float()).abs().max()) if want.numel() else 0.0


def _close(got: torch.Tensor, want: torch.Tensor) -> bool:
    if got.dim() == 0 or got.shape[0] != want.shape[0] or got[0].numel() != want[0].numel():
        return False
    scale = max(1.0, float(want.abs().max())) if want.numel() else 1.0
    return _error(got.reshape(want.shape), want) <= AGREE * scale


def match_rows(
    values: dict[str, torch.Tensor], order: Sequence[str], rows: Sequence[torch.Tensor | None]
) -> list[str | None]:
    """Each row's value of the graph: the first, from the previous row's match on, whose
    numbers equal the row's output (same images, same count per image); then anywhere.

    Args:
        values: the graph's values on the images, by name.
        order: their names in the order their nodes run.
        rows: each row's output on the same images ``(N, ...)``, None where it has none.

    Returns:
        Per row, the matching value's name, or None.
    """
    found: list[str | None] = []
    at = 0
    for want in rows:
        if want is None:
            found.append(None)
            continue
        hit = next((k for k in range(at, len(order)) if _close(values[order[k]], want)), None)
        if hit is None:
            hit = next((k for k in range(at) if _close(values[order[k]], want)), None)
        found.append(None if hit is None else order[hit])
        if hit is not None:
            at = max(at, hit)
    return found


def _with_row_outputs(graph, matched: Sequence[str | None], rows) -> tuple[bytes, list]:
    """``graph`` whose outputs are the logits and ``row-I`` for every matched row (a
    ``Reshape`` to the row's own shape where the graph's value is shaped otherwise)."""
    import onnx
    from onnx import helper

    final = onnx.ModelProto()
    final.CopyFrom(graph)
    names: list[str | None] = []
    for i, (value, want) in enumerate(zip(matched, rows, strict=True)):
        if value is None:
            names.append(None)
            continue
        name = f"row-{i}"
        shape = [-1, *want.shape[1:]]
        const = f"row-{i}-shape"
        final.graph.initializer.append(
            onnx.numpy_helper.from_array(torch.tensor(shape, dtype=torch.int64).numpy(), const)
        )
        final.graph.node.append(helper.make_node("Reshape", [value, const], [name], name=name))
        final.graph.output.append(
            helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, ["n", *want.shape[1:]])
        )
        names.append(name)
    onnx.checker.check_model(final)
    return final.SerializeToString(), names


def export_live(
    model: nn.Module,
    normalize: tuple[float, float] | None,
    pixels: torch.Tensor,
    rows: Sequence[torch.Tensor | None],
    logits: torch.Tensor,
) -> LiveModel:
    """``model`` as an ONNX graph on pixels in [0, 1] with every row's output as a graph
    output (see the module docstring), checked against PyTorch on ``pixels``.

    Args:
        model: the run's model.
        normalize: the run's (mean, std), baked into the graph; None: none.
        pixels: the exported images as the model's input before normalisation
            ``(N, 1, 28, 28)`` in [0, 1].
        rows: each trace row's output on ``pixels`` (:func:`~archlab.trace.record.row_outputs`),
            None where a row has none.
        logits: the model's output on ``pixels`` ``(N, 10)``.

    Returns:
        A :class:`LiveModel`; ``onnx`` None, with ``why``, when the model cannot be live.
    """
    from archlab.models import IMAGE_SHAPE

    shape = tuple(pixels.shape[1:])
    if shape != tuple(IMAGE_SHAPE):
        return LiveModel(None, why=f"it reads {'×'.join(map(str, shape))} inputs, not a drawing")
    try:
        graph_bytes = _export(model, normalize, pixels[:2])
    except Exception as exc:  # the exporter refuses what it cannot express
        return LiveModel(None, why=f"torch.onnx could not export it ({_first_line(exc)})")
    import onnx

    graph = onnx.load_from_string(graph_bytes)
    try:
        order = _float_values(graph)
        values = _evaluate(graph, order, pixels)
    except Exception as exc:  # onnxruntime cannot run what was exported
        return LiveModel(None, why=f"onnxruntime cannot run its export ({_first_line(exc)})")
    error = _error(values[LOGITS], logits)
    if not _close(values[LOGITS], logits):
        return LiveModel(
            None, why=f"its ONNX export differs from PyTorch by {error:.2g}", error=error
        )
    matched = match_rows(values, order, rows)
    for value, want in zip(matched, rows, strict=True):
        if value is not None:
            error = max(error, _error(values[value].reshape(want.shape), want))
    final, names = _with_row_outputs(graph, matched, rows)
    return LiveModel(final, names, error=error)


RUNTIME = "vendor/ort-wasm-simd.wasm.js"  # the site's WebAssembly runtime, as a script
# onnxruntime-web 1.18.0's dist/ort-wasm-simd.wasm (single-threaded, SIMD; sha256
# f533b5f2…, see static/vendor/LICENSE), gzipped: 10.6 MB becomes 2.8 MB
_WASM = Path(__file__).parent / "ort" / "ort-wasm-simd.wasm.gz"


def write_runtime(site: Path) -> None:
    """onnxruntime-web's single-threaded WebAssembly build into ``site`` as a script that
    sets ``ARCHLAB_ORT_WASM_GZ`` to its gzipped bytes in base64: a page opened from
    ``file://`` may not fetch the ``.wasm`` file; it unzips it (``DecompressionStream``)
    and hands the runtime a ``blob:`` URL of it."""
    text = base64.b64encode(_WASM.read_bytes()).decode("ascii")
    path = site / RUNTIME
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "x", encoding="ascii") as handle:
        handle.write(f'var ARCHLAB_ORT_WASM_GZ = "{text}";\n')


def write_live(live: LiveModel | None, folder: Path, key: str) -> dict:
    """A run's live model: its graph as ``folder/model.js`` (a script adding the graph's
    bytes, base64, to ``ARCHLAB_MODELS[key]``) and the run's ``live`` object."""
    if live is None or live.onnx is None:
        why = live.why if live is not None else "it was not exported"
        return {"model": None, "outputs": [], "error": None, "why": why}
    text = base64.b64encode(live.onnx).decode("ascii")
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "model.js", "x", encoding="ascii") as handle:
        models = "globalThis.ARCHLAB_MODELS"
        handle.write(f'({models} = {models} || {{}})["{key}"] = "{text}";\n')
    error = float(f"{live.error:.3g}")
    return {"model": f"{key}/model.js", "outputs": live.outputs, "error": error, "why": ""}
