"""The training step captured in a CUDA graph: CUDA only, never imported on the CPU path.

An eager step of the lecture's CNN at batch 100 launches some fifty small kernels one by
one from Python; on an H200 that took 2.4-3 ms a step, for arithmetic worth a few
microseconds (REFERENCE.md). A CUDA graph records the launches once and replays them
with one call. Captured: the batch's gather from the training set (already on the device)
through a static index buffer, the scaling to model input, forward, loss, backward and
the fused Adam update, whose learning rate it reads from a device tensor
(:class:`~archlab.training._adam.Adam` with ``capturable=True``). Per iteration the host
copies the batch's indices into the buffer, sets the learning rate and replays.

The graph runs the eager step's kernels on the same inputs, so its result is the eager
step's (``tests/test_cuda.py`` checks it bit for bit). Dropout draws from torch's
graph-safe Philox stream, which advances as the eager calls would.

Where a graph cannot be used the loop takes eager steps, and the run records why
(:func:`graph_step` returns the reason):

- the batch size does not divide the training set: the last batch of an epoch has another
  shape than the captured one;
- capture fails: the model synchronises with the host in its forward pass (``.item()``,
  ``.cpu()``, ``print`` of a tensor, Python ``if`` on a tensor's value, ``nonzero`` or a
  boolean mask), or makes tensors on the CPU, or calls something torch cannot capture;
- ``ARCHLAB_CUDA_GRAPH=0`` in the environment (to measure the eager step, or to rule the
  graph out).
"""

from __future__ import annotations

import contextlib
import os

import torch
from torch import nn

from archlab.training.predict import to_input

_WARMUP = 3  # eager steps on a side stream before capture (cuBLAS/cuDNN set-up, Adam's state)


class GraphedStep:
    """One training step as a CUDA graph; ``step(idx)`` replays it for the batch ``idx``.

    The model's and optimiser's state are put back after the warm-up and capture, so the
    first replay is the run's next step, exactly as an eager step would be.
    """

    def __init__(
        self,
        net: nn.Module,
        optimizer,
        loss_fn,
        images: torch.Tensor,
        labels: torch.Tensor,
        batch_size: int,
        normalize: tuple[float, float] | None,
        channels_last: bool,
    ) -> None:
        self.net, self.optimizer, self.loss_fn = net, optimizer, loss_fn
        self.images, self.labels = images, labels
        self.normalize, self.channels_last = normalize, channels_last
        self.idx = torch.arange(batch_size, device=images.device)  # the static input
        self.graph = torch.cuda.CUDAGraph()
        saved = _State(net, optimizer)
        try:
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                for _ in range(_WARMUP):
                    optimizer.zero_grad(set_to_none=True)
                    self._body()
            torch.cuda.current_stream().wait_stream(side)
            optimizer.zero_grad(set_to_none=True)  # the graph's backward allocates the grads
            with torch.cuda.graph(self.graph):
                self.loss = self._body()
        finally:
            saved.restore()

    def _body(self) -> torch.Tensor:
        x = to_input(self.images.index_select(0, self.idx), self.normalize, self.channels_last)
        loss = self.loss_fn(self.net(x), self.labels.index_select(0, self.idx))
        loss.backward()
        self.optimizer.step()
        return loss.detach()

    def step(self, idx: torch.Tensor) -> torch.Tensor:
        """One step on the batch ``idx`` (indices on the device); returns its loss (a copy:
        the graph's own output is overwritten by the next replay). No host sync."""
        self.idx.copy_(idx)
        self.graph.replay()
        return self.loss.clone()


class _State:
    """The model's parameters and buffers, the optimiser's state and the RNGs, copied, to
    be written back in place (the graph holds these very tensors)."""

    def __init__(self, net: nn.Module, optimizer) -> None:
        self.net, self.optimizer = net, optimizer
        self.tensors = [t.detach().clone() for t in net.state_dict().values()]
        self.adam = [{k: v.clone() for k, v in s.items()} for s in optimizer.state]
        self.rng = torch.get_rng_state()
        self.cuda_rng = torch.cuda.get_rng_state()

    @torch.no_grad()
    def restore(self) -> None:
        for tensor, saved in zip(self.net.state_dict().values(), self.tensors, strict=True):
            tensor.copy_(saved)
        for state, saved in zip(self.optimizer.state, self.adam, strict=True):
            for key, value in state.items():
                if key in saved:
                    value.copy_(saved[key])
                else:  # made by the warm-up: a fresh state is all zeros (step 0 included)
                    value.zero_()
        torch.set_rng_state(self.rng)
        torch.cuda.set_rng_state(self.cuda_rng)


def graph_step(
    net: nn.Module,
    optimizer,
    loss_fn,
    images: torch.Tensor,
    labels: torch.Tensor,
    batch_size: int,
    normalize: tuple[float, float] | None,
    channels_last: bool,
) -> tuple[GraphedStep | None, str]:
    """A :class:`GraphedStep`, or None and the reason the loop must step eagerly."""
    if os.environ.get("ARCHLAB_CUDA_GRAPH", "1") == "0":
        return None, "ARCHLAB_CUDA_GRAPH=0"
    if len(labels) % batch_size:
        return None, (
            f"the batch size {batch_size} does not divide the {len(labels):,} training "
            "images: each epoch's last batch is smaller than the captured one"
        )
    try:
        graphed = GraphedStep(
            net, optimizer, loss_fn, images, labels, batch_size, normalize, channels_last
        )
    except Exception as exc:  # any failure to capture leaves the eager step, which works
        optimizer.zero_grad(set_to_none=True)
        with contextlib.suppress(RuntimeError):  # a broken context fails the eager step too
            torch.cuda.synchronize()
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        return None, f"capture failed ({type(exc).__name__}: {first[:200]})"
    return graphed, "CUDA graph"
