"""The explorer's panels, computed and laid out: what a channel looks for (and the quiz),
the map of the test images, the timeline over a run's snapshots, and confidence.

- **channels**: for each convolution, the :data:`CHANNELS_SHOWN` channels that fire most
  often (the cap keeps ``explore`` cheap: synthesis runs only for them), each with its
  synthesised image, its top test images, its effective receptive field
  (:mod:`archlab.analysis.channels`) and a quiz item (:mod:`archlab.analysis.quiz`);
  the quiz proxy is measured over every channel of every convolution.
- **map**: what ``archlab map`` draws (:func:`archlab.analysis.embedding.embed_model`: PCA
  of the input of the last linear layer) of ``map_images`` test images, stratified by
  class, the same for every run; the features are read by a forward pre-hook in plain
  forward passes rather than the trace's record (the same numbers, several times faster).
- **timeline**: each snapshot of a run (``archlab.snapshots(run)``, where the run folder has
  ``snapshots/index.json``): its first convolution's kernels and its map, each map
  rotated (orthogonal Procrustes) onto the final one so that the points move, not the axes.
- **confidence**: :func:`archlab.analysis.calibration.calibration_of_logits`, the
  temperature fitted on the run's validation images if it held some out, else on the last
  5,000 training images (which it trained on: said on the page); and the AUROC of
  scikit-learn's digits against the test set by maximum softmax probability and energy.

:func:`export_panels` computes (tensors), :func:`panels_json` writes the sprites and
returns the keys of ``run.js`` (``schema.json``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from archlab.analysis._probe_budget import NEIGHBOURS

CHANNELS_SHOWN = 8  # channels per convolution in the panel: those that fire most often
DEFAULT_MAP = 10_000  # test images on the map (all of them)
MIN_MAP = NEIGHBOURS + 1  # a map's 10-NN accuracy needs each image's 10 neighbours
DIGITS = "scikit-learn's 1,797 digits"


@dataclass
class PanelChannel:
    index: int
    fires: float  # share of (image, position) units above 0
    dead: bool
    top: list[int]  # test indices, most exciting first (the quiz's references)
    top_values: list[float]
    strong: int  # the quiz's strong query (rank 10), a test index
    weak: int  # the quiz's weak query (the lowest), a test index
    synthesised: torch.Tensor  # (28, 28) in [0, 1]
    synthesised_value: float
    erf: torch.Tensor  # (28, 28) mean |gradient|
    erf_width: tuple[int, int]


@dataclass
class PanelLayer:
    row: int  # the trace row
    name: str
    field: list[int] | None  # the theoretical receptive field, pixels
    channels: list[PanelChannel]


@dataclass
class MapPoints:
    layer: str
    method: str
    indices: list[int]  # test indices
    points: torch.Tensor  # (N, 2)
    predictions: list[int]
    knn: float
    knn_pixels: float


@dataclass
class Frame:
    """One snapshot: its iteration, its accuracy on the map's images, its first
    convolution's kernels ((out, in, k, k) uint8, max |w|) and its map."""

    iteration: int
    accuracy: float
    kernels: tuple[torch.Tensor, float] | None
    map: MapPoints | None


@dataclass
class Confidence:
    fit: str  # which images the temperature was fitted on, in words
    temperature: float
    before: dict[str, float]
    after: dict[str, float]
    bins_before: dict[str, list]
    bins_after: dict[str, list]
    ood: dict[str, float] = field(default_factory=dict)  # method → AUROC, test vs digits


@dataclass
class PanelsExport:
    channels: list[PanelLayer]
    proxy: float | None  # the quiz proxy over every channel of every convolution
    proxy_channels: int
    images: int  # test images searched for the channels' top images
    map: MapPoints | None
    timeline: list[Frame]
    confidence: Confidence | None
    iteration: int = 0


# ----------------------------------------------------------------------------- channels


BATCH = 250  # images per forward pass of the panels' own passes (predict_logits' batch)


def _batches(model: nn.Module, images: torch.Tensor, normalize, before=lambda: None):
    """Run ``model`` over uint8 ``images`` ``(N, H, W)`` :data:`BATCH` at a time as
    ``predict_logits`` does (eval mode, no autograd, NHWC for a conv net that runs in it);
    yields each batch's logits. ``before()`` is called before each batch's pass (the
    layout's own trial pass on two images comes before the first)."""
    from archlab.training.predict import inference_layout, model_device, to_input

    device = model_device(model)
    with inference_layout(model, to_input(images[:2].to(device), normalize)) as nhwc:
        for start in range(0, len(images), BATCH):
            before()
            yield model(to_input(images[start : start + BATCH].to(device), normalize, nhwc))


