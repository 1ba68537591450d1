"""One image for the batch: layers that treat each image on its own run on the first.

The trace's images are all zeros, so identical: a per-image layer's output for the first
image, expanded (not copied) to the batch, is the batch's output. Expanded tensors stay
lazy until an operation that is not per-image needs the whole batch in memory; an
elementwise operation on lazy tensors runs on one image too. A torchvision model's trace
then costs about one image's arithmetic. Whether the model mixes images is checked apart,
on real values (:mod:`archlab.trace._mixing`), so the shortcut hides nothing.
"""

from __future__ import annotations

import weakref

import torch
from torch import nn

from archlab.trace._batch import BATCH

# layers that treat each image on its own (BatchNorm in eval mode): traced on one image and
# copied to the batch, which halves the arithmetic of a torchvision model's trace
PER_IMAGE = (
    nn.modules.conv._ConvNd,
    nn.modules.batchnorm._BatchNorm,
    nn.modules.pooling._MaxPoolNd,
    nn.modules.pooling._AvgPoolNd,
    nn.modules.pooling._AdaptiveAvgPoolNd,
    nn.modules.pooling._AdaptiveMaxPoolNd,
    nn.Linear,
    nn.LayerNorm,
    nn.GroupNorm,
    nn.ReLU,
    nn.ReLU6,
    nn.GELU,
    nn.SiLU,
    nn.Hardswish,
    nn.Hardsigmoid,
    nn.Sigmoid,
    nn.Tanh,
    nn.Dropout,
)


def _per_image(module: nn.Module) -> bool:
    if not isinstance(module, PER_IMAGE):
        return False
    if module.training and isinstance(module, nn.modules.batchnorm._BatchNorm):
        return False  # batch statistics mix the images
    return _torch_forward(module)


def _torch_forward(module: nn.Module) -> bool:
    return getattr(type(module).forward, "__module__", "").startswith("torch.nn.")


class LazyBatch:
    """The :class:`~archlab.trace._engine.Tracer`'s lazy batches (a mixin: it keeps
    ``_lazy``, lazy tensor → a weak reference, and ``_copies``, lazy → its full copy)."""

    _lazy: dict
    _copies: dict

    def _narrowable(self, t: torch.Tensor, traced) -> bool:
        """An elementwise operation can run on one image when every tensor it reads is an
        expanded per-image map, or has fewer dims (a bias, a scalar) so it cannot hold a batch."""
        return self._is_lazy(t) or t.dim() < traced[0][0].dim()

    def _narrow(self, value: object) -> object:
        if isinstance(value, torch.Tensor):
            return value[:1] if self._is_lazy(value) else value
        if isinstance(value, (tuple, list)):
            return type(value)(self._narrow(v) for v in value)
        if isinstance(value, dict):
            return {k: self._narrow(v) for k, v in value.items()}
        return value

    def _is_lazy(self, t: torch.Tensor) -> bool:
        ref = self._lazy.get(id(t))
        return ref is not None and ref() is t

    def _materialize(self, value: object) -> object:
        if isinstance(value, torch.Tensor):
            if not self._is_lazy(value):
                return value
            cached = self._copies.get(id(value))  # DenseNet reads each map many times
            if cached is not None and cached[0]() is value:
                return cached[1]
            copy = value.contiguous()
            self._copies[id(value)] = (weakref.ref(value), copy)
            self._register(copy, *self._lookup(value))
            return copy
        if isinstance(value, (tuple, list)):
            return type(value)(self._materialize(v) for v in value)
        if isinstance(value, dict):
            return {k: self._materialize(v) for k, v in value.items()}
        return value

    def _widen(self, output: object) -> object:
        """A per-image layer's output for one image, expanded (not copied) to the batch."""
        if isinstance(output, tuple):
            return type(output)(self._widen(o) for o in output)
        if not isinstance(output, torch.Tensor) or not output.dim() or output.shape[0] != 1:
            return output
        wide = output.expand(BATCH, *output.shape[1:])
        self._lazy[id(wide)] = weakref.ref(wide)
        return wide
