"""Choosing where to compute: CUDA, then Apple's MPS, then the CPU."""

from __future__ import annotations

import torch

from archlab.errors import ArchlabError


def pick_device(name: str = "auto") -> torch.device:
    """The device to use.

    Args:
        name: ``"auto"`` (cuda, then mps, then cpu), or any torch device string such as
            ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``. Default: ``"auto"``.

    Returns:
        A ``torch.device`` that exists on this machine; a clear error otherwise.

    Example::

        >>> archlab.device.pick_device("cpu")  # "auto": cuda on a GPU machine, else mps, else cpu
        device(type='cpu')
    """
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ArchlabError(
            f"--device {name!r} is not a device; use auto, cpu, cuda or mps"
        ) from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ArchlabError("--device cuda: no CUDA GPU is available here; use --device auto or cpu")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ArchlabError("--device mps: Apple's MPS is not available here; use --device auto")
    if device.type not in ("cpu", "cuda", "mps"):
        raise ArchlabError(f"--device {name!r} is not supported; use auto, cpu, cuda or mps")
    return device
