"""Every figure fits a 16:9 slide at a readable size: the lecture's CNN and zoo-sized cases.

A slide is 13.33 × 7.5 in. A figure fits when it is no larger than the slide or shaped like
one (width/height 1.2 to 2.2), when scaled to the slide its smallest text is still at least
``READABLE`` points, no text runs off its edge and no axes is left empty. Weights and
results are synthetic: the layout, not the numbers, is under test. ``--keep-figures DIR``
is not offered; set ``ARCHLAB_FIGURES=DIR`` to write the PNGs and look at them.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

import archlab
from archlab.analysis.evaluation import ClassificationReport, Comparison, ModelResult
from archlab.analysis.explain import METHODS, Attribution, Explanation, SanityCheck
from archlab.viz import plt
from archlab.viz._figure import SLIDE_HEIGHT, SLIDE_WIDTH, close_figure
from archlab.viz.evaluation import plot_comparison, plot_tradeoff
from archlab.viz.features import plot_filters

READABLE = 6.0  # points, the smallest text on the slide once scaled to fit it
LONG = "cnn+layer2.0.padding=1+fc1.in_features=3136"
ZOO = ["dnn", "cnn", "lenet5", "vgg", "nin", "resnet", "mobilenet"]


def _report(name: str, seed: int) -> ClassificationReport:
    g = torch.Generator().manual_seed(seed)
    matrix = torch.randint(0, 40, (10, 10), generator=g) + torch.diag(torch.full((10,), 900))
    return ClassificationReport(name, matrix)


def _comparison(names: list[str]) -> Comparison:
    return Comparison(
        [
            ModelResult(n, 10_000 * 3**k, 200_000 * 2**k, 30.0, _report(n, k))
            for k, n in enumerate(names)
        ]
    )


def _explanation(model: str, methods=METHODS, sanity: bool = True) -> Explanation:
    g = torch.Generator().manual_seed(0)
    image = torch.randint(0, 256, (28, 28), generator=g, dtype=torch.uint8)
    probs = torch.softmax(torch.randn(10, generator=g), 0)
    probs[5] = probs.max() + 1.0
    probs /= probs.sum()  # predicted: Sandal (5); the true class is Sneaker (7)
    attributions = [
        Attribution(
            m,
            f"{m} title",
            "settings: baseline black image, 50 steps, Gauss-Legendre, internal batch 50",
            torch.randn(28, 28, generator=g),
            signed=m != "gradcam",
            native=torch.rand(6, 6, generator=g) if m == "gradcam" else None,
        )
        for m in methods
    ]
    check = None
    if sanity:
        steps = ["fc3", "fc2", "fc1", "layer2.0", "layer1.0"]
        check = SanityCheck(
            steps,
            {m: [0.9 - 0.2 * k for k in range(len(steps))] for m in methods},
            {m: torch.randn(28, 28, generator=g) for m in methods},
        )
    return Explanation(
        model, 42, image, 7, probs, target=7, attributions=attributions, sanity=check
    )


def _figures() -> dict:
    return {
        "explain-cnn": lambda: _explanation("cnn").plot(),
        "explain-long-name-true-target": lambda: _explanation(LONG).plot(),
        "explain-two-methods": lambda: _explanation("resnet", ("ig", "gradcam"), False).plot(),
        "compare-lecture": lambda: plot_comparison(_comparison(["dnn", "cnn"])),
        "compare-four": lambda: plot_comparison(_comparison(["dnn", "cnn", LONG, "resnet"])),
        "compare-zoo": lambda: plot_comparison(_comparison(ZOO)),
        "tradeoff-zoo": lambda: plot_tradeoff(_comparison([*ZOO, LONG])),
        "filters-layer1.0": lambda: plot_filters(torch.randn(32, 1, 3, 3), "cnn: layer1.0"),
        "filters-layer2.0": lambda: plot_filters(torch.randn(64, 32, 3, 3), f"{LONG}: layer2.0"),
        "filters-wide": lambda: plot_filters(torch.randn(256, 128, 3, 3), "vgg: features.7"),
        "confusion": lambda: _report("cnn", 0).plot(),
        "draw-cnn": lambda: archlab.draw("cnn").plot(),
        "draw-resnet-depth-1": lambda: archlab.draw("resnet", depth=1).plot(),
    }


def _texts(fig):
    """The texts drawn: every visible one but the tick labels matplotlib keeps and does
    not draw (those of an axes turned off, those outside the view)."""
    from matplotlib.axis import Axis, Tick

    drawn = set()
    for ax in fig.axes:
        if ax.axison:
            for axis in (ax.xaxis, ax.yaxis):
                drawn |= {id(t.label1) for t in axis._update_ticks() if t.label1.get_visible()}
                drawn |= {id(t.label2) for t in axis._update_ticks() if t.label2.get_visible()}
                drawn.add(id(axis.label))
    ticks = set()
    for artist in fig.findobj(lambda a: isinstance(a, (Tick, Axis))):
        ticks |= {id(t) for t in artist.findobj() if hasattr(t, "get_text")}
    for artist in fig.findobj(lambda a: hasattr(a, "get_text") and hasattr(a, "get_fontsize")):
        if not artist.get_visible() or not artist.get_text().strip():
            continue
        if id(artist) in ticks and id(artist) not in drawn:
            continue
        yield artist


def check_fits(fig, name: str) -> list[str]:
    """What keeps ``fig`` off a slide: its shape, its smallest text once scaled to the
    slide, text off its edge, empty axes."""
    problems = []
    width, height = fig.get_size_inches()
    fits = width <= SLIDE_WIDTH + 0.01 and height <= SLIDE_HEIGHT + 0.01
    if not fits and not 1.2 <= width / height <= 2.2:
        problems.append(f"shape {width:.1f} × {height:.1f} in is not a slide's")
    scale = min(SLIDE_WIDTH / width, SLIDE_HEIGHT / height)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    box = fig.bbox
    smallest = min((t.get_fontsize() for t in _texts(fig)), default=99)
    if smallest * scale < READABLE:
        problems.append(
            f"{smallest} pt text is {smallest * scale:.1f} pt on a slide ({width:.1f} × "
            f"{height:.1f} in scaled by {scale:.2f})"
        )
    for t in _texts(fig):
        extent = t.get_window_extent(renderer)
        if (
            extent.x0 < box.x0 - 1
            or extent.y0 < box.y0 - 1
            or extent.x1 > box.x1 + 1
            or extent.y1 > box.y1 + 1
        ):
            problems.append(f"text {t.get_text()!r} runs off the figure")
    for ax in fig.axes:
        drawn = ax.images or ax.lines or ax.patches or ax.collections or ax.texts
        if ax.get_visible() and not drawn:
            problems.append(f"an empty axes at {ax.get_position().bounds}")
    return problems


@pytest.mark.parametrize("name", list(_figures()))
def test_figure_fits_a_slide(name):
    if name.startswith("draw-") and name != "draw-cnn" and "depth" not in name:
        pytest.importorskip("graphviz")
    fig = _figures()[name]()
    try:
        problems = check_fits(fig, name)
        keep = os.environ.get("ARCHLAB_FIGURES")
        if keep:
            Path(keep).mkdir(parents=True, exist_ok=True)
            fig.savefig(Path(keep) / f"{name}.png", dpi=100)
    finally:
        close_figure(fig)
    assert not problems, problems


def test_the_checker_can_fail():
    """The old filter grid of layer2.0 (all 2,048 kernels, 966 × 1,611 px) and a title off
    the edge are caught."""
    fig = plt.figure(figsize=(8, 13.4))
    ax = fig.add_subplot()
    ax.imshow(torch.rand(64 * 4, 32 * 4).numpy())
    fig.text(0.9, 0.5, "a run name running off the right edge")
    fig.add_axes((0.1, 0.1, 0.2, 0.2))
    problems = check_fits(fig, "old")
    close_figure(fig)
    assert any("not a slide's" in p for p in problems)
    assert any("runs off" in p for p in problems)
    assert any("empty axes" in p for p in problems)


def test_explanation_says_whose_score_it_explains():
    fig = _explanation("cnn").plot()
    title = fig._suptitle.get_text().replace("\n", " ")
    close_figure(fig)
    assert "predicted: Sandal" in title and "the score of Sneaker, not the prediction" in title


def test_filters_of_many_inputs_show_the_mean_and_say_so():
    fig = plot_filters(torch.randn(64, 32, 3, 3), "cnn: layer2.0")
    image = fig.axes[0].images[0].get_array()
    title = fig.axes[0].get_title().replace("\n", " ")
    close_figure(fig)
    assert image.shape == (8 * 4 - 1, 8 * 4 - 1)  # 64 tiles of 3×3, 8 to a row
    assert "each the mean over its 32 input maps" in title


# -- text against text and data, at 1920×1080 ---------------------------------------------------
SCREEN = (1920, 1080)  # pixels: a full-HD projector


def _boxes_overlap(a, b, slack: float = 1.0) -> bool:
    return (
        a.x0 + slack < b.x1 and b.x0 + slack < a.x1 and a.y0 + slack < b.y1 and b.y0 + slack < a.y1
    )


def _rectangle(text, box, dpi: float):
    """The corners of a text's own (turned) rectangle: its box on the screen is the
    upright box around it, with the same centre."""
    import numpy as np

    angle = np.deg2rad(text.get_rotation())
    u, n = np.array([np.cos(angle), np.sin(angle)]), np.array([-np.sin(angle), np.cos(angle)])
    lines = text.get_text().count("\n") + 1
    h = lines * text.get_fontsize() * dpi / 72  # the glyphs' height, without line spacing
    c, s = abs(u[0]), abs(u[1])
    w = (box.width - h * s) / c if c > 0.1 else (box.height - h * c) / s
    centre = np.array([(box.x0 + box.x1) / 2, (box.y0 + box.y1) / 2])
    return [centre + i * u * w / 2 + j * n * h / 2 for i, j in ((-1, -1), (1, -1), (1, 1), (-1, 1))]


def _turned_overlap(a, box_a, b, box_b, dpi: float) -> bool:
    """Whether two texts' own rectangles overlap (separating axes): upright boxes of
    turned tick labels overlap where the letters do not."""
    import numpy as np

    if a.get_rotation() % 90 == 0 and b.get_rotation() % 90 == 0:
        return True
    ra, rb = np.array(_rectangle(a, box_a, dpi)), np.array(_rectangle(b, box_b, dpi))
    for poly in (ra, rb):
        for k in range(2):
            axis = poly[k + 1] - poly[k]
            axis = np.array([-axis[1], axis[0]]) / (np.linalg.norm(axis) or 1)
            pa, pb = ra @ axis, rb @ axis
            if pa.max() <= pb.min() + 1 or pb.max() <= pa.min() + 1:
                return False
    return True


def _data_points(ax):
    """Display coordinates of what ``ax`` plots: line vertices (with points between
    them), scatter offsets; and the boxes of its bars."""
    import numpy as np
    from matplotlib.patches import Rectangle

    points = []
    for line in ax.get_lines():
        if not line.get_visible() or line.get_label().startswith("_child"):
            continue
        xy = line.get_xydata()
        if len(xy) > 1:  # a straight line between the vertices: sample it
            a, b = xy[:-1], xy[1:]
            xy = np.concatenate([a + f * (b - a) for f in np.linspace(0, 1, 25)])
        points.append(line.get_transform().transform(xy))
    for coll in ax.collections:
        offsets = coll.get_offsets()
        if len(offsets):
            points.append(coll.get_offset_transform().transform(offsets))
    bars = [
        p.get_window_extent()
        for p in ax.patches
        if isinstance(p, Rectangle) and p.get_visible() and p.get_width() and p.get_height()
    ]
    points = np.concatenate(points) if points else np.zeros((0, 2))
    return points, bars


def check_overlaps(fig) -> list[str]:
    """Text on text anywhere, and text or a legend on an axes' data (lines, points,
    bars), with the figure shown at 1920×1080 (its size in inches kept)."""
    width, height = fig.get_size_inches()
    fig.set_dpi(min(SCREEN[0] / width, SCREEN[1] / height))
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    texts = [(t, t.get_window_extent(renderer)) for t in _texts(fig)]
    problems = []
    for i, (a, box_a) in enumerate(texts):
        for b, box_b in texts[i + 1 :]:
            if _boxes_overlap(box_a, box_b) and _turned_overlap(a, box_a, b, box_b, fig.dpi):
                problems.append(f"text {a.get_text()!r} overlaps {b.get_text()!r}")
    for ax in fig.axes:
        points, bars = _data_points(ax)
        covers = [(repr(t.get_text()), t.get_window_extent(renderer)) for t in ax.texts]
        if ax.get_legend() is not None:
            covers.append(("the legend", ax.get_legend().get_window_extent(renderer)))
        for what, box in covers:
            inside = (
                (points[:, 0] > box.x0 + 1)
                & (points[:, 0] < box.x1 - 1)
                & (points[:, 1] > box.y0 + 1)
                & (points[:, 1] < box.y1 - 1)
            )
            if inside.any() or any(_boxes_overlap(box, bar, 2.0) for bar in bars):
                problems.append(f"{what} covers data in {ax.get_title()!r}")
    return problems


def test_the_overlap_checker_can_fail():
    fig = plt.figure(figsize=(6, 4))
    ax = fig.add_subplot()
    ax.plot([0, 1], [0, 1], label="a line")
    ax.bar([0.5], [0.9], width=0.3, label="a bar")
    ax.legend(loc="center")
    ax.text(0.1, 0.1, "one text")
    ax.text(0.1, 0.1, "another")
    problems = check_overlaps(fig)
    close_figure(fig)
    assert any("overlaps" in p for p in problems)
    assert any("the legend covers data" in p for p in problems)


def _overlays() -> dict:
    from tests.test_viz import _pairs

    def both(kind):
        a, b = _pairs()[kind]
        fig, ax = plt.subplots(figsize=(8, 4.5), layout="constrained")
        a.plot(ax)
        b.plot(ax)
        return fig

    def long_names():
        from tests.test_reports import _run

        fig, ax = plt.subplots(figsize=(6.4, 4.8), layout="constrained")  # pyplot's default
        for name, accuracy in ((LONG, 0.88), (POCKET, 0.91), ("dnn", 0.86)):
            run = _run(accuracy)
            run.name = name
            run.plot(ax)
        return fig

    figures = {f"overlay-{kind}": (lambda k=kind: both(k)) for kind in _pairs()}
    figures["overlay-Run-long-names"] = long_names
    return figures


POCKET = "pocket_mobilenet.PocketMobileNet"  # a user's model: no + or , to break at


def _own_figures() -> dict:
    """Each report's own whole figure (``.plot()``), the issue's five-run compare with a
    long user model name, and explain with one image's deletion curves."""
    from tests.test_viz import _flip_report, _mistakes_figure, _pairs

    figures = {f"own-{kind}": (lambda k=kind: _pairs()[k][1].plot()) for kind in _pairs()}
    five = ["dnn", "cnn", POCKET, LONG, "resnet"]
    figures["compare-five-long-names"] = lambda: plot_comparison(_comparison(five))
    figures["explain-faithfulness"] = lambda: _explained_with_curves(LONG).plot()
    figures["mistakes-12"] = lambda: _mistakes_figure(12)
    figures["mistakes-16"] = lambda: _mistakes_figure(16)
    figures["attack-flips"] = lambda: _flip_report().plot_flips()
    figures["activations-cnn"] = lambda: archlab.activations(
        archlab.create_model("cnn"), image=torch.zeros(28, 28, dtype=torch.uint8)
    ).plot()
    figures["explain-faithfulness-user-model"] = lambda: _explained_with_curves(POCKET).plot()
    figures["speedrun-ladder"] = _ladder_figure
    return figures


