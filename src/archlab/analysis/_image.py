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
    index: int,
    image: torch.Tensor | None,
    label: int | None,
    data,
    size: tuple[int, int] | None = (28, 28),
) -> tuple[torch.Tensor, int | None, int | None]:
    """``(image, label, index)``: test image ``index`` of ``data`` (loaded if None) with its
    label, or ``image`` as given (``label`` as given, no index): one grey image, ``(H, W)``
    or ``(1, H, W)``, of ``size`` (H, W) where given, and a class 0-9 or None."""
    if image is not None:
        check_image(image, size)
        if label is not None and (
            isinstance(label, bool) or not isinstance(label, int) or not 0 <= label <= 9
        ):
            raise ArchlabError(f"label={label!r}: give the image's class, 0-9 (or None)")
        return (image[0] if image.dim() == 3 else image), label, None  # (H, W), as test images
    if data is None:
        from archlab.training.data import load_fashion_mnist

        data = load_fashion_mnist()
    check_index(index, len(data.test_labels))
    return data.test_images[index], int(data.test_labels[index]), index


def check_image(image: object, size: tuple[int, int] | None = (28, 28)) -> None:
    """Refuse an ``image=`` that is not one grey image ``(H, W)`` or ``(1, H, W)`` (of
    ``size`` where given): a (2, 28, 28) stack was explained as two 784-pixel rows."""
    shape = tuple(image.shape) if isinstance(image, torch.Tensor) else None
    if shape is not None and len(shape) == 3 and shape[0] == 1:
        shape = shape[1:]
    if shape is None or len(shape) != 2 or (size is not None and shape != tuple(size)):
        want = "×".join(map(str, size)) if size is not None else "H×W"
        got = (
            "×".join(map(str, image.shape))
            if isinstance(image, torch.Tensor)
            else type(image).__name__
        )
        raise ArchlabError(f"image= is {got}: give one grey image, {want} (or 1×{want}) pixels")
