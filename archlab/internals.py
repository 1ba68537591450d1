"""What the layers hold: convolution kernels and the activations of one image."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn

from archlab.errors import ArchlabError
from archlab.train import to_input

# Where to look inside each registered model: (module, "output" or "input", label).
# The DNN applies ReLU functionally, so its hidden activations are the *inputs* of the
# layer after each ReLU (drop after fc1, fc3 after fc2).
_ACTIVATION_POINTS = {
    "cnn": [("layer1", "output", "layer1"), ("layer2", "output", "layer2")],
    "dnn": [("drop", "input", "fc1 → ReLU"), ("fc3", "input", "fc2 → ReLU")],
}


def conv_layers(model: nn.Module) -> list[str]:
    """Qualified names of the model's 2-d convolutions, in order."""
    return [n for n, m in model.named_modules() if isinstance(m, nn.Conv2d)]


def filter_weights(model: nn.Module, layer: str | None = None) -> tuple[str, torch.Tensor]:
    """A convolution's kernels ``(out, in, k, k)``, detached on the CPU.

    Args:
        model: the model.
        layer: a qualified name such as ``"layer2.0"``. Default: the first convolution.

    Example::

        >>> layer, weights = archlab.filter_weights(model, "layer2.0")
        >>> weights.shape  # torch.Size([64, 32, 3, 3])
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
                captured[label] = (args[0] if where == "input" else output).detach()

            module = modules[name]
            if where == "input":
                handles.append(module.register_forward_pre_hook(keep))
            else:
                handles.append(module.register_forward_hook(keep))
        yield captured
    finally:
        for handle in handles:
            handle.remove()


def activations(
    model: nn.Module,
    image: torch.Tensor,
    model_name: str,
    normalize: tuple[float, float] | None = None,
) -> dict[str, torch.Tensor]:
    """The activations after each block for one uint8 ``(28, 28)`` image.

    Returns ``{label: tensor}``: ``(C, H, W)`` maps for the CNN's blocks (layer1:
    32×14×14, layer2: 64×6×6), ``(units,)`` for the DNN's hidden layers (256, 128).

    Example::

        >>> acts = archlab.activations(model, data.test_images[42], "cnn", ckpt["normalize"])
        >>> acts["layer1"].shape  # torch.Size([32, 14, 14])
    """
    if model_name not in _ACTIVATION_POINTS:
        raise ArchlabError(f"no activation points known for {model_name!r}")
    was_training = model.training
    model.eval()
    try:
        with capture(model, _ACTIVATION_POINTS[model_name]) as captured, torch.no_grad():
            model(to_input(image.reshape(1, 28, 28), normalize))
    finally:
        model.train(was_training)
    return {label: t[0] for label, t in captured.items()}
