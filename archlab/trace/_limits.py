"""How much memory a forward pass on one image needs, checked before it is tried.

``archlab shapes`` runs the model on a batch of zero images (``archlab params`` on one) of
the size the user gave. ``--input 1,100000,100000`` would ask the allocator for 40 GB for the input
alone (1.3 TB for the CNN's first feature maps), and die there with a traceback; this
module says up front how much is needed and refuses.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence

import torch
from torch import nn

from archlab.errors import ArchlabError
from archlab.trace.formulas import fmt_shape

# below this the input is small enough that tracing is not worth estimating first: the
# estimate runs the model on the meta device, whose first use costs about 1.4 s here
_QUICK_BYTES = 64 << 20
# the one budget, of the memory available now, for every check of the trace: the traced
# input, each tensor the trace holds, the whole forward pass params estimates
_SHARE = 0.5
_UNKNOWN = 8 << 30  # where the system does not say what is available


def available_memory() -> int | None:
    """Bytes of memory available to a new allocation now (Linux ``MemAvailable``, else the
    free physical pages), or None where the system does not say."""
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def memory_budget() -> int:
    """Bytes a trace may hold at once: half of what is available now (8 GiB's half where
    the system does not say)."""
    available = available_memory()
    return int((_UNKNOWN if available is None else available) * _SHARE)


def forward_memory(model: nn.Module, input_shape: Sequence[int]) -> int:
    """Estimated bytes a forward pass of one ``input_shape`` image holds: the input plus
    every leaf layer's output (what a shape trace keeps), found on the meta device without
    allocating anything. Where the pass fails part way (a chain that does not fit, code that
    cannot run on the meta device), what it holds up to there: a lower bound.
    """
    dtype = next(model.parameters(), torch.empty(0)).dtype
    if not dtype.is_floating_point:
        dtype = torch.float32
    input_bytes = math.prod(input_shape) * torch.empty(0, dtype=dtype).element_size()
    return max(input_bytes, _meta_forward_bytes(model, input_shape, dtype))


def _meta_forward_bytes(model: nn.Module, input_shape: Sequence[int], dtype: torch.dtype) -> int:
    from torch.func import functional_call

    total = 0

    def count(module, inputs, output) -> None:
        nonlocal total
        outputs = output if isinstance(output, (tuple, list)) else (output,)
        total += sum(t.numel() * t.element_size() for t in outputs if isinstance(t, torch.Tensor))

    leaves = [m for m in model.modules() if not list(m.children())]
    handles = [m.register_forward_hook(count) for m in leaves]
    state = {n: torch.empty_like(t, device="meta") for n, t in model.state_dict().items()}
    try:
        with torch.no_grad():
            x = torch.zeros((1, *input_shape), dtype=dtype, device="meta")
            functional_call(model, state, (x,))
    except Exception:  # a chain that does not fit, or code that cannot run on meta:
        pass  # what ran up to there is still a lower bound
    finally:
        for handle in handles:
            handle.remove()
    return total + math.prod(input_shape) * torch.empty(0, dtype=dtype).element_size()


def check_forward_memory(model: nn.Module, input_shape: Sequence[int], what: str) -> None:
    """Refuse (exit 2) a forward pass on one ``input_shape`` image that would need more
    than 80 % of the memory available now, saying how much it needs.

    Args:
        model: the built model (on any device; nothing is allocated).
        input_shape: per-sample ``(C, H, W)``.
        what: what the pass is for, e.g. ``"tracing cnn"``.

    Example:

        >>> model = archlab.create_model("cnn")
        >>> check_forward_memory(model, (1, 28, 28), "tracing cnn")  # 454 KB: fine
        >>> check_forward_memory(model, (1, 10**6, 10**6), "tracing cnn")
        Traceback (most recent call last):
        ...
        archlab.errors.ArchlabError: --input 1×1000000×1000000: ... needs at least 4.0 TB ...
    """
    available = available_memory()
    if available is None:
        return
    budget = memory_budget()
    element = 4
    input_bytes = math.prod(input_shape) * element
    if input_bytes <= min(_QUICK_BYTES, budget):
        return
    needed = input_bytes if input_bytes > budget else forward_memory(model, input_shape)
    if needed > budget:
        shape = fmt_shape(input_shape)
        raise ArchlabError(
            f"--input {shape}: {what} on one such image needs at least {_size(needed)} of "
            f"memory, and {_size(available)} is available; give a smaller --input",
            1,  # as shapes' diagnosis of the same input: the machine refuses, exit 1
        )


def _size(n: int) -> str:
    for unit in ("bytes", "KB", "MB", "GB", "TB", "PB"):
        if n < 1000 or unit == "PB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1000
    raise AssertionError("unreachable")
