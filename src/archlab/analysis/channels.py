"""What does a channel look for? Dataset examples, feature visualisation, the effective
receptive field, dead channels and relevance, for every convolution channel of a model.

A channel's *activation* on an image is the mean over positions of the chosen layer's
output map for that channel (for a ``Conv2d``: before its batch norm and ReLU).

- **dataset examples**: the :data:`EXAMPLES` test images with the highest and the lowest
  activation, and where the channel fires most in each (the argmax unit's receptive field,
  clipped to the image). Read from the trace's rows (:func:`~archlab.trace.record.row_outputs`)
  over the test images, :data:`CHUNK` at a time: no hooks of its own.
- **feature visualisation** (Olah et al., Distill 2017): an image optimised by Adam to
  maximise the activation. Regularised (the default) it is parametrised in the Fourier
  domain, each frequency scaled by 1/f (a decorrelated parametrisation: high frequencies
  grow only where the channel asks for them), passed through a sigmoid so that its pixels
  stay in [0, 1], and fed through the run's normalisation. It lives on a canvas
  :data:`JITTER` pixel wider on each side, of which each step of the first half sees a
  window shifted at random (jitter: transformation robustness, never wrapping around); the
  second half settles the centre window, which is the result. All channels of a layer are
  optimised together as one batch (Adam, lr :data:`LR`), the forward pass stopped at the
  layer. ``regularize=False`` optimises the pixels directly (sigmoid, no jitter, no
  Fourier scaling): the high-frequency pattern that shows why the regularisation is
  there. On the first convolution the best image is a box corner (every pixel black or
  white, mostly one uniform shade): the mean brightness gets :data:`MEAN_GAIN` times the
  lowest frequency's scale so that the optimiser reaches it before the higher
  frequencies ring (see :data:`MEAN_GAIN`).
- **effective receptive field** (Luo et al., NeurIPS 2016): the mean absolute gradient of
  the channel's centre unit with respect to the input pixels, over ``erf_images`` test
  images; its width is the shortest run of rows (columns) holding :data:`MASS` of the
  gradient's mass, beside the theoretical field of the trace's row.
- **dead channels**: never positive on any test image at any position.
- **relevance**: gradient × activation of the predicted class's score (logit), summed over
  the channel's positions: the channel's first-order share of the score. It is not
  conservative in general (the shares add up to the score only where the rest of the
  network is linear without bias).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

from archlab._bounds import check_int, check_seed
from archlab._report import Report
from archlab._table import Table
from archlab._text import plural
from archlab.analysis._settings import CHANNEL_STEPS as STEPS
from archlab.analysis._settings import ERF_IMAGES
from archlab.errors import ArchlabError
from archlab.models import IMAGE_SHAPE

EXAMPLES = 9  # top and bottom images per channel, a 3×3 grid
CHUNK = 250  # test images per pass of the tracer: every row's output of a chunk is kept
JITTER = 1  # pixels of random translation per optimisation step
REGULARISED = "regularised: Fourier 1/f, sigmoid, jitter"
PLAIN = "raw pixels, no regularisation"
MASS = 0.95  # share of the gradient mass the effective field's width holds
LR = 0.3
GAIN = 4.0  # the sigmoid's slope on the Fourier image
TAIL = 0.5  # the share of the steps without jitter, at the end
# The mean brightness's scale in the Fourier parametrisation, against 1 for the lowest
# frequencies (1/f clamped at the lowest, as lucid does). Adam moves every coefficient by
# about LR a step whatever its gradient, so at 1 the many higher frequencies outrun the
# mean: a first-layer channel, nearly linear in the pixels, wants a uniform black (or
# white) image, and got one with a ringing border whose pixels saturated white, where the
# sigmoid's gradient vanishes and never brought them back (cnn layer1.0: 19 of 32 channels
# beat the best test image, at 128 or 512 steps alike). Measured on cnn and resnet
# (the synthesised ≥ best test image count): 1: layer1.0 19/32, stem.0 18/32; 5 and 10:
# 32/32 and 32/32; 30: cnn layer2.0 fell from 63/64 to 57/64 (the mean saturates first).
MEAN_GAIN = 10.0
DIVERSITY = 1.0  # the diversity term's weight (synthesise_diverse), next to the activation


@dataclass
class Channel:
    """One channel: its dataset examples, synthesised image, effective field, relevance.

    ``top``/``bottom`` are test-image indices (highest / lowest activation first),
    ``top_boxes`` the pixels ``(row0, col0, row1, col1)`` (inclusive) its argmax unit sees
    in each top image. ``fires`` is the share of (image, position) units above 0.
    """

    layer: str
    index: int
    top: list[int]
    top_values: list[float]
    top_boxes: list[tuple[int, int, int, int]]
    bottom: list[int]
    bottom_values: list[float]
    fires: float
    dead: bool
    synthesised: torch.Tensor | None = None  # (28, 28) pixels in [0, 1]
    synthesised_value: float | None = None
    erf: torch.Tensor | None = None  # (28, 28) mean |gradient|
    erf_width: tuple[int, int] | None = None
    relevant: list[int] = field(default_factory=list)
    relevant_values: list[float] = field(default_factory=list)
    diverse: torch.Tensor | None = None  # (copies, 28, 28): diverse optima, when asked
    diverse_values: list[float] = field(default_factory=list)

    @property
    def best_value(self) -> float:
        """The highest activation of any test image."""
        return self.top_values[0]

    @property
    def beats_best(self) -> bool | None:
        """The synthesised image excites the channel at least as much as the best test image."""
        if self.synthesised_value is None:
            return None
        return self.synthesised_value >= self.best_value


@dataclass
class LayerChannels:
    """One layer's channels, with its output shape ``(C, H, W)`` and theoretical field."""

    layer: str
    shape: tuple[int, ...]
    field_size: tuple[int, ...] | None
    channels: list[Channel]
    erf: torch.Tensor | None = None  # (28, 28): mean over the layer's shown channels
    erf_width: tuple[int, int] | None = None
    field_box: tuple[int, int, int, int] | None = None  # the centre unit's theoretical field

    @property
    def dead(self) -> list[int]:
        return [c.index for c in self.channels if c.dead]


