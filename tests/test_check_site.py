"""The docs' browser check (docs/check_site.py) fails on what an offline reader would see.

The log and text rules are tested on hand-made inputs; one test runs Chromium on a tiny
hand-made site (skipped where Chromium and ChromeDriver are not installed).
"""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import pytest

SCRIPT = Path(__file__).parents[1] / "docs" / "check_site.py"
BASE = "http://127.0.0.1:8000/"
PROSE = "<p>" + "A page a reader can read, with enough words in it. " * 3 + "</p>"


@pytest.fixture(scope="module")
def check_site():
    spec = importlib.util.spec_from_file_location("check_site", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _event(method: str, **params) -> dict:
    return {"message": json.dumps({"message": {"method": method, "params": params}})}


def test_network_flags_other_hosts_failures_and_http_errors(check_site):
    log = [
        _event("Network.requestWillBeSent", requestId="1", request={"url": BASE + "a.html"}),
        _event("Network.requestWillBeSent", requestId="2", request={"url": "data:image/png,"}),
        _event("Network.requestWillBeSent", requestId="3", request={"url": "https://cdn.x/m.js"}),
        _event("Network.loadingFailed", requestId="3", errorText="net::ERR_PROXY"),
        _event("Network.requestWillBeSent", requestId="4", request={"url": BASE + "b.css"}),
        _event("Network.loadingFailed", requestId="4", errorText="net::ERR_ABORTED"),
        _event("Network.responseReceived", response={"url": BASE + "c.png", "status": 404}),
        _event("Network.responseReceived", response={"url": BASE + "a.html", "status": 200}),
    ]
    requests, problems = check_site.network_problems(log, BASE)
    assert requests == 4
    assert problems == [
        "loads from another host: https://cdn.x/m.js",
        f"request failed: {BASE}b.css (net::ERR_ABORTED)",
        f"request failed: {BASE}c.png (HTTP 404)",
    ]


@pytest.mark.parametrize("tex", ["\\(x^2\\)", "\\[x^2\\]", "$$x^2$$"])
def test_raw_tex_in_the_text_is_a_problem(check_site, tex):
    text = "The formula " + tex + " and more words to make the page long enough to read."
    problems = check_site.text_problems(text, text, text, "title")
    assert len(problems) == 1
    assert problems[0].startswith(f"raw TeX {tex[:2]} in the text")


def test_clean_empty_and_error_pages(check_site):
    text = "Typeset: ⌊(28 + 2·1 − 1·(3−1) − 1)/1⌋ + 1 = 28, with enough words to be a page."
    assert check_site.text_problems(text, text, text + "\n$$ echo $$", "title") == []
    assert check_site.text_problems("", "  ", "", "") == [
        "empty page (0 characters of text)",
        "no title",
    ]
    trace = text + "\nTraceback (most recent call last):"
    assert check_site.text_problems(text, text, trace, "title") == [
        "looks like an error page: 'Traceback (most recent call last)'"
    ]


def _page(title: str, head: str, body: str) -> str:
    return (
        f'<!doctype html><html><head><meta charset="utf-8"><title>{title}</title>'
        f'<link rel="icon" href="data:,">{head}</head><body><main>{body}</main></body></html>'
    )


@pytest.mark.skipif(
    not (
        shutil.which("chromedriver")
        and (shutil.which("chromium") or Path("/usr/bin/chromium").exists())
    ),
    reason="needs Debian's chromium and chromium-driver (make browser)",
)
def test_browser_passes_a_clean_page_and_fails_an_online_one(check_site, tmp_path, capsys):
    site = tmp_path / "html"
    site.mkdir()
    (site / "index.html").write_text(
        _page("Home", "", PROSE + '<a href="offline.html">next</a><pre>$$ and \\[ in code</pre>')
    )
    (site / "offline.html").write_text(
        _page(
            "Offline",
            '<script src="https://cdn.example.org/mathjax.js"></script>',
            PROSE + "<p>\\[H_\\text{out}\\]</p><img src='missing.png'>"
            '<a href="gone.html">gone</a>',
        )
    )
    problems = check_site.check(site, tmp_path / "shots")
    assert all(problem.startswith("offline.html: ") for problem in problems), problems
    found = "\n".join(problems)
    assert "loads from another host: https://cdn.example.org/mathjax.js" in found
    assert "raw TeX \\[ in the text" in found
    assert "missing.png (HTTP 404)" in found
    assert "image did not load" in found
    assert "broken link" in found
    assert sorted(p.name for p in (tmp_path / "shots").iterdir()) == ["index.png", "offline.png"]
    assert "index.html: 1 requests, 0 images, 1 links, 0 problems" in capsys.readouterr().out
