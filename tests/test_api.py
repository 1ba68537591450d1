"""The public surface: exactly what docs/api.rst documents, each with a docstring example."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

import archlab

API_PAGE = Path(__file__).parent.parent / "docs" / "api.rst"


def _documented() -> list[str]:
    text = API_PAGE.read_text(encoding="utf-8")
    return sorted(re.findall(r"^\.\. auto(?:function|class):: archlab\.(\w+)", text, re.M))


def test_all_is_exactly_the_documented_list():
    assert sorted(n for n in archlab.__all__ if n != "__version__") == _documented()
    assert archlab.__all__ == sorted(archlab.__all__)


@pytest.mark.parametrize("name", [n for n in archlab.__all__ if n != "__version__"])
def test_every_public_name_has_a_docstring_with_an_example(name):
    doc = getattr(archlab, name).__doc__ or ""
    assert doc.strip(), f"{name} has no docstring"
    assert "Example" in doc, f"{name}'s docstring has no example"


def test_importing_archlab_imports_no_torch():
    code = "import sys, archlab; sys.exit(1 if 'torch' in sys.modules else 0)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_unknown_attribute():
    with pytest.raises(AttributeError):
        archlab.no_such_thing  # noqa: B018