@dataclass
class Channels(Report):
    """What each channel of a model's conv layers looks for: what :func:`channels` returns.

    ``str()`` is one table per layer (channels sorted by how often they fire, dead ones
    marked); ``.plot()`` draws the overview grid of synthesised images per layer and, for
    the first channel shown, its top and bottom test images and effective field;
    ``.plot(ax)`` draws the first layer's overview grid on ``ax``.

    Example::

        >>> report = archlab.channels("cnn", "layer2.0", top=4)  # doctest: +SKIP
        >>> report.beats_best_fraction                           # doctest: +SKIP
        1.0
    """

    _shows_figure = True

    model: str
    layers: list[LayerChannels]
    images: int
    regularize: bool
    steps: int
    test_images: torch.Tensor | None = field(default=None, repr=False)  # for drawing

    @property
    def beats_best_fraction(self) -> float | None:
        """The share of channels whose synthesised image beats every test image."""
        flags = [c.beats_best for lay in self.layers for c in lay.channels]
        flags = [f for f in flags if f is not None]
        return sum(flags) / len(flags) if flags else None

    def to_dict(self) -> dict:
        from archlab._report import jsonable

        out = jsonable({k: v for k, v in vars(self).items() if k != "test_images"})
        out["beats_best_fraction"] = self.beats_best_fraction
        return out

    def _parts(self) -> list[Table | str]:
        parts: list[Table | str] = []
        for lay in self.layers:
            rows = []
            for c in sorted(lay.channels, key=lambda c: -c.fires):
                synth = "-" if c.synthesised_value is None else f"{c.synthesised_value:.3f}"
                rows.append(
                    [
                        str(c.index) + (" (dead)" if c.dead else ""),
                        f"{100 * c.fires:.1f} %",
                        f"{c.best_value:.3f}",
                        synth,
                        " ".join(str(i) for i in c.top[:3]),
                        " ".join(str(i) for i in c.relevant[:3]) or "-",
                    ]
                )
            field_text = "×".join(map(str, lay.field_size)) if lay.field_size else "?"
            erf = "×".join(map(str, lay.erf_width)) if lay.erf_width else "-"
            caption = (
                f"{self.model}: {lay.layer} ({'×'.join(map(str, lay.shape))}), "
                f"{plural(len(lay.channels), 'channel')} over {plural(self.images, 'test image')}; "
                f"field {field_text} theoretical, {erf} effective ({100 * MASS:.0f} % of the "
                f"gradient); dead: {', '.join(map(str, lay.dead)) or 'none'}"
            )
            parts.append(
                Table(
                    ["channel", "fires", "best test", "synthesised", "top images", "most relevant"],
                    rows,
                    caption,
                )
            )
        fraction = self.beats_best_fraction
        if fraction is not None:
            parts.append(
                f"synthesised ≥ best test image in {100 * fraction:.1f} % of the channels "
                f"({REGULARISED if self.regularize else PLAIN}, "
                f"{plural(self.steps, 'step')})"
            )
        many = [c for lay in self.layers for c in lay.channels if c.diverse is not None]
        if many:
            copies = len(many[0].diverse)
            parts.append(
                f"diverse optima: {copies} per channel (diversity term weight {DIVERSITY:g}: "
                f"cosine of their Gram matrices); their least activation reaches the single "
                f"image's in {sum(min(c.diverse_values) >= c.synthesised_value for c in many)}"
                f" of {plural(len(many), 'channel')}"
            )
        return parts

    def plot(self, ax=None):
        from archlab.viz.channels import plot_channels

        return plot_channels(self, ax=ax)


