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
