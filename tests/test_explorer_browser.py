"""The explorer page in a real browser: Debian's Chromium and ChromeDriver through selenium,
with every host but the page's own folder blocked (docs/check_site.py's flags).

It loads the page from ``file://``, clicks a layer, an image, a confusion cell and one of
its images, switches runs, and asserts what changed; no console error, no failed or
outside request; each click updates the page within 100 ms. Screenshots are saved under
``docs/_build/screenshots/explorer/`` (``$ARCHLAB_SCREENSHOTS`` to change). Skipped where
Chromium and ChromeDriver are not installed (``make browser`` installs them).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

import archlab

from .browser import load_check_site, needs_chromium
from .synthetic import learnable_dataset

ROOT = Path(__file__).parents[1]
SHOTS = Path(os.environ.get("ARCHLAB_SCREENSHOTS", ROOT / "docs" / "_build" / "screenshots"))
CLICK_MS = 100  # the page must answer a click within this

pytestmark = needs_chromium

# click an element and return the milliseconds until the page has been redrawn (the next
# animation frame after the click's synchronous update)
_TIMED_CLICK = """
const done = arguments[arguments.length - 1];
const el = document.querySelector(arguments[0]);
if (!el) { done(-1); return; }
const t0 = performance.now();
el.dispatchEvent(new MouseEvent('click', {bubbles: true}));
requestAnimationFrame(() => done(performance.now() - t0));
"""


@pytest.fixture(scope="module")
def check_site():
    return load_check_site()


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    data = learnable_dataset(n_train=300, n_test=150)
    runs = tmp_path_factory.mktemp("runs")
    quiet = {"progress": False, "log": lambda _line: None, "figures": False}
    trained = [
        archlab.train(m, runs=runs, data=data, max_iterations=4, batch_size=50, **quiet)
        for m in ("cnn", "dnn")
    ]
    return archlab.explore(trained, images=30, out=runs / "explorer", data=data)


@pytest.fixture(scope="module")
def browser(check_site, tmp_path_factory):
    driver = check_site._driver(str(tmp_path_factory.mktemp("profile")))
    driver.set_window_size(1600, 900)  # a 16:9 projector
    yield driver
    driver.quit()


def _text(driver, selector: str) -> str:
    return driver.execute_script(f"return document.querySelector({selector!r}).innerText")


def _click(driver, selector: str) -> float:
    ms = driver.execute_async_script(_TIMED_CLICK, selector)
    assert ms >= 0, f"nothing matches {selector}"
    return ms


def test_the_page_answers_clicks_offline(page, browser, check_site):
    driver = browser
    shots = SHOTS / "explorer"
    shots.mkdir(parents=True, exist_ok=True)
    driver.get_log("performance")  # the browser's own start-up (its new tab page)
    driver.get_log("browser")
    driver.get(page.as_uri())
    driver.set_script_timeout(20)
    driver.execute_async_script(
        "const done = arguments[0]; const t = () => document.body.dataset.ready ? "
        "done() : setTimeout(t, 50); t();"
    )
    driver.save_screenshot(str(shots / "1-start.png"))
    timings = {}

    # the page opens on the first row of the trace; then a layer: the second row
    assert _text(driver, "#layer-title").startswith("#1 ")
    assert driver.execute_script("return ARCHLAB.state.row") == 0
    timings["layer"] = _click(driver, "#trace tbody tr[data-line='1']")
    assert _text(driver, "#layer-title").startswith("#2 ")
    assert driver.execute_script("return document.querySelectorAll('#channels canvas').length") > 0
    driver.save_screenshot(str(shots / "2-layer.png"))

    # an image
    before = _text(driver, "#image-title")
    timings["image"] = _click(driver, "#images canvas[data-pos='5']")
    assert _text(driver, "#image-title") != before
    driver.save_screenshot(str(shots / "3-image.png"))

    # a confusion cell that has images here, then one of its images
    cell = driver.execute_script(
        "const td = [...document.querySelectorAll('#confusion td.has')]"
        ".find(td => { const [t, p] = td.dataset.cell.split(','); return t !== p; })"
        " || document.querySelector('#confusion td.has'); return td.dataset.cell;"
    )
    timings["cell"] = _click(driver, f"#confusion td[data-cell='{cell}']")
    assert "in this explorer" in _text(driver, "#cell")
    pos = driver.execute_script("return document.querySelector('#cell-images canvas').dataset.pos")
    timings["cell image"] = _click(driver, f"#cell-images canvas[data-pos='{pos}']")
    index = driver.execute_script("return ARCHLAB.state.image")
    assert str(index) == pos
    driver.save_screenshot(str(shots / "4-cell.png"))

    # the other run
    rows_before = driver.execute_script(
        "return document.querySelectorAll('#trace tbody tr').length"
    )
    timings["run"] = _click(driver, "#runs button[data-run='run-1']")
    pressed = "return document.querySelector('#runs [data-run=\"run-1\"]').ariaPressed"
    assert driver.execute_script(pressed) == "true"
    assert (
        driver.execute_script("return document.querySelectorAll('#trace tbody tr').length")
        != rows_before
    )
    assert "dnn" in _text(driver, "#image-title")
    assert len(_text(driver, "#compare").splitlines()) >= 3  # header and two runs
    driver.save_screenshot(str(shots / "5-run.png"))
    driver.set_window_size(1600, 1500)  # the whole page, confusion matrix included
    driver.save_screenshot(str(shots / "6-whole.png"))
    driver.set_window_size(1600, 900)

    # the keyboard moves through the rows
    before = _text(driver, "#layer-title")
    driver.find_element("css selector", "body").send_keys("\ue015")  # arrow down
    assert _text(driver, "#layer-title") != before

    errors = [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    assert errors == []
    base = page.parent.as_uri() + "/"
    requests, problems = check_site.network_problems(driver.get_log("performance"), base)
    assert problems == [], problems
    assert requests > 5
    slow = {what: ms for what, ms in timings.items() if ms > CLICK_MS}
    assert not slow, f"clicks slower than {CLICK_MS} ms: {slow}"
    (shots / "timings.txt").write_text(
        "".join(f"{what}: {ms:.1f} ms\n" for what, ms in timings.items()), encoding="utf-8"
    )


@pytest.mark.parametrize("missing", ["data/index.js", "data/run-1/run.js"])
def test_a_page_that_cannot_load_its_data_says_so_on_the_page(page, browser, tmp_path, missing):
    broken = tmp_path / "site"
    shutil.copytree(page.parent, broken)
    (broken / missing).unlink()
    browser.get((broken / "index.html").as_uri())
    browser.set_script_timeout(20)
    browser.execute_async_script(
        "const done = arguments[0]; const t = () => document.body.dataset.failed ? "
        "done() : setTimeout(t, 50); t();"
    )
    problem = _text(browser, "#problem")
    assert f"({missing}) could not be loaded" in problem, problem
    assert browser.execute_script("return document.body.dataset.ready") is None