def conv_stats(
    model: nn.Module, images: torch.Tensor, normalize, names: list[str]
) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Each named layer's mean output per image and channel ``(N, C)`` and its count of
    (image, position) units above 0 ``(C,)``, over uint8 ``images`` ``(N, H, W)``, by
    forward hooks in plain forward passes (the trace's record, which ``archlab channels``
    reads, keeps every row and costs several times more)."""
    modules = dict(model.named_modules())
    found: dict[str, torch.Tensor] = {}
    means: dict[str, list[torch.Tensor]] = {n: [] for n in names}
    positive: dict[str, torch.Tensor] = {}

    def keep(name: str, out: torch.Tensor) -> None:
        # a copy (an in-place ReLU after the layer would change the tensor), and None
        # returned: a forward hook's non-None value replaces the layer's output
        if name not in found:
            found[name] = out.detach().clone()

    handles = [
        modules[n].register_forward_hook(lambda _m, _a, out, n=n: keep(n, out)) for n in names
    ]
    try:
        for _ in _batches(model, images, normalize, found.clear):
            for n in names:
                flat = found[n].float().flatten(2)  # (n, C, H·W)
                means[n].append(flat.mean(2).cpu())
                positive[n] = positive.get(n, 0) + (flat > 0).sum((0, 2)).cpu()
    finally:
        for handle in handles:
            handle.remove()
    return {n: (torch.cat(means[n]), positive[n]) for n in names}


def channel_panel(
    model: nn.Module,
    images: torch.Tensor,
    indices: list[int],
    normalize: tuple[float, float] | None,
    *,
    cap: int = CHANNELS_SHOWN,
    steps: int | None = None,
    seed: int = 0,
) -> tuple[list[PanelLayer], float | None, int]:
    """Every convolution's ``cap`` most often firing channels, and the quiz proxy.

    Args:
        model: the model.
        images: uint8 test images ``(N, 28, 28)`` searched (N ≥ 11).
        indices: their test indices.
        normalize: the run's (mean, std). Default: none.
        cap: channels shown per convolution. Default: 8.
        steps: synthesis steps. Default: ``archlab.analysis.channels``'s.
        seed: the synthesis's randomness. Default: 0.

    Returns:
        ``(layers, proxy, channels the proxy counted)``; no layer for a model without
        convolutions (proxy None).
    """
    from archlab.analysis._settings import ERF_IMAGES
    from archlab.analysis.channels import (
        STEPS,
        effective_field,
        map_layers,
        mass_width,
        synthesise,
    )
    from archlab.analysis.quiz import REFERENCES, quiz_items, quiz_proxy
    from archlab.errors import ArchlabError
    from archlab.models import IMAGE_SHAPE
    from archlab.trace.shapes import trace_shapes
    from archlab.training.predict import model_device, to_input

    if len(images) < REFERENCES + 2:
        return [], None, 0
    try:
        chosen = map_layers(model, None)
    except ArchlabError:  # no convolution (or not traceable): no channels to show
        return [], None, 0
    rows = trace_shapes(model, IMAGE_SHAPE).layers
    x = to_input(images[:ERF_IMAGES], normalize).to(model_device(model))  # the fields'
    stats = conv_stats(model, images, normalize, [name for name, _ in chosen])
    layers, right, counted = [], 0.0, 0
    for name, i in chosen:
        mean, positive = stats[name]
        n_channels = mean.shape[1]
        right += quiz_proxy(images, mean) * n_channels
        counted += n_channels
        units = len(images) * int(torch.tensor(rows[i].output[1:]).prod())
        fires = positive.float() / units
        picked = sorted(range(n_channels), key=lambda c: (-float(fires[c]), c))[:cap]
        synth, value = synthesise(
            model, name, picked, normalize=normalize, steps=steps or STEPS, seed=seed
        )
        erf = effective_field(model, name, picked, x)
        items = quiz_items(mean[:, picked])
        shown = []
        for j, c in enumerate(picked):
            top = items.references[j].tolist()
            shown.append(
                PanelChannel(
                    index=c,
                    fires=float(fires[c]),
                    dead=bool(positive[c] == 0),
                    top=[indices[k] for k in top],
                    top_values=[float(mean[k, c]) for k in top],
                    strong=indices[int(items.strong[j])],
                    weak=indices[int(items.weak[j])],
                    synthesised=synth[j],
                    synthesised_value=float(value[j]),
                    erf=erf[j],
                    erf_width=mass_width(erf[j]),
                )
            )
        receptive = rows[i].receptive
        layers.append(
            PanelLayer(i, name, list(receptive.size) if receptive is not None else None, shown)
        )
    return layers, right / counted, counted


# ----------------------------------------------------------------------------- the map


def map_features(
    model: nn.Module, images: torch.Tensor, normalize: tuple[float, float] | None
) -> tuple[str, torch.Tensor, torch.Tensor]:
    """The input of the model's last ``nn.Linear`` (the map's default layer, as
    :func:`archlab.analysis.embedding.default_layer` finds it), pooled as the probes pool
    (:func:`~archlab.analysis.probes.pool_features`), and the predicted classes, for uint8
    ``images`` ``(N, H, W)``: a forward pre-hook in plain forward passes.

    Returns:
        ``(what, features (N, F), predictions (N,))``.
    """
    from archlab.analysis.embedding import default_layer
    from archlab.analysis.probes import pool_features, trace_rows
    from archlab.trace.record import row_module

    rows = trace_rows(model, (1, *images.shape[1:]))
    linear_row = rows[default_layer(rows, model) + 1]
    linear = row_module(linear_row, dict(model.named_modules()), model)
    found: dict[str, torch.Tensor] = {}
    handle = linear.register_forward_pre_hook(lambda _m, args: found.__setitem__("x", args[0]))
    features, predictions = [], []
    try:
        for logits in _batches(model, images, normalize):
            predictions.append(logits.argmax(1).cpu())
            features.append(pool_features(found["x"].float().cpu()))
    finally:
        handle.remove()
    what = f"{linear_row.name} {linear_row.type} (its input)"
    return what, torch.cat(features), torch.cat(predictions)


def map_panel(
    model: nn.Module,
    data,
    normalize: tuple[float, float] | None,
    images: int,
    knn: bool = True,
) -> MapPoints | None:
    """The model's map of ``images`` test images (stratified, seed 0, as ``archlab map``
    picks them; PCA); None for under 11 images or a model without a linear layer to
    read the features before. ``knn=False`` skips the 10-NN accuracies (NaN)."""
    from archlab.analysis.embedding import knn_accuracy, project
    from archlab.analysis.faithfulness import stratified_indices
    from archlab.errors import ArchlabError

    images = min(images, len(data.test_labels))
    if images < MIN_MAP:
        return None
    at = stratified_indices(data.test_labels, images, 0)
    pictures, labels = data.test_images[at], data.test_labels[at].long()
    try:
        what, features, predictions = map_features(model, pictures, normalize)
    except ArchlabError:
        return None
    points = project(features, "pca")
    nan = float("nan")
    pixels = project(pictures.reshape(len(pictures), -1).float() / 255, "pca") if knn else None
    return MapPoints(
        what,
        "pca",
        at.tolist(),
        points.double(),
        predictions.tolist(),
        knn_accuracy(points, labels) if knn else nan,
        knn_accuracy(pixels, labels) if knn else nan,
    )


def align(points: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``points`` ``(N, 2)`` rotated (or reflected), scaled and moved onto ``target``
    ``(N, 2)`` as closely as least squares allow (orthogonal Procrustes)."""
    p, t = points.double(), target.double()
    pc, tc = p - p.mean(0), t - t.mean(0)
    u, s, vh = torch.linalg.svd(pc.T @ tc)
    rotation = u @ vh
    scale = float(s.sum() / (pc * pc).sum().clamp_min(1e-12))
    return pc @ rotation * scale + t.mean(0)


