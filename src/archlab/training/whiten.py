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

# above this, the patches are summed over chunks of images rather than held at once
ONE_PASS_BYTES = 256 * 2**20


def first_convolution(
    model: nn.Module, sample: torch.Tensor
) -> tuple[nn.Conv2d, torch.Tensor] | None:
    """The first ``nn.Conv2d`` (or subclass) the input reaches in one forward pass of
    ``sample`` (eval mode, no gradients), with the tensor it read; None when the model
    calls none. The pass draws from a forked random state: a model that draws random
    numbers in eval mode (noise layers, MC dropout) leaves the run's random state as it was.
    """
    from archlab._modes import in_mode

    found: list[tuple[nn.Conv2d, torch.Tensor]] = []

    def hook(module, inputs, output):
        if not found:
            found.append((module, inputs[0].detach()))

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, nn.Conv2d)]
    devices = [sample.device] if sample.device.type == "cuda" else []
    try:
        with torch.random.fork_rng(devices), in_mode(model), torch.no_grad():
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

    def patches_of(images: torch.Tensor) -> torch.Tensor:
        x = images.detach().to("cpu", torch.float64)
        cols = nn.functional.unfold(x, conv.kernel_size, dilation=conv.dilation)  # (n, d, L)
        if cols.shape[-1] == 0:
            raise ValueError("the images hold no whole patch of the kernel")
        return cols.transpose(1, 2).reshape(-1, cols.shape[1])

    d = conv.weight[0].numel()
    n, _, h, w = patches_from.shape
    if n * h * w * d * 8 <= ONE_PASS_BYTES:
        # one pass in float64 (2,000 images of 28×28, a 3×3 kernel: 1.35 M patches, 97 MB)
        patches = patches_of(patches_from)
        mean = patches.mean(0)
        centred = patches - mean
        covariance = centred.T @ centred / len(centred)
    else:  # a wide kernel: the sums over chunks of images, a bounded memory
        total, outer, seen = torch.zeros(d, dtype=torch.float64), 0, 0
        for chunk in patches_from.split(max(1, ONE_PASS_BYTES // (h * w * d * 8))):
            patches = patches_of(chunk)
            total, outer, seen = (
                total + patches.sum(0),
                outer + patches.T @ patches,
                seen + len(patches),
            )
        mean = total / seen
        covariance = outer / seen - torch.outer(mean, mean)
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
    be a plain ``nn.Conv2d`` (a subclass may use its filters otherwise), ungrouped and
    wholly trainable (a frozen weight or bias is kept: pretrained filters, say); otherwise
    nothing changes and the line says why. The patches are taken at stride 1 without
    padding, whatever the conv's stride and padding. A conv with ``k``
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
        >>> line.startswith("whitening init: all 4 filters of 0 (Conv2d) start as the 2 ")
        True
    """
    kept = "; the model starts as it was built"
    first = first_convolution(model, inputs[:2])
    if first is None:
        return "whitening init: no nn.Conv2d reads the image" + kept
    conv, read = first
    name = next(n for n, m in model.named_modules() if m is conv)
    layer = f"{name or 'the model'} ({type(conv).__name__})"
    if type(conv) is not nn.Conv2d:  # weight standardisation and the like use the filters
        return f"whitening init: {layer}, the first nn.Conv2d, is a subclass of it" + kept
    if conv.groups != 1:
        return f"whitening init: {layer}, the first nn.Conv2d, is grouped" + kept
    if not all(p.requires_grad for p in conv.parameters()):  # pretrained filters, say
        return f"whitening init: {layer}, the first nn.Conv2d, is frozen" + kept
    if read.shape != inputs[:2].shape or not torch.equal(read, inputs[:2]):
        return (
            f"whitening init: {layer}, the first nn.Conv2d the input reaches, does not read "
            "the image itself (a layer or function before it changes it)" + kept
        )
    d = conv.weight[0].numel()
    count = min(conv.out_channels // 2, d)
    if count == 0:
        return f"whitening init: {layer} has one filter" + kept
    try:
        filters, mean = whitening_filters(inputs, conv, count, eps)
    except (ValueError, RuntimeError):  # a kernel wider than the image: no whole patch
        return f"whitening init: {layer} has no whole patch in the image" + kept
    weight = torch.cat([filters, -filters]).to(conv.weight.dtype)
    conv.weight[: 2 * count].copy_(weight)
    if conv.bias is not None:
        conv.bias[: 2 * count].copy_(-(weight.reshape(2 * count, -1).double() @ mean).float())
    share = (
        f"all {2 * count} filters of {layer} start"
        if 2 * count == conv.out_channels
        else f"{2 * count} of the {conv.out_channels} filters of {layer} start"
    )
    return (
        f"whitening init: {share} as the {count} whitening directions of its "
        f"{'×'.join(map(str, conv.kernel_size))} patches and their negatives"
    )
