"""archlab/viz: figures made once, shown once, saved atomically."""

import sys

import matplotlib

from archlab.viz import _figure


def test_figures_belong_to_pyplot_in_scripts_and_to_nobody_in_an_inline_kernel(monkeypatch):
    import matplotlib.pyplot as plt

    before = plt.get_fignums()  # other tests may have left figures open
    fig = _figure.figure(figsize=(2, 2))
    assert fig.canvas.manager is not None  # pyplot's: plt.show() and sphinx-gallery see it
    assert len(plt.get_fignums()) == len(before) + 1
    _figure.close_figure(fig)
    assert plt.get_fignums() == before
    # a Jupyter kernel drawing inline shows pyplot's figures when a cell ends *and* the
    # figure the cell returns: there a figure of its own shows once
    monkeypatch.setitem(sys.modules, "ipykernel", sys)
    monkeypatch.setattr(
        matplotlib, "get_backend", lambda: "module://matplotlib_inline.backend_inline"
    )
    fig = _figure.figure(figsize=(2, 2))
    assert fig.canvas.manager is None and plt.get_fignums() == before
    fig, axes = _figure.subplots(1, 2, figsize=(4, 2))
    assert len(axes) == 2 and plt.get_fignums() == before


def test_save_figure_writes_atomically_and_closes(tmp_path):
    import matplotlib.pyplot as plt

    before = plt.get_fignums()
    fig = _figure.figure(figsize=(2, 2))
    fig.add_subplot().plot([0, 1])
    path = _figure.save_figure(fig, tmp_path / "a.png")
    assert path.read_bytes()[:4] == b"\x89PNG" and plt.get_fignums() == before
    assert [p.name for p in tmp_path.iterdir()] == ["a.png"]  # no partial left behind


def _pairs():
    """Two reports of each kind that draws lines (or bars) into a given axes, from two
    runs named apart."""
    import torch

    import archlab
    from archlab.analysis.dynamics import Dynamics
    from archlab.analysis.faithfulness import Faithfulness, Row
    from archlab.analysis.robustness import ModelRobustness, Robustness
    from archlab.training.lr_find import LRFinder
    from tests.test_reports import _run

    def run(name, accuracy):
        r = _run(accuracy)
        r.name = name
        return r

    def faith(model):
        curve = torch.linspace(1, 0, 5)
        rows = [
            Row(n, k, "", (0.5, 0.0), (0.6, 0.0), morf_curve=curve, lerf_curve=curve.flip(0))
            for n, k in (("ig", "method"), ("random", "control"))
        ]
        return Faithfulness(model, "zero", 10, 0, 28, torch.linspace(0, 1, 5), rows)

    def dyn(model):
        def point(it):
            return {"iteration": it, "std": [1.0, 2.0 + it], "hist": [[0.5, 0.5], [0.9, 0.1]]}

        record = {"layers": ["fc1", "fc2"], "bins": 2, "hist_max": 4.0}
        return Dynamics([model], [{**record, "points": [point(0), point(9)]}])

    def lr(model):
        rates = [1e-4, 1e-3, 1e-2]
        return LRFinder(model, rates, [2.3, 2.0, 2.2], [2.3, 2.1, 2.15], 1e-3, 1e-3)

    def attack(model):
        return Robustness([0.0, 0.1], 10, 3, [ModelRobustness(model, [0.9, 0.5], [0.9, 0.3])])

    return {
        "Run": (run("dnn", 0.88), run("cnn", 0.91)),
        "LRFinder": (lr("dnn"), lr("cnn")),
        "Robustness": (attack("dnn"), attack("cnn")),
        "Faithfulness": (faith("dnn"), faith("cnn")),
        "Dynamics": (dyn("dnn"), dyn("cnn")),
        "ShapeReport": (archlab.trace_shapes("cnn"), archlab.trace_shapes("lenet5")),
        "ParamReport": (archlab.count_params("dnn"), archlab.count_params("cnn")),
    }


def _colour(artist) -> tuple:
    from matplotlib.colors import to_rgba

    if hasattr(artist, "patches"):  # bars: their container is the legend's handle
        artist = artist.patches[0]
    get = getattr(artist, "get_color", None) or artist.get_facecolor
    return to_rgba(get())