# ----------------------------------------------------------------------------- snapshots


def find_snapshots(run) -> list:
    """The run's snapshots (:func:`archlab.snapshots`), oldest first; none when its
    folder has no ``snapshots/index.json``."""
    folder = getattr(run, "folder", None)
    if folder is None or not (Path(folder) / "snapshots" / "index.json").is_file():
        return []
    from archlab.training.snapshots import snapshots

    return list(snapshots(run))


def map_accuracy(points: MapPoints | None, data, held_out: int | None = None) -> float:
    """The share of the map's images the model classifies right (NaN without a map),
    over the classes it learned (all but ``held_out``, as its test accuracy is)."""
    if points is None:
        return float("nan")
    labels = data.test_labels[points.indices].long()
    right = (torch.tensor(points.predictions) == labels)[
        labels != (-1 if held_out is None else held_out)
    ]
    return float(right.double().mean())


def first_conv(model: nn.Module) -> nn.Conv2d | None:
    return next((m for m in model.modules() if isinstance(m, nn.Conv2d)), None)


def timeline(
    snapshots: list,
    final: MapPoints | None,
    data,
    normalize,
    images: int,
    held_out: int | None = None,
) -> list[Frame]:
    """A frame per snapshot run (``iteration`` and ``model`` read from each), oldest
    first: its first convolution's kernels and its map, aligned onto ``final``'s."""
    from archlab.explorer.export import kernels

    frames = []
    for snap in sorted(snapshots, key=lambda r: r.iteration):
        conv = first_conv(snap.model)
        points = map_panel(snap.model, data, normalize, images, knn=False)
        if points is not None and final is not None:
            points = dataclasses.replace(points, points=align(points.points, final.points))
        frames.append(
            Frame(
                int(snap.iteration),
                map_accuracy(points, data, held_out),
                kernels(conv) if conv else None,
                points,
            )
        )
    return frames


