"""Check the built site as a reader without internet sees it, in headless Chromium.

The site is served on 127.0.0.1 and Debian's Chromium (driven by selenium) has no other
network: every other host is sent to a proxy that does not exist and resolves to nothing.
Every request a page makes is read from Chromium's performance log. For the landing page
and every other page the check fails on

- a request to any host but the site's own (a CDN script, style sheet or font),
- a request that failed (a missing file, an HTTP error), and an error in the console,
- raw TeX delimiters (``\\(``, ``\\[``, ``$$``) in the text a reader sees, outside code,
- a page with (almost) no text, or one that looks like an error page or a traceback,
- an image that did not load, or a link inside the site to a page or file that is missing.

A full-page screenshot of each page is saved under ``docs/_build/screenshots/``.

    python docs/check_site.py [--html docs/_build/html]

Exits 1 and lists the problems when anything is wrong.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import json
import re
import shutil
import sys
import tempfile
import threading
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import unquote, urljoin, urlparse

CHROMIUM_FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    # No network but the site: loopback goes direct (Chromium never proxies it), every other
    # URL goes to a proxy on a closed port, and every other host name resolves to nothing.
    "--proxy-server=http://127.0.0.1:9",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
)

# what a page shows when it is not what it should be
RAW_TEX = ("\\(", "\\[", "$$")
ERROR_LOOKS = re.compile(
    r"Traceback \(most recent call last\)|Error response|404 Not Found|This site can.t be reached"
)
MIN_TEXT = 40  # characters in the main content; less is an empty page
# the search page is empty until a reader asks something: ask, so the offline search runs
QUERIES = {"search.html": "?q=Conv2d"}

# the reader's text: the page's visible text without code (where `\[` or `$$` may be meant)
_READER_TEXT = """
const hidden = [];
for (const el of document.querySelectorAll('pre, code, kbd, samp')) {
  hidden.push([el, el.style.display]);
  el.style.display = 'none';
}
const reader = document.body.innerText;
for (const [el, display] of hidden) el.style.display = display;
const main = document.querySelector('[role=main], article, main') || document.body;
return [reader, main.innerText, document.body.innerText, document.title];
"""

# wait for the fonts, for text in the main content (the search results come late), up to
# 10 s, and for a little idle time, so late requests land in the log
_SETTLE = """
const done = arguments[arguments.length - 1];
const main = document.querySelector('[role=main], article, main') || document.body;
const start = Date.now();
const wait = () => (main.innerText.trim().length >= arguments[0] || Date.now() - start > 10000)
  ? setTimeout(done, 300) : setTimeout(wait, 100);
