"""The explorer's panels in a real browser (headless Chromium, offline, as
tests/test_explorer_browser.py): a channel chosen, a quiz item answered, a map point
clicked (the flowing image changes), the timeline moved (the frame's iteration, kernels
and map change), the confidence panel shown, the run switched. Tiny synthetic runs, cnn
with two stand-in snapshots."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import archlab

from .browser import load_check_site, needs_chromium
from .explorer_models import snapshot_runs
from .synthetic import learnable_dataset

ROOT = Path(__file__).parents[1]
SHOTS = Path(os.environ.get("ARCHLAB_SCREENSHOTS", ROOT / "docs" / "_build" / "screenshots"))
# a bound that catches a broken handler (a click that redraws the whole page), not the
# 100 ms speed goal: a timed assertion failed at 101.6 ms while other processes loaded the
# 2 cores (speeds are for benchmarks, measured side by side on an idle machine)
CLICK_MS = 1000

pytestmark = needs_chromium

# dispatch an event on the first match of a selector (a click, or `input` after setting a
# value) and return the milliseconds until the next frame; -1 when nothing matches
_TIMED = """
const [selector, kind, value, x, y] = arguments;
const done = arguments[arguments.length - 1];
const el = document.querySelector(selector);
if (!el) { done(-1); return; }
const t0 = performance.now();
if (kind === 'input') { el.value = value; el.dispatchEvent(new Event('input', {bubbles: true})); }
else el.dispatchEvent(new MouseEvent('click', {bubbles: true, clientX: x, clientY: y}));
requestAnimationFrame(() => done(performance.now() - t0));
"""


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    from archlab.explorer import panels

    data = learnable_dataset(n_train=300, n_test=150)
    runs = tmp_path_factory.mktemp("runs")
    quiet = {"progress": False, "log": lambda _line: None, "figures": False}
    cnn, dnn = (
        archlab.train(m, runs=runs, data=data, max_iterations=4, batch_size=50, **quiet)
        for m in ("cnn", "dnn")
    )
    snaps = snapshot_runs(cnn, iterations=(1, 2))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(panels, "find_snapshots", lambda run: snaps if run is cnn else [])
        return archlab.explore([cnn, dnn], images=30, out=runs / "explorer", data=data,
                               methods="saliency")  # fmt: skip


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    check_site = load_check_site()
    driver = check_site._driver(str(tmp_path_factory.mktemp("profile")))
    driver.set_window_size(1600, 1800)
    yield driver, check_site
    driver.quit()


def test_the_panels_answer_clicks_offline(page, browser):
    driver, check_site = browser
    shots = SHOTS / "explorer-panels"
    shots.mkdir(parents=True, exist_ok=True)
    driver.get_log("performance")
    driver.get_log("browser")
    driver.get(page.as_uri())
    driver.set_script_timeout(20)
    driver.execute_async_script(
        "const done = arguments[0]; const t = () => document.body.dataset.ready ? "
        "done() : setTimeout(t, 50); t();"
    )

    def js(script: str, *args):
        return driver.execute_script(script, *args)

    def text(selector: str) -> str:
        return js("return document.querySelector(arguments[0]).innerText", selector)

    timings = {}

    def act(what: str, selector: str, kind: str = "click", value="", x=0, y=0) -> None:
        ms = driver.execute_async_script(_TIMED, selector, kind, value, x, y)
        assert ms >= 0, f"nothing matches {selector}"
        timings[what] = ms

    # the channel panel: the first row is cnn's first convolution
    assert js("return document.getElementById('channel-panel').hidden") is False
    shown = js(
        "return [...document.querySelectorAll('#channel-strip canvas')]"
        ".map(c => Number(c.dataset.channel))"
    )
    assert len(shown) == 8
    assert text("#channel-panel h2").startswith(f"What channel {shown[0]} of layer1.0")
    act("channel", f"#channel-strip canvas[data-channel='{shown[1]}']")
    assert text("#channel-panel h2").startswith(f"What channel {shown[1]} of layer1.0")
    assert js("return ARCHLAB.state.channel") == shown[1]
    # a channel picture of the layer's output chooses the same way
    act("channel figure", f"#channels figure:nth-child({shown[2] + 1})")
    assert text("#channel-panel h2").startswith(f"What channel {shown[2]} ")
    assert js("return document.querySelectorAll('#channel-big canvas').length") == 2
    assert js("return document.querySelectorAll('#channel-top canvas').length") == 9
    driver.save_screenshot(str(shots / "1-channel.png"))

    # a top image: among the explorer's images it flows through, else it is shown here
    tops = js(
        "return [...document.querySelectorAll('#channel-top canvas')]"
        ".map(c => [c.dataset.tile, c.title.includes('flows through')])"
    )
    before = text("#image-title")
    follows = [tile for tile, flows in tops if flows]
    others = [tile for tile, flows in tops if not flows]
    if follows:
        act("top image", f"#channel-top canvas[data-tile='{follows[-1]}']")
        assert text("#image-title") != before
    if others:
        act("top image shown", f"#channel-top canvas[data-tile='{others[0]}']")
        assert "not among the explorer's images" in text("#channel-picked")
    assert follows or others

    # the quiz: one answer, scored, the item then closed
    assert text("#quiz-score").startswith("class score: 0 of 0")
    act("quiz", "#quiz .query[data-query='0']")
    assert text("#quiz-score").startswith("class score: ") and " of 1" in text("#quiz-score")
    verdict = text("#quiz-verdict")
    assert verdict.startswith("Right") or verdict.startswith("Wrong")
    right = verdict.startswith("Right")
    assert text("#quiz-score").startswith(f"class score: {int(right)} of 1")
    assert js("return document.querySelectorAll('#quiz .query[disabled]').length") == 2
    assert js("return document.querySelectorAll('#quiz .query.strong').length") == 1
    driver.save_screenshot(str(shots / "2-quiz.png"))
    act("quiz reset", "#quiz-reset")
    assert text("#quiz-score").startswith("class score: 0 of 0")
    assert js("return document.querySelectorAll('#quiz .query[disabled]').length") == 0

    # the map: a point that is one of the explorer's images, not the one flowing now
    # (the one farthest from the other explorer images, so that the click is not ambiguous)
    target = js(
        "const m = document.getElementById('map'); const im = ARCHLAB.state.image;"
        "const all = [...document.querySelectorAll('#images canvas')].map(c => "
        "m.locate(Number(c.title.match(/test image (\\d+)/)[1])));"
        "let best = null; all.forEach((at, k) => { if (!at || k === im) return;"
        " const gap = Math.min(...all.map((o, j) => o && j !== k ?"
        " Math.hypot(o.x - at.x, o.y - at.y) : 1e9));"
        " if (!best || gap > best[3]) best = [k, at.x, at.y, gap]; }); return best;"
    )
    assert target is not None
    pos, x, y, _ = target
    before = text("#image-title")
    act("map point", "#map", x=x, y=y)
    assert js("return ARCHLAB.state.image") == pos
    assert text("#image-title") != before
    act("map class", "#map-legend button[data-klass='3']")
    assert js("return document.querySelector('#map-legend button.on').dataset.klass") == "3"
    driver.save_screenshot(str(shots / "3-map.png"))

    # the timeline: three frames (two snapshots and the run); the first one's iteration,
    # kernels and map differ from the run's
    assert js("return document.getElementById('timeline').max") == "2"
    last = text("#timeline-label")
    assert last.startswith("snapshot 3 of 3") and "(the run)" in last
    kernels = js("return document.querySelector('#timeline-box img').src")
    where = js("return document.getElementById('map').locate(arguments[0])", pos_test(js, pos))
    act("timeline", "#timeline", kind="input", value="0")
    assert text("#timeline-label").startswith("snapshot 1 of 3: iteration 1,")
    assert js("return document.querySelector('#timeline-box img').src") != kernels
    moved = js("return document.getElementById('map').locate(arguments[0])", pos_test(js, pos))
    assert moved != where
    driver.save_screenshot(str(shots / "4-timeline.png"))

    # confidence: the reliability diagram, the table, the images with their confidence
    assert js("return document.getElementById('confidence-panel').hidden") is False
    assert js("return document.querySelectorAll('#calibration tr').length") == 3
    assert js("return document.querySelectorAll('#confidence-images figure').length") == 30
    assert "AUROC" in text("#ood")
    act("confidence image", "#confidence-images figure[data-pos='4']")
    assert js("return ARCHLAB.state.image") == 4

    # the other run: no convolution, no channel panel; its own map; no timeline
    knn = text("#map-panel .note")
    act("run", "#runs button[data-run='run-1']")
    assert js("return document.getElementById('channel-panel').hidden") is True
    assert text("#map-panel .note") != knn
    assert js("return document.getElementById('timeline')") is None
    assert text("#confidence-panel h2") == "Does dnn know when it is wrong?"
    driver.save_screenshot(str(shots / "5-dnn.png"))

    errors = [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    assert errors == []
    base = page.parent.as_uri() + "/"
    _, problems = check_site.network_problems(driver.get_log("performance"), base)
    assert problems == [], problems
    slow = {what: ms for what, ms in timings.items() if ms > CLICK_MS}
    assert not slow, f"clicks slower than {CLICK_MS} ms: {slow}"


def pos_test(js, pos: int) -> int:
    """The test index of the explorer's image ``pos``."""
    title = js(f"return document.querySelector(\"#images canvas[data-pos='{pos}']\").title")
    return int(title.split()[2].rstrip(":"))