def _ladder_figure():
    """The speedrun's ladder with nine rungs, three of them branches that did not pay."""
    from archlab.viz.speedrun import plot_ladder

    g = torch.Generator().manual_seed(0)
    rows = []
    for k in range(9):
        accuracy = 88.5 + 0.5 * k
        rows.append(
            {
                "rung": f"rung-{k}",
                "accuracy": [accuracy, 0.2],
                "accuracies": (accuracy + 0.3 * torch.randn(5, generator=g)).tolist(),
                "seconds": [90.0 - 4 * k, 3.0],
                "pays": None if k == 0 else k % 3 != 0,
                "branch": k % 3 == 0 and k > 0,
            }
        )
    return plot_ladder(rows)


def _explained_with_curves(model: str) -> Explanation:
    from archlab.analysis.faithfulness import Faithfulness, Row

    explanation = _explanation(model, sanity=False)
    curve = torch.linspace(1, 0, 29)
    rows = [
        Row(m, "method", "", (0.3, 0.0), (0.7, 0.0), morf_curve=curve**2, lerf_curve=1 - curve)
        for m in METHODS
    ] + [
        Row(c, "control", "", (0.5, 0.0), (0.5, 0.0), morf_curve=curve, lerf_curve=curve)
        for c in ("random", "sobel", "constant")
    ]
    explanation.faithfulness = Faithfulness(model, "zero", 1, 0, 28, torch.linspace(0, 1, 29), rows)
    return explanation


