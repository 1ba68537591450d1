"""What the browser tests share: the skip where Chromium is missing, and the docs'
``check_site.py`` (its headless, offline Chromium driver and its checks) loaded once."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).parents[1]

needs_chromium = pytest.mark.skipif(
    not (
        shutil.which("chromedriver")
        and (shutil.which("chromium") or Path("/usr/bin/chromium").exists())
    ),
    reason="needs Debian's chromium and chromium-driver (make browser)",
)


def load_check_site() -> ModuleType:
    """``docs/check_site.py`` as a module."""
    spec = importlib.util.spec_from_file_location("check_site", ROOT / "docs" / "check_site.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
