"""From uint8 images to model inputs and predictions: shared by training, metrics and
the analysis commands."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn

from archlab._modes import in_mode
from archlab.training._alloc import keep_freed_memory


def to_input(
    images: torch.Tensor,
    normalize: tuple[float, float] | None = None,
    channels_last: bool = False,
) -> torch.Tensor:
    """uint8 grayscale images ``(N, H, W)`` → float model input ``(N, 1, H, W)``.

    Args:
        images: uint8 pixels 0–255.
        normalize: (mean, std) of [0, 1] pixels to subtract and divide by. Default: none.
        channels_last: return the faster NHWC layout for conv nets on a CPU. Default: False.

    Example:

        >>> x = archlab.training.predict.to_input(torch.full((2, 28, 28), 255, dtype=torch.uint8))
        >>> x.shape, float(x.max())
        (torch.Size([2, 1, 28, 28]), 1.0)
    """
    x = images.unsqueeze(1).float()
    if normalize is None:
        x = x.div_(255)
    else:  # (x/255 − mean)/std in two passes over the batch instead of three
        mean, std = normalize
        x = x.mul_(1.0 / (255.0 * std)).sub_(mean / std)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    return x


def has_conv(model: nn.Module) -> bool:
    """True when the model has a convolution (then NHWC is the faster layout on a CPU)."""
    return any(isinstance(m, nn.modules.conv._ConvNd) for m in model.modules())


def model_device(model: nn.Module) -> torch.device:
    """Where the model's parameters are (the CPU for a model without any)."""
    return next(model.parameters(), torch.empty(0)).device


def predict_logits(
    model: nn.Module,
    images: torch.Tensor,
    normalize: tuple[float, float] | None = None,
    batch_size: int | None = None,
) -> torch.Tensor:
    """Logits ``(N, classes)`` for uint8 images ``(N, H, W)``, in eval mode.

    A conv net runs with its weights and inputs in the NHWC layout for the pass (as
    training does); the model's train/eval mode and its weights' layout are restored
    afterwards. Batches of 250 keep each batch's activations in memory that malloc
    reuses (the CNN's 10,000 test images: 0.9 s here, against 2.9 s in batches of 1,000
    with NCHW weights).

    Args:
        model: the classifier.
        images: uint8 ``(N, H, W)``.
        normalize: the (mean, std) it was trained with, or None. Default: None.
        batch_size: images per forward pass. Default: 250 on the CPU; on a GPU 2,500 (the
            whole test set in four launches of each layer, a few hundred MB for the zoo).
    """
    device = model_device(model)
    if batch_size is None:
        batch_size = 250 if device.type == "cpu" else 2_500
    outputs = []
    with inference_layout(model, to_input(images[:2].to(device), normalize)) as channels_last:
        for start in range(0, len(images), batch_size):
            batch = images[start : start + batch_size].to(device)
            outputs.append(model(to_input(batch, normalize, channels_last)).float())
    return torch.cat(outputs) if outputs else torch.empty(0, 0)


@contextlib.contextmanager
def inference_layout(model: nn.Module, sample: torch.Tensor) -> Iterator[bool]:
    """Run ``model`` fast for many forward passes: eval mode, no autograd, and for a conv
    net that runs in it the NHWC layout (1.6× faster for the CNN on a CPU). Yields whether
    inputs should be NHWC (``x.contiguous(memory_format=torch.channels_last)``); the
    model's mode and its weights' layout are restored on exit, even on error.

    ``sample``: two model inputs ``(2, C, H, W)`` to try the layout on.
    """
    channels_last = has_conv(model) and nhwc_runs(model, sample)
    keep_freed_memory()
    restore = _to_channels_last(model) if channels_last else []
    try:
        with in_mode(model), torch.inference_mode():
            yield channels_last
    finally:
        for tensor, data in restore:
            tensor.data = data


def nhwc_runs(model: nn.Module, sample: torch.Tensor) -> bool:
    """Whether the model runs in the NHWC layout: True for torch's own layers; False only
    for a forward pass that fails in NHWC and runs in NCHW, such as one with
    ``x.view(x.size(0), -1)`` after a convolution (the lecture's own CNN), which then runs
    as written, in NCHW. (A model that fails in both layouts is not the layout's fault.)

    A forward pass of ``sample`` ``(N, C, H, W)`` in eval mode without gradients; the
    weights (put in NHWC for it), the mode and the random state are restored.

    Example:

        >>> class Viewing(torch.nn.Module):  # the lecture's flatten
        ...     def __init__(self):
        ...         super().__init__()
        ...         self.conv = torch.nn.Conv2d(1, 4, 3)
        ...     def forward(self, x):
        ...         return self.conv(x).view(x.size(0), -1)
        >>> sample = torch.zeros(2, 1, 28, 28)
        >>> archlab.training.predict.nhwc_runs(Viewing(), sample)
        False
        >>> archlab.training.predict.nhwc_runs(archlab.create_model("cnn"), sample)
        True
    """
    return _runs(model, sample, nhwc=True) or not _runs(model, sample, nhwc=False)


def _runs(model: nn.Module, sample: torch.Tensor, nhwc: bool) -> bool:
    """Whether one forward pass of ``sample`` runs, with nothing about the model changed."""
    restore = _to_channels_last(model) if nhwc else []
    devices = [sample.device] if sample.device.type == "cuda" else []
    try:
        with in_mode(model), torch.random.fork_rng(devices=devices), torch.no_grad():
            layout = torch.channels_last if nhwc else torch.contiguous_format
            model(sample.contiguous(memory_format=layout))
        return True
    except Exception:  # the caller runs the model for real and reports what goes wrong
        return False
    finally:
        for tensor, data in restore:
            tensor.data = data


def _to_channels_last(model: nn.Module) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Put the model's 4-d weights in NHWC; returns (tensor, its data before) to restore.

    ``Tensor.to(memory_format=...)`` as ``Module.to`` does it, not ``.contiguous()``: a
    kernel with one input channel is "contiguous" in both layouts, but only NHWC strides
    make the CNN's first convolution take the fast path (1.5 s against 0.9 s here).
    """
    changed = []
    for tensor in (*model.parameters(), *model.buffers()):
        if tensor.dim() == 4:
            nhwc = tensor.data.to(memory_format=torch.channels_last)
            if nhwc.stride() != tensor.stride():
                changed.append((tensor, tensor.data))
                tensor.data = nhwc
    return changed


def evaluate(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    normalize: tuple[float, float] | None = None,
) -> tuple[float, float]:
    """Accuracy (0–1) and mean cross-entropy on a labelled set, in eval mode.

    Args:
        model: the classifier.
        images: uint8 ``(N, H, W)``.
        labels: int64 ``(N,)``.
        normalize: the (mean, std) it was trained with, or None. Default: None.

    Example:

        >>> model = archlab.create_model("dnn")
        >>> images, labels = torch.zeros(4, 28, 28, dtype=torch.uint8), torch.arange(4)
        >>> from archlab.training.predict import evaluate
        >>> accuracy, loss = evaluate(model, images, labels)
        >>> 0.0 <= accuracy <= 1.0
        True
    """
    logits = predict_logits(model, images, normalize)
    labels = labels.to(logits.device)
    loss = nn.functional.cross_entropy(logits, labels).item()
    return (logits.argmax(1) == labels).float().mean().item(), loss