# --- choosing the layers and channels -------------------------------------------------


def check_channels_options(
    *,
    channels: Sequence[int] | None = None,
    top: int | None = None,
    steps: int = STEPS,
    images: int = 10_000,
    erf_images: int = ERF_IMAGES,
    seed: int = 0,
    diverse: int = 0,
) -> None:
    """Refuse bad options before any work, one :class:`~archlab.ArchlabError` naming the
    argument."""
    if channels is not None and top is not None:
        raise ArchlabError(
            f"channels={list(channels)!r} and top={top!r}: give one of them",
            cli_message="--channels and --top: give one of them",
        )
    if channels is not None:
        if not len(channels):
            raise ArchlabError(
                "channels=[]: name at least one channel",
                cli_message="--channels: name at least one channel",
            )
        for c in channels:
            check_int("channels", c, 0, 1 << 20)
    if top is not None:
        check_int("top", top, 1, 1 << 20)
    check_int("steps", steps, 0, 100_000)
    check_int("images", images, EXAMPLES, 10_000)
    check_int("erf_images", erf_images, 0, 10_000)
    check_int("diverse", diverse, 0, 64)
    if diverse == 1:
        raise ArchlabError(
            "diverse=1: diverse optima need at least 2 images per channel (0: none)",
            cli_message="--diverse 1: give at least 2 images per channel",
        )
    check_seed(seed)


def map_layers(model: nn.Module, layer: str | Sequence[str] | None) -> list[tuple[str, int]]:
    """``(name, trace row)`` of the layers to look at: every ``Conv2d`` by default, else the
    named layers, each of which must output ``(C, H, W)`` maps."""
    from archlab.trace.shapes import trace_shapes

    report = trace_shapes(model, IMAGE_SHAPE)
    if report.error is not None:
        raise ArchlabError(f"{type(model).__name__}: {report.error}", 1)
    first: dict[str, int] = {}
    for i, row in enumerate(report.layers):
        if not row.functional and row.output is not None and len(row.output) == 3:
            first.setdefault(row.name, i)
    modules = dict(model.named_modules())
    if layer is None:
        names = [n for n in first if isinstance(modules.get(n), nn.Conv2d)]
        if not names:
            raise ArchlabError(f"{type(model).__name__} has no convolution, so no channels to show")
    else:
        names = [layer] if isinstance(layer, str) else list(layer)
        for n in names:
            if n not in first:
                choices = ", ".join(first) or "none"
                raise ArchlabError(
                    f"layer={n!r}: not a layer of {type(model).__name__} with feature maps; "
                    f"choose from {choices}",
                    cli_message=f"--layer {n}: not a layer with feature maps; "
                    f"choose from {choices}",
                )
    return [(n, first[n]) for n in names]


def _pick(
    n_channels: int,
    layer: str,
    channels: Sequence[int] | None,
    top: int | None,
    fires: torch.Tensor,
) -> list[int]:
    if channels is not None:
        bad = [c for c in channels if c >= n_channels]
        if bad:
            has = f"{layer} has {n_channels} channels (0-{n_channels - 1})"
            raise ArchlabError(
                f"channels={list(channels)!r}: {has}", cli_message=f"--channels {bad[0]}: {has}"
            )
        return list(dict.fromkeys(int(c) for c in channels))
    if not len(fires):
        return []
    order = sorted(range(n_channels), key=lambda c: (-float(fires[c]), c))
    return order[: top or n_channels]


# --- dataset examples -----------------------------------------------------------------


@dataclass
class _Stats:
    """Per-layer activation statistics over the test images."""

    mean: torch.Tensor  # (N, C) mean over positions
    argmax: torch.Tensor  # (N, C) flat index of the strongest unit
    positive: torch.Tensor  # (C,) (image, position) units above 0


