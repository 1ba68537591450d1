"""The fast recipe's tricks, each a small function the loop calls: augmentation, flip
test-time augmentation, an exponential moving average (EMA) of the weights and bfloat16
autocast where the hardware has it.

What the speedrun literature measured to pay (airbench, hlb-CIFAR10), fitted to
Fashion-MNIST on a CPU, and what of it paid here (benchmarks/speedrun.py):

- **random crops with padding**: each image shifted by up to ``pad`` pixels in x and y,
  the border filled with black (Fashion-MNIST's background is 0), as ``RandomCrop(28,
  padding=pad)`` does; they pay only in long runs (the recipe ``fast-long``): in 5 epochs
  the nets are still fitting the images as they are;
- **alternating horizontal flips** (airbench): a random half of the images is flipped in
  the first epoch, and every image's flip alternates from then on, so over any two epochs
  the net sees each garment both ways (random flips leave a quarter of them seen one way
  only). **No recipe uses them on Fashion-MNIST**: its footwear all points one way (the
  mean Ankle boot and its mirror image correlate 0.06, Sandal 0.45, Sneaker 0.68; every
  other class ≥ 0.94), so a mirrored boot is an image the test set never shows, and
  flip test-time augmentation asks the net about it: the lecture's CNN trained without
  flips falls from 91.8 % to 85.8 % with it, and trained with them it loses 0.2 points;
- **flip test-time augmentation**: the mean of the softmax *probabilities* of the image
  and of its mirror image;
- **an EMA of the weights** (and of BatchNorm's running statistics), evaluated instead of
  the weights themselves;
- **bfloat16 autocast** in the training steps (:func:`bf16_native`), on hardware that has
  it: the weights and the evaluations stay float32.

Every random choice is a function of (seed, epoch) only, so a resumed run sees the batches
an uninterrupted one would.
"""

from __future__ import annotations

import torch
from torch import nn

from archlab.training.predict import predict_logits


def bf16_native(device: torch.device) -> bool:
    """Whether ``device`` computes bfloat16 natively, so that autocast to it pays: a CPU
    with AVX-512 BF16 or AMX (oneDNN's test), a CUDA GPU that supports it. Elsewhere
    bfloat16 is emulated, slower than float32, and the fast recipe stays in float32.

    Measured here (AMD EPYC with AVX-512 BF16, 1 thread, batch 200, a training step): the
    lecture's CNN 130 → 59 ms, speednet 93 → 86 ms.
    """
    if device.type == "cuda":  # emulated bfloat16 on older GPUs is no speed-up
        try:
            return torch.cuda.is_bf16_supported(including_emulation=False)
        except TypeError:  # a torch without the argument
            return torch.cuda.is_bf16_supported()
    if device.type != "cpu":
        return False
    try:
        return bool(
            torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported()
        )
    except (AttributeError, RuntimeError):
        return False


def epoch_generator(seed: int, epoch: int, stream: int) -> torch.Generator:
    """A CPU generator for one epoch's draws of one kind (``stream``), from (seed, epoch)."""
    return torch.Generator().manual_seed((seed * 1_000_003 + epoch) * 7 + stream + 1)


def flips(n: int, seed: int, epoch: int) -> torch.Tensor:
    """Which of ``n`` images are mirrored in ``epoch``: a random half-ish in epoch 0
    (each image with probability ½), then each image's flip alternates every epoch.

    Example:

        >>> a, b = flips(8, 0, 0), flips(8, 0, 1)
        >>> bool((a != b).all())
        True
    """
    first = torch.rand(n, generator=epoch_generator(seed, 0, 1)) < 0.5
    return first if epoch % 2 == 0 else ~first


def shifts(n: int, seed: int, epoch: int, pad: int) -> torch.Tensor:
    """Each image's (dy, dx) shift in ``epoch``: integers from ``-pad`` to ``pad``, ``(n, 2)``."""
    g = epoch_generator(seed, epoch, 2)
    return torch.randint(-pad, pad + 1, (n, 2), generator=g)


