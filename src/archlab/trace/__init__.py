"""The shape trace and its rules: what every layer of a model does to a tensor's size.

- ``shapes``: :func:`trace_shapes` and its :class:`ShapeReport` (the face of the trace);
- ``params``: parameters and multiply-accumulates (:func:`count_params`), a view of the
  trace's rows;
- ``record``: the rows as the one record of a model's layers (their parameters and MACs,
  their outputs for a batch of images); ``macs``: the MAC convention, per layer type;
- ``formulas``: the size arithmetic of each layer kind, written as PyTorch documents it;
- ``_engine``, ``_ops``, ``_batch``, ``_notes``, ``_limits``: how the trace follows every
  tensor operation, tracks the batch, writes its teaching notes and refuses a forward
  pass that would not fit in memory.
"""

from archlab._lazy import lazy_exports

_EXPORTS = {
    "ShapeReport": "archlab.trace.shapes",
    "trace_shapes": "archlab.trace.shapes",
    "ParamReport": "archlab.trace.params",
    "count_params": "archlab.trace.params",
    "outputs_by_name": "archlab.trace.record",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(globals(), _EXPORTS)
