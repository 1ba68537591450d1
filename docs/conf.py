"""Sphinx configuration: the site is built from docstrings and from running examples/."""

from __future__ import annotations

import os
import sys
from pathlib import Path

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

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
]
exclude_patterns = ["_build", "auto_examples/*.ipynb", "auto_examples/*.py", "**.zip"]
html_theme = "furo"
html_title = f"archlab {version}"
templates_path: list[str] = []
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
}
