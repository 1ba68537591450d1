"""The one image an analysis looks at: a test image by its index, or one given."""

from __future__ import annotations

import torch

from archlab.errors import ArchlabError


def check_index(index: int, size: int) -> int:
    """A test-set index, or a one-line error."""
    if not 0 <= index < size:
        raise ArchlabError(f"--index {index}: the test set's images are numbered 0-{size - 1}")
    return index


def pick_image(
    index: int, image: torch.Tensor | None, label: int | None, data
) -> tuple[torch.Tensor, int | None, int | None]:
    """``(image, label, index)``: test image ``index`` of ``data`` (loaded if None) with its
    label, or ``image`` as given (``label`` as given, no index)."""
    if image is not None:
        return image, label, None
    if data is None:
        from archlab.training.data import load_fashion_mnist

        data = load_fashion_mnist()
    check_index(index, len(data.test_labels))
    return data.test_images[index], int(data.test_labels[index]), index