def crop_and_flip(images: torch.Tensor, moves: torch.Tensor, mirror: torch.Tensor) -> torch.Tensor:
    """Shift each image by its (dy, dx), filling with 0, then mirror the flagged ones.

    The same as padding by ``pad`` and cropping 28×28 at offset ``pad + (dy, dx)``, in
    one gather.

    Args:
        images: ``(N, H, W)``, any dtype (uint8 pixels in training).
        moves: ``(N, 2)`` integer (dy, dx), each within ``[-pad, pad]``.
        mirror: ``(N,)`` bool, True where the image is flipped left-right.

    Returns:
        ``(N, H, W)``, the same dtype: output pixel (i, j) is input pixel
        (i + dy, j' + dx) where j' = W − 1 − j for a mirrored image, else j; 0 outside.
    """
    n, h, w = images.shape
    pad = int(moves.abs().max()) if n else 0
    padded = torch.nn.functional.pad(images, (pad, pad, pad, pad))
    rows = torch.arange(h, device=images.device)[None, :] + (pad + moves[:, :1].to(images.device))
    cols = torch.arange(w, device=images.device).expand(n, w)
    cols = torch.where(mirror.to(images.device)[:, None], w - 1 - cols, cols)
    cols = cols + (pad + moves[:, 1:].to(images.device))
    batch = torch.arange(n, device=images.device)[:, None, None]
    return padded[batch, rows[:, :, None], cols[:, None, :]]


def augment_epoch(
    images: torch.Tensor, seed: int, epoch: int, pad: int, flip: bool = True
) -> torch.Tensor:
    """The training images as ``epoch`` sees them: shifted by up to ``pad`` pixels and,
    with ``flip``, alternately mirrored (:func:`crop_and_flip`). Labels are unchanged by
    construction.

    Args:
        images: uint8 ``(N, H, W)``, the training images.
        seed: the run's seed.
        epoch: 0-based epoch.
        pad: the largest shift in pixels; 0 flips only.
        flip: mirror alternately (:func:`flips`). Default: True.

    Returns:
        uint8 ``(N, H, W)`` on the images' device.
    """
    n = len(images)
    mirror = flips(n, seed, epoch) if flip else torch.zeros(n, dtype=torch.bool)
    return crop_and_flip(images, shifts(n, seed, epoch, pad), mirror)


def flip_tta_probabilities(
    model: nn.Module,
    images: torch.Tensor,
    normalize: tuple[float, float] | None = None,
) -> torch.Tensor:
    """Softmax probabilities ``(N, classes)`` averaged over the image and its mirror
    image (flip test-time augmentation), in eval mode.

    Args:
        model: the classifier.
        images: uint8 ``(N, H, W)``.
        normalize: the (mean, std) it was trained with, or None. Default: None.
    """
    return _mean_probabilities(model, images, normalize, [(0, 0, False), (0, 0, True)])


def shift_tta_probabilities(
    model: nn.Module,
    images: torch.Tensor,
    normalize: tuple[float, float] | None = None,
    shift: int = 1,
) -> torch.Tensor:
    """Softmax probabilities ``(N, classes)`` averaged over the image shifted by every
    (dy, dx) with ``|dy|, |dx| ≤ shift`` (``(2·shift + 1)²`` views, the border filled with
    black as the crops of training fill it), in eval mode: test-time augmentation for a
    net trained with random crops (``fast-long``).

    Args:
        model: the classifier.
        images: uint8 ``(N, H, W)``.
        normalize: the (mean, std) it was trained with, or None. Default: None.
        shift: the largest shift in pixels. Default: 1 (9 views).

    Example:

        >>> net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 10))
        >>> shift_tta_probabilities(net, torch.zeros(2, 28, 28, dtype=torch.uint8)).shape
        torch.Size([2, 10])
    """
    moves = range(-shift, shift + 1)
    views = [(dy, dx, False) for dy in moves for dx in moves]
    return _mean_probabilities(model, images, normalize, views)