# ----------------------------------------------------------------------------- confidence


def confidence_panel(run, data, test_logits: torch.Tensor) -> Confidence:
    """Calibration before and after temperature scaling, and the digits' AUROC."""
    from archlab.analysis._ood_settings import BINS, FIT_IMAGES
    from archlab.analysis.calibration import calibration_of_logits
    from archlab.analysis.ood import auroc, digits_images, ood_scores
    from archlab.explorer.export import seen
    from archlab.training.predict import predict_logits

    test_logits = test_logits[seen(run, data.test_labels)]  # as its test accuracy: no held-out
    data = run.own_data(data) if hasattr(run, "own_data") else data
    total = len(data.train_labels)
    held = getattr(run.config, "validation", 0) or 0
    if held:
        n = min(held, total)
        fit = f"the last {n:,} training images, held out of training"
    else:
        n = min(FIT_IMAGES, total)
        fit = f"the last {n:,} training images (no validation split: the run trained on them)"
    at = slice(total - n, total)
    fit_logits = predict_logits(run.model, data.train_images[at], run.normalize)
    cal = calibration_of_logits(
        test_logits, data.test_labels, fit_logits, data.train_labels[at], bins=BINS
    )

    def scores(s) -> dict[str, float]:
        return {"accuracy": s.accuracy, "ece": s.ece, "ace": s.ace, "nll": s.nll}

    def bins(r) -> dict[str, list]:
        return {"counts": r.counts, "accuracy": r.accuracy, "confidence": r.confidence}

    digits, _ = digits_images()
    inside = ood_scores(test_logits)
    outside = ood_scores(predict_logits(run.model, digits, run.normalize))
    return Confidence(
        fit,
        cal.temperature,
        scores(cal.before),
        scores(cal.after),
        bins(cal.reliability_before),
        bins(cal.reliability_after),
        {m: auroc(inside[m], outside[m]) for m in ("msp", "energy")},
    )


# ----------------------------------------------------------------------------- together


def export_panels(
    run,
    data,
    test_logits: torch.Tensor,
    *,
    map_images: int = DEFAULT_MAP,
    channel_images: int | None = None,
    snapshots: list | None = None,
) -> PanelsExport:
    """Everything the panels show about ``run``.

    Args:
        run: a :class:`~archlab.Run`.
        data: the dataset.
        test_logits: the run's logits on the whole test set ``(M, 10)``.
        map_images: test images on the map (0: no map). Default: 10,000.
        channel_images: the first test images searched for the channels' top images.
            Default: all.
        snapshots: the run's snapshot runs. Default: :func:`find_snapshots`.

    Returns:
        A :class:`PanelsExport`.
    """
    n = min(channel_images or len(data.test_labels), len(data.test_labels))
    layers, proxy, counted = channel_panel(
        run.model, data.test_images[:n], list(range(n)), run.normalize
    )
    points = map_panel(run.model, data, run.normalize, map_images) if map_images else None
    snaps = find_snapshots(run) if snapshots is None else snapshots
    # the run itself is the last frame: a snapshot of its own last iteration is not shown
    # twice, and a snapshot run (archlab.snapshots) shares its folder with the later ones
    snaps = [s for s in snaps if int(s.iteration) < int(run.iteration)]
    held = getattr(run, "held_out", None)
    # a frame shows a map or first-layer kernels: without either (a model with neither a
    # map nor a convolution) a timeline would be iterations alone
    shows = points is not None or first_conv(run.model) is not None
    frames = (
        timeline(snaps, points, data, run.normalize, map_images, held)
        if map_images and shows
        else []
    )
    if frames:
        conv = first_conv(run.model)
        from archlab.explorer.export import kernels

        found = kernels(conv) if conv else None
        frames.append(Frame(int(run.iteration), map_accuracy(points, data, held), found, points))
    return PanelsExport(
        layers,
        proxy,
        counted,
        n,
        points,
        frames,
        confidence_panel(run, data, test_logits),  # over the classes it learned
        int(run.iteration),
    )