document.fonts.ready.then(wait);
"""


def _serve(root: Path) -> tuple[http.server.ThreadingHTTPServer, str]:
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    handler = functools.partial(Quiet, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/"


def _driver(profile: str):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    options.set_capability("goog:loggingPrefs", {"performance": "ALL", "browser": "ALL"})
    service = Service(executable_path=shutil.which("chromedriver") or "/usr/bin/chromedriver")
    return webdriver.Chrome(options=options, service=service)


def _target_exists(root: Path, base: str, href: str) -> bool:
    path = unquote(urlparse(href).path)[len(urlparse(base).path) :]
    target = root / path
    return target.is_file() or (target.is_dir() and (target / "index.html").is_file())


def network_problems(entries: Iterable[dict], base: str) -> tuple[int, list[str]]:
    """Read Chromium's performance log of one page.

    Args:
        entries: the log's entries, each with a JSON ``message`` holding a DevTools event.
        base: the site's own address; every request elsewhere is a problem.

    Returns:
        The number of requests, and one line per request to another host, per failed
        request and per HTTP error.
    """
    urls: dict[str, str] = {}
    problems: list[str] = []
    for entry in entries:
        event = json.loads(entry["message"])["message"]
        method, params = event.get("method"), event.get("params", {})
        if method == "Network.requestWillBeSent":
            url = params["request"]["url"]
            urls[params["requestId"]] = url
            if urlparse(url).scheme not in ("data", "blob", "about") and not url.startswith(base):
                problems.append(f"loads from another host: {url}")
        elif method == "Network.loadingFailed":
            url = urls.get(params["requestId"], "?")
            if url.startswith(base):
                problems.append(f"request failed: {url} ({params.get('errorText', '')})")
        elif method == "Network.responseReceived":
            response = params["response"]
            if response.get("status", 200) >= 400:
                problems.append(f"request failed: {response['url']} (HTTP {response['status']})")
    return len(urls), problems


def text_problems(reader_text: str, main_text: str, full_text: str, title: str) -> list[str]:
    """What is wrong with the text a reader sees.

    Args:
        reader_text: the page's visible text, code blocks left out.
        main_text: the visible text of the main content, code included.
        full_text: the page's visible text, code included.
        title: the document's title.

    Returns:
        One line per raw TeX delimiter, for an empty page and for an error-looking one.
    """
    problems = []
    for delimiter in RAW_TEX:
        at = reader_text.find(delimiter)
        if at >= 0:
            context = " ".join(reader_text[max(0, at - 20) : at + 60].split())
            problems.append(f"raw TeX {delimiter} in the text: …{context}…")
    if len(main_text.strip()) < MIN_TEXT:
        problems.append(f"empty page ({len(main_text.strip())} characters of text)")
    looks = ERROR_LOOKS.search(title + "\n" + full_text)
    if looks:
        problems.append(f"looks like an error page: {looks.group(0)!r}")
    if not title.strip():
        problems.append("no title")
    return problems


def _pages(root: Path) -> list[str]:
    pages = sorted(
        p.relative_to(root).as_posix()
        for p in root.rglob("*.html")
        if "_static" not in p.parts and "_sources" not in p.parts
    )
    # the landing page first; the search page last, as the terms it highlights are kept
    # (in the browser's storage) for the pages opened after it
    last = [page for page in ("search.html",) if page in pages]
    pages = [page for page in pages if page not in ("index.html", *last)]
    return ["index.html", *pages, *last]


def check(root: Path, shots: Path) -> list[str]:
    """Load every page of the site at ``root``; return its problems, one line each."""
    server, base = _serve(root)
    problems: list[str] = []
    shots.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as profile:
        driver = _driver(profile)
        try:
            driver.set_page_load_timeout(60)
            driver.set_script_timeout(30)
            driver.get("about:blank")
            driver.get_log("performance")  # the browser's own start-up, not the site's
            driver.get_log("browser")
            for page in _pages(root):
                found: list[str] = []
                driver.set_window_size(1280, 900)
                driver.get(urljoin(base, page) + QUERIES.get(page, ""))
                driver.execute_async_script(_SETTLE, MIN_TEXT)
                requests, network = network_problems(driver.get_log("performance"), base)
                found += network
                found += [
                    f"console: {entry['message']}"
                    for entry in driver.get_log("browser")
                    # a failed load is already reported from the network log
                    if entry["level"] == "SEVERE"
                    and "Failed to load resource" not in entry["message"]
                ]
                found += text_problems(*driver.execute_script(_READER_TEXT))
                images = driver.execute_script(
                    "return Array.from(document.images).map(i => [i.currentSrc || i.src,"
                    " i.complete, i.naturalWidth]);"
                )
                found += [
                    f"image did not load: {src}"
                    for src, complete, width in images
                    if not complete or not width
                ]
                links = driver.execute_script(
                    "return Array.from(document.querySelectorAll('a[href]')).map(a => a.href);"
                )
                found += [
                    f"broken link {href}"
                    for href in links
                    if href.startswith(base) and not _target_exists(root, base, href)
                ]
                height = driver.execute_script("return document.documentElement.scrollHeight;")
                driver.set_window_size(1280, min(int(height), 12000))
                name = page.replace("/", "__").removesuffix(".html") + ".png"
                driver.save_screenshot(str(shots / name))
                print(
                    f"{page}: {requests} requests, {len(images)} images, {len(links)} links,"
                    f" {len(found)} problems, screenshot {name}"
                )
                problems += [f"{page}: {problem}" for problem in found]
        finally:
            driver.quit()
            server.shutdown()
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    here = Path(__file__).parent
    parser.add_argument(
        "--html",
        default=str(here / "_build" / "html"),
        help="the built site (default: docs/_build/html)",
    )
    parser.add_argument(
        "--screenshots",
        default=str(here / "_build" / "screenshots"),
        help="where to save screenshots (default: docs/_build/screenshots)",
    )
    args = parser.parse_args(argv)
    root = Path(args.html)
    if not (root / "index.html").is_file():
        print(f"check_site: no site at {root}; build it first (make docs)", file=sys.stderr)
        return 1
    problems = check(root, Path(args.screenshots))
    for problem in problems:
        print(f"check_site: {problem}", file=sys.stderr)
    print(
        f"site check: FAILED, {len(problems)} problems"
        if problems
        else "site check: ok, offline: every request to the site itself and answered,"
        " no raw TeX, no empty or error page, every image loaded, no broken link"
    )
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
