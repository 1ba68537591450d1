"""Doctests: the docstring examples run with ``archlab`` and ``torch`` already imported."""

import os

import pytest

os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture(autouse=True)
def _doctest_names(doctest_namespace):
    import torch

    import archlab

    doctest_namespace.update(archlab=archlab, torch=torch)
