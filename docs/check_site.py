"""Check the built site in a real browser (Debian's headless Chromium, driven by selenium).

For the landing page and every other page: every image has loaded (natural width > 0),
every link inside the site points at a page or file that exists, and a full-page
screenshot is saved under ``docs/_build/screenshots/`` for a reader to look at.

    python docs/check_site.py [--html docs/_build/html]

Exits 1 and lists the problems when anything is broken.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import shutil
import sys
import tempfile
import threading
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
)


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
    service = Service(executable_path=shutil.which("chromedriver") or "/usr/bin/chromedriver")
    return webdriver.Chrome(options=options, service=service)


def _target_exists(root: Path, base: str, href: str) -> bool:
    path = unquote(urlparse(href).path)[len(urlparse(base).path) :]
    target = root / path
    return target.is_file() or (target.is_dir() and (target / "index.html").is_file())


def check(root: Path, shots: Path) -> list[str]:
    pages = sorted(
        p.relative_to(root).as_posix()
        for p in root.rglob("*.html")
        if "_static" not in p.parts and "_sources" not in p.parts
    )
    pages.remove("index.html")
    pages.insert(0, "index.html")
    server, base = _serve(root)
    problems: list[str] = []
    shots.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as profile:
        driver = _driver(profile)
        try:
            driver.set_page_load_timeout(60)
            for page in pages:
                url = urljoin(base, page)
                driver.set_window_size(1280, 900)
                driver.get(url)
                images = driver.execute_script(
                    "return Array.from(document.images).map(i => [i.currentSrc || i.src,"
                    " i.complete, i.naturalWidth]);"
                )
                for src, complete, width in images:
                    if not complete or not width:
                        problems.append(f"{page}: image did not load: {src}")
                links = driver.execute_script(
                    "return Array.from(document.querySelectorAll('a[href]')).map(a => a.href);"
                )
                for href in links:
                    if href.startswith(base) and not _target_exists(root, base, href):
                        problems.append(f"{page}: broken link {href}")
                height = driver.execute_script("return document.documentElement.scrollHeight;")
                driver.set_window_size(1280, min(int(height), 12000))
                name = page.replace("/", "__").removesuffix(".html") + ".png"
                driver.save_screenshot(str(shots / name))
                print(f"{page}: {len(images)} images, {len(links)} links, screenshot {name}")
        finally:
            driver.quit()
            server.shutdown()
    return problems


def main() -> int:
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
    args = parser.parse_args()
    root = Path(args.html)
    if not (root / "index.html").is_file():
        print(f"check_site: no site at {root}; build it first (make docs)", file=sys.stderr)
        return 1
    problems = check(root, Path(args.screenshots))
    for problem in problems:
        print(f"check_site: {problem}", file=sys.stderr)
    print("site check: " + ("FAILED" if problems else "ok, every image loaded, no broken link"))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