# ----------------------------------------------------------------------------- the files


def gallery(exports: list) -> list[int]:
    """The test indices whose thumbnails the panels show, sorted (the map's images and
    every shown channel's top images and queries, over all runs)."""
    found: set[int] = set()
    for e in exports:
        p = getattr(e, "panels", None)
        if p is None:
            continue
        if p.map is not None:
            found.update(p.map.indices)
        for layer in p.channels:
            for c in layer.channels:
                found.update([*c.top, c.strong, c.weak])
    return sorted(found)


def _r(values, digits: int = 4) -> list:
    return [float(f"{v:.{digits}g}") if v == v else None for v in values]  # NaN → null


def _bins(bins: dict[str, list]) -> dict[str, list]:
    return {k: list(v) if k == "counts" else _r(v, 3) for k, v in bins.items()}


def _map_json(points: MapPoints, tile: dict[int, int]) -> dict:
    xy = points.points
    return {
        "layer": points.layer,
        "method": points.method,
        "knn": round(points.knn, 4),
        "knn_pixels": round(points.knn_pixels, 4),
        # per point: its tile in index.tests, x, y, predicted class
        "points": [
            [tile[i], *_r(p), c]
            for i, p, c in zip(points.indices, xy.tolist(), points.predictions, strict=True)
        ],
    }


def _kernels_json(found: tuple[torch.Tensor, float], folder: Path, key: str, stem: str) -> dict:
    from archlab.explorer.write import save_png, tile_grid

    q, m = found
    out, inp, kh, kw = q.shape
    cols = inp if inp > 1 else min(out, 16)
    save_png(tile_grid(q.reshape(out * inp, kh, kw), cols, fill=128), folder / stem, "RdBu_r")
    return {"file": f"{key}/{stem}", "out": out, "in": inp, "k": [kh, kw], "cols": cols,
            "max": _r([m])[0]}  # fmt: skip


def panels_json(p: PanelsExport, folder: Path, key: str, tile: dict[int, int]) -> dict:
    """Write the panels' sprites under ``folder`` and return their keys of ``run.js``
    (``tile``: test index → its tile in ``index.tests``)."""
    from archlab.explorer.write import save_sprite

    out: dict = {}
    if p.channels:
        layers = []
        for k, layer in enumerate(p.channels):
            synth = torch.stack([c.synthesised for c in layer.channels])
            erf = torch.stack([c.erf / c.erf.max().clamp_min(1e-12) for c in layer.channels])
            layers.append(
                {
                    "row": layer.row,
                    "name": layer.name,
                    "field": layer.field,
                    "synth": save_sprite(
                        (synth * 255).round().clamp(0, 255).to(torch.uint8), folder,
                        f"synth-{k}", key,
                    ),
                    "erf": save_sprite(
                        (erf * 255).round().clamp(0, 255).to(torch.uint8), folder, f"erf-{k}",
                        key, "magma",
                    ),
                    "channels": [
                        {
                            "index": c.index,
                            "fires": round(c.fires, 4),
                            "dead": c.dead,
                            "top": [tile[i] for i in c.top],
                            "values": _r(c.top_values),
                            "value": _r([c.synthesised_value])[0],
                            "strong": tile[c.strong],
                            "weak": tile[c.weak],
                            "width": list(c.erf_width),
                        }
                        for c in layer.channels
                    ],
                }
            )  # fmt: skip
        out["channels"] = {
            "cap": CHANNELS_SHOWN,
            "images": p.images,
            "proxy": round(p.proxy, 4),
            "counted": p.proxy_channels,
            "layers": layers,
        }
    if p.map is not None:
        out["map"] = _map_json(p.map, tile)
    if p.timeline:
        frames = []
        for k, f in enumerate(p.timeline):
            entry = {"iteration": f.iteration, "accuracy": _r([f.accuracy])[0]}
            if f.kernels is not None:
                entry["kernels"] = _kernels_json(f.kernels, folder, key, f"frame-{k}.png")
            if f.map is not None:
                entry["points"] = _map_json(f.map, tile)["points"]
            frames.append(entry)
        out["timeline"] = frames
    if p.confidence is not None:
        c = p.confidence
        out["confidence"] = {
            "fit": c.fit,
            "temperature": _r([c.temperature])[0],
            "before": {k: _r([v])[0] for k, v in c.before.items()},
            "after": {k: _r([v])[0] for k, v in c.after.items()},
            "bins": {
                "before": _bins(c.bins_before),
                "after": _bins(c.bins_after),
            },
            "ood": {"set": DIGITS, **{m: round(v, 4) for m, v in c.ood.items()}},
        }
    return out