import pytest  # noqa: E402


@pytest.mark.parametrize("kind", list(_pairs()))
def test_two_reports_plotted_into_one_axes_are_two_labelled_runs(kind):
    """``a.plot(ax); b.plot(ax); ax.legend()``: each run's lines are labelled by its name
    and drawn in colours of their own (two green lines with one label before)."""
    a, b = _pairs()[kind]
    names = ["cnn", "lenet5"] if kind == "ShapeReport" else ["dnn", "cnn"]
    fig, ax = _figure.subplots()
    try:
        a.plot(ax)
        b.plot(ax)
        handles, labels = ax.get_legend_handles_labels()
        mine = [
            {_colour(h) for h, t in zip(handles, labels, strict=True) if t.startswith(n)}
            for n in names
        ]
        assert all(mine), (labels, names)  # each run has labelled lines
        assert not mine[0] & mine[1], labels  # in colours of their own
    finally:
        _figure.close_figure(fig)


def test_a_run_takes_the_colour_and_label_it_is_given():
    from tests.test_reports import _run

    fig, ax = _figure.subplots()
    try:
        _run().plot(ax, color="purple", label="mine")
        line = ax.get_lines()[0]
        assert (line.get_label(), line.get_color()) == ("mine", "purple")
        assert not ax.texts  # the last accuracy is in the legend, not beside the line
    finally:
        _figure.close_figure(fig)


def test_dynamics_of_two_runs_aligns_rows_by_layer_name_with_gaps():
    """fc1 was row 7 on the left and row 5 on the right: each row is now one layer for
    every run, and a run without that layer leaves its cell empty."""
    from archlab.analysis.dynamics import Dynamics
    from archlab.viz.dynamics import _layers

    def record(layers):
        points = [
            {"iteration": it, "std": [1.0] * len(layers), "hist": [[1.0, 0.0]] * len(layers)}
            for it in (0, 10)
        ]
        return {"layers": layers, "bins": 2, "hist_max": 1.0, "points": points}

    a = ["layer1.0", "layer1.1", "layer2.0", "fc1", "fc2"]
    b = ["layer1.0", "layer2.0", "layer2.1", "fc1", "fc2"]
    assert _layers([record(a), record(b)]) == [
        "layer1.0",
        "layer1.1",
        "layer2.0",
        "layer2.1",
        "fc1",
        "fc2",
    ]
    fig = Dynamics(["a", "b"], [record(a), record(b)]).plot()
    try:
        grid = {}
        for ax in fig.axes:
            spec = ax.get_subplotspec()
            grid[(spec.rowspan.start, spec.colspan.start)] = ax
        names = [grid[(r, 0)].get_ylabel() for r in range(6)]
        assert names == _layers([record(a), record(b)])
        fc1 = names.index("fc1")
        assert grid[(fc1, 0)].images and grid[(fc1, 1)].images  # one row for both runs
        gap = names.index("layer1.1")
        assert grid[(gap, 0)].images and not grid[(gap, 1)].images  # b has no layer1.1
        assert grid[(names.index("layer2.1"), 0)].texts[0].get_text() == "no such layer"
    finally:
        _figure.close_figure(fig)


def _mistakes_figure(n: int):
    import torch

    from archlab.training.data import CLASSES
    from archlab.viz.evaluation import plot_mistakes

    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (n, 28, 28), generator=g, dtype=torch.uint8)
    labels = torch.arange(n) % 10
    probs = torch.softmax(torch.randn(n, 10, generator=g), 1)
    return plot_mistakes(images, labels, probs, list(range(n)), CLASSES)