def _mean_probabilities(
    model: nn.Module, images: torch.Tensor, normalize, views: list[tuple[int, int, bool]]
) -> torch.Tensor:
    """The mean softmax probabilities over ``views`` of each image: (dy, dx, mirrored),
    made as the training's augmentation makes them (:func:`crop_and_flip`)."""
    n, total = len(images), 0
    for dy, dx, mirrored in views:
        moves = torch.tensor([[dy, dx]]).expand(n, 2)
        view = crop_and_flip(images, moves, torch.full((n,), mirrored, dtype=torch.bool))
        total = total + predict_logits(model, view, normalize).softmax(1)
    return total / len(views)


def evaluate_tta(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    normalize: tuple[float, float] | None = None,
    shift: int = 0,
) -> tuple[float, float]:
    """Accuracy (0–1) and mean negative log-likelihood of the test-time-augmented
    probabilities: the image and its mirror image, or with ``shift`` > 0 its shifted
    views (:func:`shift_tta_probabilities`).

    Args:
        model: the classifier.
        images: uint8 ``(N, H, W)``.
        labels: int64 ``(N,)``.
        normalize: the (mean, std) it was trained with, or None. Default: None.
        shift: shifted views up to this many pixels instead of the flip. Default: 0.
    """
    if shift:
        probs = shift_tta_probabilities(model, images, normalize, shift)
    else:
        probs = flip_tta_probabilities(model, images, normalize)
    labels = labels.to(probs.device)
    loss = nn.functional.nll_loss(probs.clamp_min(1e-12).log(), labels).item()
    return (probs.argmax(1) == labels).float().mean().item(), loss


class WeightAverage:
    """An exponential moving average of a model's floating-point state (weights and
    BatchNorm's running statistics): ``avg ← d·avg + (1 − d)·current`` after each step,
    with ``d = min(decay, (1 + n)/(10 + n))`` at the n-th update (0-based), so the average
    leaves the random initialisation behind within the first steps (TensorFlow's
    ``ExponentialMovingAverage`` with ``num_updates``); integer buffers (BatchNorm's batch
    count) are copied.

    Args:
        model: the model being trained.
        decay: the weight of the past, 0 < decay < 1. Default: 0.99.
    """

    def __init__(self, model: nn.Module, decay: float = 0.99) -> None:
        self.decay = decay
        self.updates = 0
        self.state = {k: v.detach().clone() for k, v in model.state_dict().items()}

    def __repr__(self) -> str:
        return f"WeightAverage(decay={self.decay}, updates={self.updates})"

    def state_dict(self) -> dict:
        """What a checkpoint keeps: the update count and the averaged tensors."""
        return {"updates": self.updates, "state": self.state}

    def load_state_dict(self, saved: dict) -> None:
        """Continue from :meth:`state_dict`'s result (a resumed run)."""
        self.updates = int(saved["updates"])
        self.state = dict(saved["state"])

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """Move the average towards ``model``'s current state."""
        decay = min(self.decay, (1 + self.updates) / (10 + self.updates))
        self.updates += 1
        for key, value in model.state_dict().items():
            avg = self.state[key]
            if avg.is_floating_point():
                avg.lerp_(value.detach(), 1.0 - decay)
            else:
                avg.copy_(value)

    @torch.no_grad()
    def copy_to(self, model: nn.Module) -> None:
        """Load the average into ``model`` (its layout kept)."""
        for key, value in model.state_dict().items():
            value.copy_(self.state[key])

    def swapped_in(self, model: nn.Module):
        """A context manager: ``model`` holds the average inside, its own state after."""
        import contextlib

        @contextlib.contextmanager
        def swap():
            own = {k: v.detach().clone() for k, v in model.state_dict().items()}
            self.copy_to(model)
            try:
                yield model
            finally:
                with torch.no_grad():
                    for key, value in model.state_dict().items():
                        value.copy_(own[key])

        return swap()
