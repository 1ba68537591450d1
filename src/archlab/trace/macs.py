"""Multiply-accumulates (MACs) per image: the multiply-adds each layer performs.

The convention, one for every layer type (stated wherever archlab prints MACs):

- a MAC is one multiplication added into a sum; additions on their own (a bias, a
  residual ``+``, a sum pooling), comparisons (max pooling), activations, dropout,
  reshapes and lookups (``nn.Embedding``) are not MACs: a bias is the sum's starting
  value, so it costs none;
- a convolution: one per weight per output position,
  ``H_out·W_out · C_out · (C_in/groups) · k_h·k_w`` (the lecture's conv1: 28·28·32·1·9 =
  225,792);
- a transposed convolution: one per weight per *input* position,
  ``H_in·W_in · C_in · (C_out/groups) · k_h·k_w``: it scatters each input through its
  kernel, so torchinfo's count on output positions is s² too many for stride s
  (fvcore counts as here);
- ``nn.Linear``: ``in_features · out_features`` per output vector (fc1: 2304·600);
  ``nn.Bilinear``: ``in1·in2 + in1`` per output feature;
- a BatchNorm in eval mode is one scale-and-shift per output element (its statistics are
  fixed, so it folds into ``γ/σ · x + (β − γμ/σ)``): 1 MAC per element; LayerNorm,
  GroupNorm and InstanceNorm compute their statistics per image: 2 per element (the
  squared deviations summed, then the scale-and-shift);
- ``nn.MultiheadAttention``: the in-projections (``L·E·(E + kdim + vdim)``), the scores
  and the weighted sum of values (``2·L·S·E``) and the out-projection (``L·E·E``); the
  row records the query only, so the key's length ``S`` is taken as the query's (self
  attention);
- RNN, GRU, LSTM (and their cells): the matrix products, ``gates · H · (input + H)``
  per step, layer and direction (gates 1, 3, 4), plus an LSTM's projection; the
  element-wise gate products are not counted, like activations;
- any other layer: 0 (no rule). An operation written in ``forward`` (``x @ w``,
  ``F.conv2d``) is a functional row of the trace and is not counted either.

The counts are per image and for one call; a module called twice performs its MACs twice.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from torch import nn

from archlab.trace.formulas import Shape

CONVENTION = (
    "MACs: the multiply-adds each layer performs per image (weights only, no bias adds; "
    "a transposed conv per input position; BatchNorm 1 per element)"
)


def _conv(module: nn.Module, input: Shape, output: Shape) -> int:
    return math.prod(output) * (module.in_channels // module.groups) * math.prod(module.kernel_size)


def _conv_transposed(module: nn.Module, input: Shape, output: Shape) -> int:
    return math.prod(input) * (module.out_channels // module.groups) * math.prod(module.kernel_size)


def _linear(module: nn.Linear, input: Shape, output: Shape) -> int:
    return math.prod(output) * module.in_features


def _bilinear(module: nn.Bilinear, input: Shape, output: Shape) -> int:
    return math.prod(output) * (module.in1_features * module.in2_features + module.in1_features)


def _batch_norm(module: nn.Module, input: Shape, output: Shape) -> int:
    return math.prod(output)


def _norm_with_statistics(module: nn.Module, input: Shape, output: Shape) -> int:
    return 2 * math.prod(output)


def _attention(module: nn.MultiheadAttention, input: Shape, output: Shape) -> int:
    if len(input) < 2:
        return 0
    length, e = input[-2], module.embed_dim
    projections = length * e * (e + module.kdim + module.vdim) + length * e * e
    return projections + 2 * length * length * e


_GATES = {"RNN_TANH": 1, "RNN_RELU": 1, "GRU": 3, "LSTM": 4}


def _rnn(module: nn.RNNBase, input: Shape, output: Shape) -> int:
    steps = input[-2] if len(input) >= 2 else 1
    gates, hidden = _GATES.get(module.mode, 1), module.hidden_size
    proj = getattr(module, "proj_size", 0) or 0
    state = proj or hidden  # what is fed back, and passed to the next layer
    directions = 2 if module.bidirectional else 1
    total = 0
    for layer in range(module.num_layers):
        width = module.input_size if layer == 0 else state * directions
        per_step = gates * hidden * (width + state) + hidden * proj
        total += per_step * directions
    return total * steps


def _cell(module: nn.RNNCellBase, input: Shape, output: Shape) -> int:
    gates = {nn.LSTMCell: 4, nn.GRUCell: 3}.get(type(module), 1)
    return gates * module.hidden_size * (module.input_size + module.hidden_size)


# the table, most specific first (a transposed conv is also a _ConvNd)
RULES: tuple[tuple[type, Callable[[nn.Module, Shape, Shape], int]], ...] = (
    (nn.modules.conv._ConvTransposeNd, _conv_transposed),
    (nn.modules.conv._ConvNd, _conv),
    (nn.Linear, _linear),
    (nn.Bilinear, _bilinear),
    (nn.modules.batchnorm._BatchNorm, _batch_norm),
    (nn.LayerNorm, _norm_with_statistics),
    (nn.GroupNorm, _norm_with_statistics),
    (nn.modules.instancenorm._InstanceNorm, _norm_with_statistics),
    (nn.MultiheadAttention, _attention),
    (nn.RNNBase, _rnn),
    (nn.RNNCellBase, _cell),
)


def layer_macs(module: nn.Module, input: Shape, output: Shape | None) -> int:
    """The multiply-adds ``module`` performs for one image (see the module docstring).

    Args:
        module: the layer.
        input: its input's shape per image (the batch dim left out), e.g. ``(1, 28, 28)``.
        output: its output's shape per image, e.g. ``(32, 28, 28)``; None where it has none.

    Returns:
        The MACs of one call on one image; 0 for a layer without a rule.

    Example:

        >>> layer_macs(nn.Conv2d(1, 32, 3, padding=1), (1, 28, 28), (32, 28, 28))
        225792
        >>> layer_macs(nn.ConvTranspose2d(1, 4, 2, stride=2), (1, 20, 20), (4, 40, 40))
        6400
    """
    if output is None:
        return 0
    for kind, rule in RULES:
        if isinstance(module, kind):
            return int(rule(module, tuple(input), tuple(output)))
    return 0
