"""Whitening initialisation of a model's first convolution (airbench's trick), the fast
recipe's start.

A convolution that reads the image sees small patches of it (3×3 for the lecture's CNN:
9 numbers). Neighbouring pixels are strongly correlated, so most of a patch's variance
lies along a few directions (the patch's mean brightness, its horizontal and vertical
gradients...) and the rest is faint detail. Initialised at random, the first layer must
spend its first epochs finding those directions. Whitening gives them at once: the
eigenvectors of the training patches' covariance, each divided by the square root of its
eigenvalue (plus a small ``eps``), so every direction comes out with unit variance, faint
ones as loud as the bright ones; each filter is used twice, as itself and negated, so
that a ReLU or a max pool after it keeps both signs. Keller Jordan's airbench (CIFAR-10,
2024) starts the same way (there with 2×2 patches of three colours, 24 filters, frozen).

Here the filters are only the starting point: they go on training, and a first layer with
more filters than twice the patch's size keeps its random init for the rest. Measured on
held-out images (the last 5,000 training images; fast recipe, 5 epochs, seeds 0–4, the
final reading): speednet 93.46 → 93.86 %, the lecture's CNN 92.49 → 93.04 %; on the test
set ``benchmarks/speedrun.py``'s ``whiten`` rung: the lecture's CNN 91.92 → 92.32 %.
"""

from __future__ import annotations

import torch
from torch import nn

# added to each eigenvalue before the square root: keeps the faintest directions (pixel
# noise) from being amplified without bound; airbench's value, for inputs of unit variance
EPS = 5e-4

# the patch statistics come from the first this-many training images (no random draw:
# the run's random state is untouched, so its batches and dropout stay as without whitening)
SAMPLE = 2_000


def first_convolution(
    model: nn.Module, sample: torch.Tensor
) -> tuple[nn.Conv2d, torch.Tensor] | None:
    """The first ``nn.Conv2d`` the input reaches in one forward pass of ``sample`` (eval
    mode, no gradients), with the tensor it read; None when the model calls none."""
    from archlab._modes import in_mode

    found: list[tuple[nn.Conv2d, torch.Tensor]] = []

    def hook(module, inputs, output):
        if not found:
            found.append((module, inputs[0].detach()))

    handles = [m.register_forward_hook(hook) for m in model.modules() if type(m) is nn.Conv2d]
    try:
        with in_mode(model), torch.no_grad():
            model(sample)
    finally:
        for handle in handles:
            handle.remove()
    return found[0] if found else None


def whitening_filters(
    patches_from: torch.Tensor, conv: nn.Conv2d, count: int, eps: float = EPS
) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``count`` whitening filters of ``conv``'s patches of ``patches_from`` with the
    largest variance, and the patches' mean.

    Args:
        patches_from: the model's input ``(N, C, H, W)``, float, as the conv reads it.
        conv: the convolution (its kernel size and dilation make the patches).
        count: how many filters (≤ C·kh·kw).
        eps: added to each eigenvalue. Default: :data:`EPS`.

    Returns:
        ``(count, C, kh, kw)`` filters, each ``v / √(λ + eps)`` for an eigenvector ``v`` of
        the patches' covariance with eigenvalue ``λ``, largest ``λ`` first; and the mean
        patch ``(C·kh·kw,)``. Computed in float64 on the CPU.
    """
    x = patches_from.detach().to("cpu", torch.float64)
    cols = nn.functional.unfold(x, conv.kernel_size, dilation=conv.dilation)  # (N, d, L)
    if cols.shape[-1] == 0:
        raise ValueError("the images hold no whole patch of the kernel")
    # one pass in float64: 2,000 images of 28×28 and a 3×3 kernel are 1.35 M patches, 97 MB
    patches = cols.transpose(1, 2).reshape(-1, cols.shape[1])
    mean = patches.mean(0)
    centred = patches - mean
    covariance = centred.T @ centred / len(centred)
    values, vectors = torch.linalg.eigh(covariance)  # ascending
    order = values.argsort(descending=True)[:count]
    filters = vectors[:, order].T / (values[order].clamp_min(0) + eps).sqrt()[:, None]
    return filters.reshape(count, *conv.weight.shape[1:]), mean


@torch.no_grad()
def whiten_first_conv(model: nn.Module, inputs: torch.Tensor, eps: float = EPS) -> str:
    """Initialise the first convolution that reads the image with whitening filters of
    its patches and their negatives (see the module's docs); returns what was done, one
    line for the run's log.

    The conv must read the model's input itself (no layer before it changes the image),
    be ungrouped and trainable (a frozen one is kept: pretrained filters, say); otherwise
    nothing changes and the line says why. A conv with ``k``
    filters gets ``min(k // 2, C·kh·kw)`` whitening filters and as many negated, in its
    first filters; any left keep their random initialisation. A bias, where there is
    one, centres the whitened patches (``−w · mean``).

    Args:
        model: the model, in its final layout and device.
        inputs: training images as the model reads them ``(N, C, H, W)``
            (:func:`~archlab.training.predict.to_input`), a few thousand.
        eps: added to each eigenvalue. Default: :data:`EPS`.

    Example:

        >>> net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.Flatten())
        >>> line = whiten_first_conv(net, torch.rand(8, 1, 6, 6))
        >>> line.split(":")[0], "the 2 whitening directions of its 3×3 patches" in line
        ('whitening init', True)
    """
    first = first_convolution(model, inputs[:2])
    if first is None:
        return "whitening init: no convolution reads the image; the model starts at random"
    conv, read = first
    name = next(n for n, m in model.named_modules() if m is conv)
    if conv.groups != 1:
        return f"whitening init: {name} is a grouped convolution; the model starts at random"
    if not conv.weight.requires_grad:  # frozen on purpose (pretrained filters?): kept
        return f"whitening init: {name} is frozen; the model starts as it was built"
    if read.shape != inputs[:2].shape or not torch.equal(read, inputs[:2]):
        return (
            f"whitening init: {name}, the first convolution, does not read the image itself "
            "(a layer before it changes it); the model starts at random"
        )
    d = conv.weight[0].numel()
    count = min(conv.out_channels // 2, d)
    if count == 0:
        return f"whitening init: {name} has one filter; the model starts at random"
    try:
        filters, mean = whitening_filters(inputs, conv, count, eps)
    except (ValueError, RuntimeError):  # a kernel wider than the image: no whole patch
        return f"whitening init: {name} has no whole patch in the image; the model starts at random"
    weight = torch.cat([filters, -filters]).to(conv.weight.dtype)
    conv.weight[: 2 * count].copy_(weight)
    if conv.bias is not None:
        conv.bias[: 2 * count].copy_(-(weight.reshape(2 * count, -1).double() @ mean).float())
    return (
        f"whitening init: the first {2 * count} of {name}'s {conv.out_channels} filters are "
        f"the {count} whitening directions of its {'×'.join(map(str, conv.kernel_size))} "
        "patches and their negatives"
    )