def dataset_stats(
    model: nn.Module, x: torch.Tensor, rows: dict[str, int], progress=None
) -> dict[str, _Stats]:
    """Each layer's per-image, per-channel mean activation and argmax unit over the inputs
    ``x`` ``(N, 1, 28, 28)`` (normalised), read from the trace's rows, :data:`CHUNK` at a time.

    Args:
        model: the model.
        x: the model's inputs.
        rows: ``{layer name: trace row}`` (from :func:`map_layers`).
        progress: a tqdm bar to advance by the images done, or None.
    """
    from archlab.trace.record import row_outputs
    from archlab.trace.shapes import trace_shapes

    n_rows = len(trace_shapes(model, IMAGE_SHAPE).layers)
    parts: dict[str, list[tuple[torch.Tensor, torch.Tensor]]] = {n: [] for n in rows}
    positive: dict[str, torch.Tensor] = {}
    for start in range(0, len(x), CHUNK):
        outputs, _ = row_outputs(model, x[start : start + CHUNK], n_rows)
        for name, i in rows.items():
            out = outputs[i]
            if out is None:
                raise ArchlabError(f"{name}: its output has no one-map-per-image layout", 1)
            flat = out.flatten(2)  # (n, C, H·W)
            parts[name].append((flat.mean(2), flat.argmax(2)))
            count = (flat > 0).sum((0, 2))
            positive[name] = positive.get(name, 0) + count
        if progress is not None:
            progress.update(min(CHUNK, len(x) - start))
    stats = {}
    for name, pieces in parts.items():
        mean = torch.cat([p[0] for p in pieces])
        argmax = torch.cat([p[1] for p in pieces])
        stats[name] = _Stats(mean, argmax, positive[name])
    return stats


