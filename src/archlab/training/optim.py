"""The optimiser every archlab training uses: Adam, through torch's functional API."""

from __future__ import annotations

import torch
from torch import nn


def make_optimizer(model: nn.Module, lr: float, device: torch.device):
    """Adam over ``model``'s parameters, bit-identical to ``torch.optim.Adam``.

    Constructing any ``torch.optim`` optimiser imports ``torch._dynamo`` (1.5-2 s, more than
    a DNN epoch's compute); torch's functional ``adam`` does not
    (``archlab/training/_adam.py``).

    Args:
        model: the model to train.
        lr: the learning rate.
        device: where the model is: the fused kernel on the CPU and CUDA, and on CUDA a
            rate kept on the device, so that a CUDA graph of the step follows a schedule.

    Returns:
        An optimiser with ``step``, ``zero_grad``, ``set_lr``, ``param_groups`` and
        ``state_dict``/``load_state_dict``.
    """
    from archlab.training._adam import Adam

    # the fused kernel does the whole Adam update in one pass: measurably faster on a CPU
    # (MPS gained it only in later torch releases, so it keeps the default there)
    fused = device.type in ("cpu", "cuda")
    return Adam(model.parameters(), lr=lr, fused=fused, capturable=device.type == "cuda")
