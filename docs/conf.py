"""Sphinx configuration: the site is built from docstrings and from running examples/."""

from __future__ import annotations

import os
import sys
from pathlib import Path

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "src"))

import archlab  # noqa: E402

project = "archlab"
author = "the archlab authors"
copyright = "2026, the archlab authors"
version = release = archlab.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx_gallery.gen_gallery",
    "cli_reference",
    "api_reference",
]
exclude_patterns = ["_build", "auto_examples/*.ipynb", "auto_examples/*.py", "**.zip"]
html_theme = "furo"
html_title = f"archlab {version}"
templates_path: list[str] = []
# Everything a page loads comes from the site itself, so it reads the same offline (a
# lecture hall, an exam room, an archived copy); docs/check_site.py enforces it.
html_static_path = ["_static"]
html_css_files = ["archlab.css"]
html_favicon = "_static/favicon.svg"
autodoc_member_order = "bysource"
autodoc_typehints = "description"
napoleon_google_docstring = True
napoleon_numpy_docstring = False
nitpicky = False

# Trained checkpoints are cached in the build folder: the training example writes them
# once, later examples (and later builds) reuse them.
os.environ.setdefault("ARCHLAB_DOCS_RUNS", str(HERE / "_build" / "runs"))
os.environ.setdefault("MPLBACKEND", "Agg")

sphinx_gallery_conf = {
    "examples_dirs": str(HERE.parent / "examples"),
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "within_subsection_order": "FileNameSortKey",
    "abort_on_example_error": True,
    "only_warn_on_example_error": False,
    "download_all_examples": False,
    "show_memory": False,
    "remove_config_comments": True,
    "matplotlib_animations": False,
    "image_scrapers": ("matplotlib",),
    "capture_repr": (),  # the figures are shown; their repr ("<Figure ...>") is noise
    "reset_modules": ("matplotlib",),
    # the execution-times pages load jQuery, DataTables and Bootstrap from CDNs, and a
    # reader has no use for them; the build prints the times
    "write_computation_times": False,
}


# Maths is written in the Unicode notation that `archlab shapes` prints, not TeX:
# Sphinx would typeset TeX with MathJax from a CDN, which shows raw TeX offline, and the
# notation lets the reader match the formula on the page with the trace the CLI prints,
# ⌊(28 + 2·1 − 1·(3−1) − 1)/1⌋ + 1 = 28, sign for sign, with no script at all.
def _no_tex(app, doctree) -> None:
    from docutils import nodes
    from sphinx.util import logging

    for node in doctree.findall(lambda n: isinstance(n, (nodes.math, nodes.math_block))):
        logging.getLogger(__name__).warning(
            "TeX maths needs MathJax from a CDN; write it in the Unicode notation "
            "that `archlab shapes` prints (see docs/shapes.rst)",
            location=node,
        )


# The explorer of the lecture's two runs (docs/explorer.rst links to it), written after the
# gallery has trained and cached them in the build folder; no run there (a build that
# skipped the gallery) leaves a warning, which -W makes an error.
def _explorer(app, exception) -> None:
    if exception is not None or app.builder.name != "html":
        return
    from sphinx.util import logging

    runs = Path(os.environ["ARCHLAB_DOCS_RUNS"])
    if not all((runs / name / "checkpoint.pt").is_file() for name in ("dnn", "cnn")):
        logging.getLogger(__name__).warning(f"no trained dnn and cnn under {runs}: no explorer")
        return
    page = archlab.explore(["dnn", "cnn"], out=Path(app.outdir) / "explorer", runs=runs)
    logging.getLogger(__name__).info(f"explorer: {page}")


def setup(app) -> None:
    app.connect("doctree-read", _no_tex)
    app.connect("build-finished", _explorer)