@pytest.mark.parametrize(("n", "shape"), [(16, (2, 8)), (12, (2, 6)), (10, (2, 5)), (5, (1, 5))])
def test_the_mistakes_grid_has_no_half_empty_row(n, shape):
    """12 mistakes were a row of 8 and a row of 4 beside four empty cells."""
    fig = _mistakes_figure(n)
    try:
        shown = [ax for ax in fig.axes if ax.images]
        assert len(shown) == len(fig.axes) == n  # no empty cell
        rows = {round(ax.get_position().y0, 3) for ax in shown}
        assert (len(rows), n // len(rows)) == shape
    finally:
        _figure.close_figure(fig)


def _flip_report():
    import torch

    from archlab.analysis.robustness import Flip, ModelRobustness, Robustness

    g = torch.Generator().manual_seed(0)
    image = torch.rand(28, 28, generator=g)
    adversarial = image + 0.1 * torch.randn(28, 28, generator=g).sign()
    flip = Flip(7, 0.1, "Pullover", "Coat", image, adversarial, image, adversarial)
    return Robustness([0.0, 0.1], 10, 3, [ModelRobustness("cnn", [1, 0], [1, 0], [flip])])


def test_first_flips_show_the_difference_and_say_true_and_predicted():
    report = _flip_report()
    flip = report.results[0].flips[0]
    fig = report.plot_flips()
    try:
        titles = [ax.get_title() for ax in fig.axes]
        assert "true = predicted: Pullover" in titles[0]
        assert "predicted: Coat" in titles[2]
        (diff,) = [ax for ax in fig.axes if ax.get_title().startswith("attacked − clean")]
        shown = diff.images[0]
        expected = (flip.adversarial - flip.image).numpy()
        assert (shown.get_array() == expected).all()
        low, high = shown.get_clim()
        assert abs(high - 0.1) < 1e-6 and low == -high  # ± ε, white at no change
    finally:
        _figure.close_figure(fig)


def test_activation_maps_are_each_on_their_own_scale_and_say_so():
    """On one scale shared by 64 channels all but the largest maps looked alike."""
    import torch

    from archlab.viz.features import plot_activations

    maps = torch.stack([torch.full((6, 6), 0.01), torch.full((6, 6), 50.0), torch.zeros(6, 6)])
    fig = plot_activations({"layer2": maps})
    try:
        (ax,) = [a for a in fig.axes if a.images]
        mosaic = ax.images[0].get_array()
        assert float(mosaic[:6, :6].max()) == 1.0 and float(mosaic[:6, 7:13].max()) == 1.0
        assert float(mosaic[:6, 14:20].max()) == 0.0  # a dead map stays dark
        text = " ".join(t.get_text() for t in fig.findobj(lambda a: hasattr(a, "get_text")))
        assert "each coloured from 0 to its own maximum" in text
    finally:
        _figure.close_figure(fig)


def test_draw_field_is_the_python_door_to_draw_field():
    """``archlab draw cnn --field layer2.3 --unit 1,2`` had no Python door (a notebook
    shelled out). The field is checked by hand: layer2's pooled unit (1, 2) sees the
    10×10 input pixels from row 4·1 − 1 = 3 and column 4·2 − 1 = 7 (jump 4, start −1)."""
    import torch

    import archlab

    picture = archlab.draw_field("cnn", "layer2.3", unit=(1, 2))
    assert picture.seen == ((3, 12), (7, 16))
    image = torch.arange(784, dtype=torch.float32).reshape(28, 28).to(torch.uint8)
    fig = archlab.draw_field("cnn", "layer2.3", unit=(1, 2), image=image).plot()
    try:
        assert fig.axes[0].images  # drawn over the image
    finally:
        _figure.close_figure(fig)
    assert "draw_field" in archlab.__all__ and "FieldPicture" in archlab.__all__


def test_shapes_of_different_models_in_one_axes_count_layers_instead_of_naming_one():
    import archlab

    fig, ax = _figure.subplots()
    try:
        archlab.trace_shapes("cnn").plot(ax)
        assert [t.get_text() for t in ax.get_xticklabels()][:2] == ["input", "layer1.0"]
        archlab.trace_shapes("lenet5").plot(ax)  # other layers: cnn's names would mislead
        labels = [t.get_text() for t in ax.get_xticklabels()]
        assert labels[:3] == ["0", "1", "2"] and ax.get_xlabel().startswith("layer, in the order")
    finally:
        _figure.close_figure(fig)