def unit_pixels(receptive, shape: Sequence[int], flat: int) -> tuple[int, int, int, int]:
    """The input pixels ``(row0, col0, row1, col1)`` (inclusive, clipped to 28×28) that
    unit ``flat`` of a ``(C, H, W)`` map sees, from the row's receptive field."""
    h, w = shape[-2], shape[-1]
    r, c = divmod(int(flat), w)
    if receptive is None:  # no field known: the unit's share of the image
        return (r * 28 // h, c * 28 // w, (r + 1) * 28 // h - 1, (c + 1) * 28 // w - 1)
    box = []
    for u, size, jump, start in zip(
        (r, c), receptive.size, receptive.jump, receptive.start, strict=False
    ):
        first = int(start + u * jump)
        box.append((max(first, 0), min(first + size - 1, IMAGE_SHAPE[-1] - 1)))
    return (box[0][0], box[1][0], box[0][1], box[1][1])


# --- feature visualisation ------------------------------------------------------------


class _Stop(Exception):
    """Raised by the hook once the layer has run: the rest of the network is not needed."""


@contextlib.contextmanager
def layer_output(model: nn.Module, name: str) -> Iterator[dict]:
    """Keep ``name``'s output (with its graph) in ``found["out"]`` and stop the forward
    pass there (:class:`_Stop`); the hook is removed on exit."""
    found: dict[str, torch.Tensor] = {}

    def keep(_m, _args, output):
        found["out"] = output
        raise _Stop

    handle = dict(model.named_modules())[name].register_forward_hook(keep)
    try:
        yield found
    finally:
        handle.remove()


def _run_to(model: nn.Module, name: str, x: torch.Tensor) -> torch.Tensor:
    with layer_output(model, name) as found, contextlib.suppress(_Stop):
        model(x)
    if "out" not in found:
        raise ArchlabError(f"{name} did not run in {type(model).__name__}'s forward pass", 1)
    return found["out"]


def _fourier_scale(size: int = 28) -> torch.Tensor:
    """1/f for each frequency of an ``rfft2`` of a ``size``×``size`` image, the mean (DC)
    :data:`MEAN_GAIN` times the lowest frequency's scale."""
    fy = torch.fft.fftfreq(size)[:, None]
    fx = torch.fft.rfftfreq(size)[None, :]
    freq = torch.sqrt(fx * fx + fy * fy)
    scale = 1.0 / (size * torch.clamp(freq, min=1.0 / size))  # the lowest frequencies: 1
    scale[0, 0] = MEAN_GAIN
    return scale


def synthesise(
    model: nn.Module,
    layer: str,
    channels: Sequence[int],
    *,
    normalize: tuple[float, float] | None = None,
    steps: int = STEPS,
    regularize: bool = True,
    seed: int = 0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Images ``(K, 28, 28)`` in [0, 1] that maximise each channel's mean activation, and
    that activation ``(K,)`` on the final image (without jitter).

    Args:
        model: the model (put in eval mode for the duration).
        layer: the layer's name.
        channels: which channels, one image each (optimised together as one batch).
        normalize: the run's (mean, std) of [0, 1] pixels. Default: none.
        steps: Adam steps. Default: 128.
        regularize: Fourier 1/f parametrisation and jitter (see the module). Default: True.
        seed: the random start and jitter. Default: 0.
    """
    images, values = _optimise(
        model,
        layer,
        channels,
        1,
        0.0,
        normalize=normalize,
        steps=steps,
        regularize=regularize,
        seed=seed,
    )
    return images[:, 0], values[:, 0]


def synthesise_diverse(
    model: nn.Module,
    layer: str,
    channels: Sequence[int],
    copies: int = 4,
    *,
    weight: float = DIVERSITY,
    normalize: tuple[float, float] | None = None,
    steps: int = STEPS,
    regularize: bool = True,
    seed: int = 0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``copies`` images per channel ``(K, copies, 28, 28)`` that each excite the channel
    and differ from one another (Olah et al. 2017, lucid's ``diversity`` objective), and
    their activations ``(K, copies)``.

    The loss adds ``weight`` times :func:`diversity_penalty` of each channel's images (at
    the same layer) to minus their summed activation: the images are pushed towards
    different textures (their Gram matrices apart), at some cost in activation.

    Args:
        model: the model (put in eval mode for the duration).
        layer: the layer's name.
        channels: which channels.
        copies: images per channel (at least 2 for the term to act). Default: 4.
        weight: the penalty's weight; 0 gives ``copies`` independent starts. Default:
            :data:`DIVERSITY`.
        normalize, steps, regularize, seed: as :func:`synthesise`.
    """
    return _optimise(
        model,
        layer,
        channels,
        copies,
        weight,
        normalize=normalize,
        steps=steps,
        regularize=regularize,
        seed=seed,
    )


def diversity_penalty(outputs: torch.Tensor) -> torch.Tensor:
    """Lucid's diversity: of ``copies`` layer outputs ``(copies, C, H, W)``, each one's Gram
    matrix (``C×C``, over the positions) as a unit vector; the sum of the cosine
    similarities of every ordered pair ``i ≠ j``, over ``copies``.

    Example:

        >>> a = torch.zeros(2, 2, 1, 1); a[0, 0] = 1; a[1, 1] = 1  # orthogonal Grams
        >>> float(diversity_penalty(a)), float(diversity_penalty(torch.ones(2, 2, 1, 1)))
        (0.0, 1.0)
    """
    flat = outputs.flatten(2)  # (copies, C, H·W)
    grams = torch.nn.functional.normalize((flat @ flat.transpose(1, 2)).flatten(1), dim=1)
    cos = grams @ grams.T
    return (cos.sum() - cos.diagonal().sum()) / len(outputs)


def _optimise(
    model: nn.Module,
    layer: str,
    channels: Sequence[int],
    copies: int,
    weight: float,
    *,
    normalize: tuple[float, float] | None,
    steps: int,
    regularize: bool,
    seed: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``copies`` images per channel ``(K, copies, 28, 28)`` and their activations
    ``(K, copies)``, all optimised as one batch; ``weight`` > 0 adds the diversity term."""
    from archlab._modes import in_mode

    k = len(channels) * copies
    device = next(model.parameters(), torch.zeros(())).device
    gen = torch.Generator().manual_seed(seed)
    idx = torch.tensor(list(channels), device=device).repeat_interleave(copies)
    size = IMAGE_SHAPE[-1]
    # a canvas JITTER pixels wider on each side, of which each step sees a shifted 28×28
    # window (the centre one at the end): a translation that never wraps around
    pad = JITTER if regularize else 0
    canvas = size + 2 * pad
    if regularize:
        scale = _fourier_scale(canvas).to(device)
        param = (torch.randn(k, 1, canvas, canvas // 2 + 1, 2, generator=gen) * 0.01).to(device)
    else:
        param = (torch.randn(k, 1, size, size, generator=gen) * 0.01).to(device)
    param.requires_grad_(True)

    def pixels(dy: int = 0, dx: int = 0) -> torch.Tensor:
        if not regularize:
            return torch.sigmoid(param)
        spectrum = torch.view_as_complex(param) * scale
        full = torch.fft.irfft2(spectrum, s=(canvas, canvas), norm="ortho")
        window = full[..., pad + dy : pad + dy + size, pad + dx : pad + dx + size]
        return torch.sigmoid(window * GAIN)

    def to_model(p: torch.Tensor) -> torch.Tensor:
        return p if normalize is None else (p - normalize[0]) / normalize[1]

    def value(out: torch.Tensor) -> torch.Tensor:
        return out[torch.arange(k, device=device), idx].flatten(1).mean(1)

    optimizer = torch.optim.Adam([param], lr=LR)
    frozen = [p for p in model.parameters() if p.requires_grad]
    with in_mode(model), torch.enable_grad():
        for p in frozen:
            p.requires_grad_(False)
        try:
            for step in range(steps):
                dy, dx = torch.randint(-pad, pad + 1, (2,), generator=gen).tolist()
                if step >= steps - int(steps * TAIL):  # the end settles the centre window
                    dy = dx = 0
                out = _run_to(model, layer, to_model(pixels(dy, dx)))
                loss = -value(out).sum()
                if weight and copies > 1:
                    for group in out.split(copies):
                        loss = loss + weight * diversity_penalty(group)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
            with torch.no_grad():
                image = pixels()
                final = value(_run_to(model, layer, to_model(image)))
        finally:
            for p in frozen:
                p.requires_grad_(True)
    n = len(channels)
    return (
        image[:, 0].detach().cpu().reshape(n, copies, size, size),
        final.detach().cpu().reshape(n, copies),
    )


# --- effective receptive field --------------------------------------------------------


def effective_field(
    model: nn.Module, layer: str, channels: Sequence[int], x: torch.Tensor
) -> torch.Tensor:
    """Mean absolute input gradient ``(K, 28, 28)`` of each channel's centre unit
    (``(H // 2, W // 2)``) over the inputs ``x`` ``(N, 1, 28, 28)``."""
    from archlab._modes import in_mode

    maps = []
    with in_mode(model), torch.enable_grad():
        x = x.clone().requires_grad_(True)
        out = _run_to(model, layer, x)
        h, w = out.shape[-2] // 2, out.shape[-1] // 2
        for c in channels:
            (grad,) = torch.autograd.grad(out[:, c, h, w].sum(), x, retain_graph=True)
            maps.append(grad.abs().mean(0)[0].cpu())
    return torch.stack(maps) if maps else torch.zeros(0, *IMAGE_SHAPE[1:])


def mass_width(grad_map: torch.Tensor, mass: float = MASS) -> tuple[int, int]:
    """The shortest run of rows and of columns holding ``mass`` of a map's total.

    Example:

        >>> g = torch.zeros(28, 28); g[10:13, 5:9] = 1.0
        >>> mass_width(g)
        (3, 4)
    """
    widths = []
    for dim in (1, 0):
        line = grad_map.double().sum(dim)
        total = float(line.sum())
        if total <= 0:
            widths.append(0)
            continue
        cum = torch.cat([torch.zeros(1, dtype=line.dtype), line.cumsum(0)])
        best = len(line)
        for start in range(len(line)):
            ends = torch.nonzero(cum[start + 1 :] - cum[start] >= mass * total - 1e-12 * total)
            if len(ends):
                best = min(best, int(ends[0]) + 1)
        widths.append(best)
    return widths[0], widths[1]


# --- relevance ------------------------------------------------------------------------


def relevance(
    model: nn.Module, x: torch.Tensor, layers: Sequence[str], batch: int = 500
) -> dict[str, torch.Tensor]:
    """Gradient × activation of the predicted class's logit, summed over each channel's
    positions: ``{layer: (N, C)}``.

    Args:
        model: the model.
        x: inputs ``(N, 1, 28, 28)``, normalised.
        layers: layer names with ``(C, H, W)`` outputs.
        batch: images per pass. Default: 500.
    """
    from archlab._modes import in_mode

    modules = dict(model.named_modules())
    found: dict[str, torch.Tensor] = {}

    def hook(name):
        def keep(_m, _args, output):
            found.setdefault(name, output)
            # the rest of the network gets a copy: an in-place ReLU after the layer would
            # otherwise overwrite the activation that relevance multiplies by
            return output.clone()

        return keep

    parts: dict[str, list[torch.Tensor]] = {n: [] for n in layers}
    handles = [modules[n].register_forward_hook(hook(n)) for n in layers]
    try:
        with in_mode(model), torch.enable_grad():
            for start in range(0, len(x), batch):
                found.clear()
                logits = model(x[start : start + batch])
                score = logits.gather(1, logits.argmax(1, keepdim=True)).sum()
                acts = [found[n] for n in layers]
                grads = torch.autograd.grad(score, acts)
                for n, a, g in zip(layers, acts, grads, strict=True):
                    parts[n].append((a * g).flatten(2).sum(2).detach().cpu())
    finally:
        for handle in handles:
            handle.remove()
    return {n: torch.cat(p) for n, p in parts.items()}


# --- the report -----------------------------------------------------------------------


class _Clock:
    """Adds the seconds since the last lap to ``timings[step]`` (nothing without a dict)."""

    def __init__(self, timings: dict[str, float] | None) -> None:
        import time

        self.timings, self.now = timings, time.perf_counter
        self.last = self.now()

    def lap(self, step: str) -> None:
        now = self.now()
        if self.timings is not None:
            self.timings[step] = self.timings.get(step, 0.0) + now - self.last
        self.last = now


def channels_of_model(
    model: nn.Module,
    images: torch.Tensor,
    layer: str | Sequence[str] | None = None,
    *,
    normalize: tuple[float, float] | None = None,
    channels: Sequence[int] | None = None,
    top: int | None = None,
    steps: int = STEPS,
    regularize: bool = True,
    erf_images: int = ERF_IMAGES,
    relevant: bool = True,
    seed: int = 0,
    diverse: int = 0,
    model_name: str | None = None,
    progress: bool = False,
    timings: dict[str, float] | None = None,
) -> Channels:
    """:func:`channels` for a model and uint8 test images ``(N, 28, 28)``.

    Args:
        model: the model.
        images: uint8 pixels ``(N, 28, 28)``.
        layer: see :func:`channels`.
        normalize: the run's (mean, std). Default: none.
        channels, top, steps, regularize, erf_images, seed, diverse: see :func:`channels`.
        relevant: compute the relevance top images. Default: True.
        model_name: the name in titles. Default: the model's class.
        progress: show a tqdm bar. Default: False.
        timings: filled with the seconds of each step (see :func:`channels`). Default: none.
    """
    from archlab.trace.shapes import trace_shapes
    from archlab.training.predict import model_device, to_input

    check_channels_options(
        channels=channels,
        top=top,
        steps=steps,
        images=len(images),
        erf_images=erf_images,
        seed=seed,
        diverse=diverse,
    )
    chosen = map_layers(model, layer)
    report = trace_shapes(model, IMAGE_SHAPE)
    for name, i in chosen:  # a channel number out of range: refused before any work
        _pick(report.layers[i].output[0], name, channels, top, torch.zeros(0))
    x = to_input(images, normalize).to(model_device(model))
    clock = _Clock(timings)
    bar = None
    if progress:
        from tqdm.std import tqdm

        bar = tqdm(total=len(x), desc="test images", unit="img", leave=False, dynamic_ncols=True)
    try:
        stats = dataset_stats(model, x, dict(chosen), bar)
    finally:
        if bar is not None:
            bar.close()
    clock.lap("dataset search")
    rel = relevance(model, x, [n for n, _ in chosen]) if relevant else {}
    clock.lap("relevance")
    out_layers = []
    layers_bar = chosen
    if progress:
        from tqdm.std import tqdm

        layers_bar = tqdm(chosen, desc="synthesising", unit="layer", leave=False)
    for name, i in layers_bar:
        row = report.layers[i]
        s = stats[name]
        n_channels = s.mean.shape[1]
        units = len(x) * int(torch.tensor(row.output[1:]).prod())
        fires = s.positive.float() / units
        picked = _pick(n_channels, name, channels, top, fires)
        clock.lap("dataset search")
        synth, synth_value = (None, None)
        if steps:
            synth, synth_value = synthesise(
                model,
                name,
                picked,
                normalize=normalize,
                steps=steps,
                regularize=regularize,
                seed=seed,
            )
        clock.lap("synthesis")
        many, many_values = (None, None)
        if steps and diverse:
            many, many_values = synthesise_diverse(
                model,
                name,
                picked,
                diverse,
                normalize=normalize,
                steps=steps,
                regularize=regularize,
                seed=seed,
            )
        clock.lap("diverse synthesis")
        erf = effective_field(model, name, picked, x[:erf_images]) if erf_images else None
        clock.lap("effective field")
        shown = []
        for j, c in enumerate(picked):
            order = torch.argsort(s.mean[:, c], descending=True, stable=True)
            top_idx = order[:EXAMPLES].tolist()
            low_idx = order.flip(0)[:EXAMPLES].tolist()
            top_idx_rel = []
            rel_values = []
            if rel:
                r_order = torch.argsort(rel[name][:, c], descending=True, stable=True)[:EXAMPLES]
                top_idx_rel = r_order.tolist()
                rel_values = [float(rel[name][k, c]) for k in top_idx_rel]
            shown.append(
                Channel(
                    layer=name,
                    index=c,
                    top=top_idx,
                    top_values=[float(s.mean[k, c]) for k in top_idx],
                    top_boxes=[
                        unit_pixels(row.receptive, row.output, s.argmax[k, c]) for k in top_idx
                    ],
                    bottom=low_idx,
                    bottom_values=[float(s.mean[k, c]) for k in low_idx],
                    fires=float(fires[c]),
                    dead=bool(s.positive[c] == 0),
                    synthesised=None if synth is None else synth[j],
                    synthesised_value=None if synth_value is None else float(synth_value[j]),
                    erf=None if erf is None else erf[j],
                    erf_width=None if erf is None else mass_width(erf[j]),
                    relevant=top_idx_rel,
                    relevant_values=rel_values,
                    diverse=None if many is None else many[j],
                    diverse_values=[] if many_values is None else many_values[j].tolist(),
                )
            )
        layer_erf = None if erf is None else erf.mean(0)
        field_size = tuple(row.receptive.size) if row.receptive is not None else None
        h, w = row.output[1], row.output[2]
        box = unit_pixels(row.receptive, row.output, (h // 2) * w + w // 2)
        out_layers.append(
            LayerChannels(
                name,
                tuple(row.output),
                field_size,
                shown,
                layer_erf,
                None if layer_erf is None else mass_width(layer_erf),
                box,
            )
        )
    clock.lap("report")
    return Channels(
        model_name or type(model).__name__,
        out_layers,
        len(images),
        regularize,
        steps,
        images,
    )


def channels(
    model,
    layer: str | None = None,
    *,
    channels: Sequence[int] | None = None,
    top: int | None = None,
    steps: int = STEPS,
    regularize: bool = True,
    images: int = 10_000,
    erf_images: int = ERF_IMAGES,
    relevant: bool = True,
    seed: int = 0,
    diverse: int = 0,
    progress: bool = False,
    runs: str | os.PathLike = "runs",
    data=None,
    timings: dict[str, float] | None = None,
) -> Channels:
    """What each channel of a model's conv layers looks for (see the module for the methods).

    Args:
        model: a :class:`~archlab.Run`, a run's spec or folder name (loaded from ``runs``),
            or an ``nn.Module`` (a user's model as it is, inputs not normalised).
        layer: a layer with ``(C, H, W)`` outputs, such as ``"layer2.0"``. Default: every
            ``Conv2d``.
        channels: which channels of each layer. Default: all (or ``top``).
        top: the ``top`` channels that fire most often in each layer. Default: all.
        steps: feature-visualisation steps; 0 skips it. Default: 128.
        regularize: Fourier 1/f parametrisation, sigmoid and jitter; False optimises the raw
            pixels. Default: True.
        images: the first ``images`` test images searched. Default: 10,000.
        erf_images: test images for the effective receptive field; 0 skips it. Default: 16.
        relevant: find each channel's most relevant test images (one forward and backward
            pass over ``images``). Default: True.
        seed: the synthesis's random start and jitter. Default: 0.
        diverse: also synthesise this many diverse images per channel (2 to 64, with
            :func:`synthesise_diverse`'s diversity term); 0: none. Default: 0.
        progress: show progress bars. Default: False.
        runs: the runs folder, when ``model`` is a name. Default: ``"runs"``.
        data: the dataset. Default: :func:`~archlab.load_fashion_mnist`.
        timings: filled with the seconds of each step, added to what it holds:
            ``dataset search`` (the test images through the trace's rows, the top and
            bottom images), ``relevance``, ``synthesis``, ``diverse synthesis``,
            ``effective field``, ``report``. Default: none.

    Returns:
        A :class:`Channels` report.

    Example::

        >>> report = archlab.channels("cnn", "layer1.0", top=4)  # doctest: +SKIP
        >>> [c.index for c in report.layers[0].channels]         # doctest: +SKIP
    """
    from archlab.analysis.features import _model_of

    check_channels_options(
        channels=channels,
        top=top,
        steps=steps,
        images=images,
        erf_images=erf_images,
        seed=seed,
        diverse=diverse,
    )
    net, name, normalize = _model_of(model, runs)
    if data is None:
        from archlab.training.data import load_fashion_mnist

        data = load_fashion_mnist()
    return channels_of_model(
        net,
        data.test_images[:images],
        layer,
        normalize=normalize,
        channels=channels,
        top=top,
        steps=steps,
        regularize=regularize,
        erf_images=erf_images,
        relevant=relevant,
        seed=seed,
        diverse=diverse,
        model_name=name,
        progress=progress,
        timings=timings,
    )