def _all_figures() -> dict:
    return {**_figures(), **_overlays(), **_own_figures()}


@pytest.mark.parametrize("name", list(_own_figures()))
def test_every_reports_own_figure_fits_a_slide(name):
    fig = _own_figures()[name]()
    try:
        problems = check_fits(fig, name)
    finally:
        close_figure(fig)
    assert not problems, problems


@pytest.mark.parametrize("name", list(_all_figures()))
def test_no_text_covers_text_or_data(name):
    if name.startswith("draw-"):
        pytest.skip("the architecture drawing checks its own layout (tests/test_draw.py)")
    fig = _all_figures()[name]()
    try:
        problems = check_overlaps(fig)
    finally:
        close_figure(fig)
    assert not problems, problems


def test_explain_shows_one_methods_deletion_curves_against_random_and_says_where_the_rest_are():
    """Sixteen single-image curves in a 150×130 px panel could not be read."""
    fig = _explained_with_curves("cnn").plot()
    try:
        (ax,) = [a for a in fig.axes if a.get_title().startswith("deletion")]
        labels = [line.get_label() for line in ax.get_lines()]
        assert labels == ["saliency MoRF", "saliency LeRF", "random MoRF", "random LeRF"]
        assert "archlab.faithfulness()" in " ".join(t.get_text() for t in ax.texts)
        width, height = ax.get_window_extent().size / fig.dpi
        assert width >= 1.2 and height >= 1.2  # inches: as large as the maps
    finally:
        close_figure(fig)
