"""examples/lecture.ipynb runs in a real Jupyter kernel, every answer renders, once.

The notebook is docs/lecture_notebook.py's output; it trains the CNN and the DNN for one
epoch each on the real Fashion-MNIST (in a temporary runs folder), so it is a realdata test.
"""

import importlib.util
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
SCRIPT = ROOT / "docs" / "lecture_notebook.py"
IMAGE = ("image/png", "image/svg+xml", "image/jpeg")
TEXT_MOST = 3_000  # characters of one output's text/plain


def _generator():
    spec = importlib.util.spec_from_file_location("lecture_notebook", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _figures(output: dict) -> int:
    """How many pictures one output shows: those in its HTML where it has HTML (what a
    notebook renders first), else one for an image."""
    data = output.get("data", {})
    if "text/html" in data:
        return len(re.findall(r"<img\b|<svg\b", data["text/html"]))
    return int(any(key in data for key in IMAGE))


def test_the_notebook_is_the_generators_output():
    assert (ROOT / "examples" / "lecture.ipynb").read_text(encoding="utf-8") == _generator().text()


def test_figures_are_counted_from_html_or_images():
    html = {"output_type": "execute_result", "data": {"text/html": "<table/><img src=x><img>"}}
    png = {"output_type": "display_data", "data": {"image/png": "...", "text/plain": "<Figure>"}}
    text = {"output_type": "execute_result", "data": {"text/plain": "<Figure size 640x480>"}}
    assert [_figures(o) for o in (html, png, text)] == [2, 1, 0]


@pytest.mark.realdata
def test_the_notebook_runs_in_a_kernel_and_every_report_renders_once(tmp_path, monkeypatch):
    from archlab.training import data

    if not data.DEBIAN_DIR.is_dir():
        pytest.skip("real Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)")
    nbclient = pytest.importorskip("nbclient")  # the test extra installs it (make test)

    # the kernel inherits the environment: a notebook's own (inline) backend, not the
    # tests' Agg, and the data unpacked into a temporary folder
    monkeypatch.delenv("MPLBACKEND", raising=False)
    monkeypatch.setenv("ARCHLAB_DATA", str(tmp_path / "data"))
    nb = _generator().build()
    nbclient.NotebookClient(
        nb, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()

    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    results = 0
    for cell in code:
        where = f"cell {cell.id} ({cell.source.splitlines()[0]!r})"
        kinds = [o.output_type for o in cell.outputs]
        assert "error" not in kinds, where
        stderr = [o.text for o in cell.outputs if o.get("name") == "stderr"]
        assert not stderr, f"{where} wrote to stderr: {stderr}"
        shown = sum(_figures(o) for o in cell.outputs)
        assert shown == cell.metadata["archlab"]["figures"], f"{where} shows {shown} pictures"
        for output in cell.outputs:
            # what a terminal, nbconvert --to script and the notebook's file keep: a
            # summary (one attack result's dataclass dump was 165,715 characters)
            plain = output.get("data", {}).get("text/plain", "") or output.get("text", "")
            assert len(plain) < TEXT_MOST, f"{where}: {len(plain):,} characters of text"
            if output.output_type == "execute_result":
                results += 1
                assert "text/html" in output.data or any(k in output.data for k in IMAGE), where
    # every code cell but the first (the import) ends with a report or a figure
    assert results == len(code) - 1
    assert (tmp_path / "runs" / "cnn" / "checkpoint.pt").is_file()
