"""The two-choice channel quiz (Borowski et al., ICLR 2021) and its automatic proxy.

A person is shown a channel's reference images (the :data:`REFERENCES` test images that
excite it most) and two query images held out from them: the *strong* one (the next most
exciting image, rank ``REFERENCES + 1``) and the *weak* one (the least exciting image of
all). They pick the one they think excites the channel more. People got it right 92 % of
the time from natural reference images and 82 % from synthesised ones on ImageNet.

The proxy answers the quiz without a person: it picks the query whose pixels are more
like the references', by the mean cosine similarity of the raw pixel vectors (0-255, so
a black background adds nothing). The share of channels where that pick is the strong
query says how much of what the channel looks for can be read off the pixels' overall
shape alone; a tie counts half.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from archlab.errors import ArchlabError

REFERENCES = 9  # reference images per channel, a 3×3 grid as the study showed them


@dataclass
class QuizItems:
    """One quiz item per channel: test-image positions ``references`` ``(C, R)`` (most
    exciting first), ``strong`` ``(C,)`` and ``weak`` ``(C,)``."""

    references: torch.Tensor
    strong: torch.Tensor
    weak: torch.Tensor


def quiz_items(activations: torch.Tensor, references: int = REFERENCES) -> QuizItems:
    """Each channel's quiz item from its activations ``(N, C)`` on N images (the mean of
    its map per image): the top ``references`` images, the next one (strong query) and
    the lowest (weak query); ties keep the earlier image first.

    Args:
        activations: ``(N, C)``, N ≥ ``references + 2``.
        references: reference images per channel. Default: 9.

    Returns:
        :class:`QuizItems`.
    """
    n = activations.shape[0]
    if n < references + 2:
        raise ArchlabError(
            f"a quiz needs at least {references + 2} images ({references} references and "
            f"two queries); got {n}"
        )
    order = torch.argsort(activations.double(), dim=0, descending=True, stable=True)  # (N, C)
    return QuizItems(order[:references].T.contiguous(), order[references], order[-1])


def _mean_cosine(images: torch.Tensor, query: torch.Tensor, refs: torch.Tensor) -> float:
    q = images[query].reshape(-1).double()
    r = images[refs].reshape(len(refs), -1).double()
    sims = (r @ q) / (r.norm(dim=1) * q.norm()).clamp_min(1e-12)
    return float(sims.mean())


def quiz_proxy(
    images: torch.Tensor, activations: torch.Tensor, references: int = REFERENCES
) -> float:
    """The share of channels whose strong query is more like its references than the
    weak query (mean cosine similarity of the pixels; a tie counts half).

    Args:
        images: the images the activations were measured on ``(N, H, W)`` (uint8 or float).
        activations: ``(N, C)``, each channel's mean activation per image.
        references: reference images per channel. Default: 9.

    Returns:
        A fraction in [0, 1] (0.5: the pixels tell nothing).

    Example (a channel that fires on vertical bars; its weak query is a horizontal one):

        >>> images = torch.zeros(12, 3, 3)
        >>> images[:10, :, 1] = 1.0
        >>> images[10:, 1, :] = 1.0
        >>> acts = images[:, :, 1].sum(1, keepdim=True) + torch.linspace(0, 0.1, 12)[:, None]
        >>> quiz_proxy(images, acts)
        1.0
    """
    items = quiz_items(activations, references)
    right = 0.0
    for c in range(activations.shape[1]):
        strong = _mean_cosine(images, items.strong[c], items.references[c])
        weak = _mean_cosine(images, items.weak[c], items.references[c])
        right += 1.0 if strong > weak else 0.5 if strong == weak else 0.0
    return right / max(activations.shape[1], 1)
