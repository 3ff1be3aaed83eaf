"""Headless Debian Chromium driven by Selenium through Debian's chromedriver (same package version as the browser, so
nothing is downloaded: Selenium Manager is bypassed by giving both paths), and the waits the Dagster UI needs: for
texts, an element, images, and a whole asset graph (the UI only draws the nodes inside its viewport)."""

from __future__ import annotations

import time
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
WINDOW = (1600, 1000)
# As root in a container: no sandbox, no GPU. No traffic beyond 127.0.0.1: no QUIC, updates, sync or field trials,
# and every other host name resolves to nothing (a page asking for the internet fails instead of reaching it).
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
    "--disable-extensions", "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1", "--hide-scrollbars",
    f"--window-size={WINDOW[0]},{WINDOW[1]}",
]
LOADING_MARKERS = ("Loading…", "Loading...", "fetching statuses")


class BrowserUnavailable(RuntimeError):
    """Chromium, chromedriver or Selenium is missing, or the browser would not start."""


def start_chromium(profile: Path):
    """A Selenium WebDriver using `profile` (an empty folder) as its profile. Raises BrowserUnavailable with the
    reason."""
    try:
        from selenium import webdriver
        from selenium.common.exceptions import WebDriverException
        from selenium.webdriver.chrome.service import Service
    except ImportError as exc:
        raise BrowserUnavailable(f"selenium is not installed ({exc}); `pip install selenium`") from exc
    for binary in (CHROMIUM, CHROMEDRIVER):
        if not Path(binary).exists():
            raise BrowserUnavailable(f"{binary} not found (Debian packages: chromium chromium-driver)")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in [*CHROMIUM_FLAGS, f"--user-data-dir={profile}"]:
        options.add_argument(flag)
    try:
        driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    except WebDriverException as exc:
        raise BrowserUnavailable(f"chromium did not start: {exc.msg or exc}") from exc
    driver.set_page_load_timeout(60)
    return driver


def page_text(driver) -> str:
    return driver.execute_script("return document.body ? document.body.innerText : ''") or ""


def open_and_wait(driver, url: str, expected: list[str], timeout: float = 60.0) -> str:
    """Open `url` and wait until it shows every expected text (see `wait_for_texts`); returns the page's text."""
    driver.get(url)
    return wait_for_texts(driver, expected, timeout, where=url)


def wait_for_texts(driver, expected: list[str], timeout: float = 60.0, settle: float = 1.0, where: str = "") -> str:
    """Wait (bounded) until every expected text is on the current page and no 'Loading…' placeholder is left;
    returns the page's visible text. On timeout, fails listing what is missing."""
    where = where or driver.current_url
    deadline = time.monotonic() + timeout
    while True:
        text = page_text(driver)
        missing = [t for t in expected if t not in text]
        loading = any(marker in text for marker in LOADING_MARKERS)
        if not missing and not loading:
            time.sleep(settle)  # let the last layout and fonts settle before a screenshot
            return page_text(driver)
        if time.monotonic() > deadline:
            raise AssertionError(
                f"{where} did not render within {timeout:.0f} s: missing {missing}"
                + (" (still loading)" if loading else "") + f"\npage text:\n{text[:2000]}"
            )
        time.sleep(0.5)


def graph_size(driver) -> tuple[float, float]:
    """Layout size (CSS px at zoom 1) of the asset graph drawn on the page: its largest SVG's width and height."""
    sizes = driver.execute_script(
        "return Array.from(document.querySelectorAll('svg[width][height]'))"
        ".map(s => [parseFloat(s.getAttribute('width')), parseFloat(s.getAttribute('height'))]);"
    )
    return max(sizes or [(0.0, 0.0)], key=lambda wh: wh[0] * wh[1])


def open_graph_whole(driver, url: str, expected: list[str], max_pixels: int = 1600, margin=(600, 300),
                     timeout: float = 90.0) -> str:
    """Open a graph page on a CSS viewport large enough for the whole graph at zoom 1, rendered at a scale that keeps
    the screenshot within `max_pixels` a side, and wait for the expected texts. Needed because the UI neither zooms
    out below 1 on its own nor puts nodes outside the viewport in the page at all."""
    deadline = time.monotonic() + timeout
    driver.get(url)
    width, height = _stable_graph_size(driver, expected, deadline, url)
    css_width, css_height = max(WINDOW[0], width + margin[0]), max(WINDOW[1], height + margin[1])
    set_viewport(driver, css_width, css_height, min(1.0, max_pixels / css_width, max_pixels / css_height))
    text = open_and_wait(driver, url, expected, timeout=max(10.0, deadline - time.monotonic()))
    time.sleep(2)  # the graph animates to its fitted position after the names appear
    return text


def _stable_graph_size(driver, expected: list[str], deadline: float, url: str) -> tuple[float, float]:
    """The graph's layout size once nodes are drawn (some expected text shows) and two readings a second apart agree
    (before that, the largest SVG on the page can be an icon). Bounded by `deadline`."""
    previous = None
    while True:
        size = graph_size(driver)
        text = page_text(driver)
        drawn = any(t in text for t in expected) and not any(m in text for m in LOADING_MARKERS)
        if drawn and size != (0.0, 0.0) and size == previous:
            return size
        if time.monotonic() > deadline:
            raise AssertionError(f"no stable graph drawn on {url}:\n{page_text(driver)[:2000]}")
        previous = size
        time.sleep(1.0)


def loaded_images(driver, css_scope: str) -> int:
    """How many <img> under the elements matching `css_scope` have loaded (decoded with a non-zero width)."""
    return driver.execute_script(
        "return Array.from(document.querySelectorAll(arguments[0] + ' img'))"
        ".filter(i => i.complete && i.naturalWidth > 0).length;",
        css_scope,
    )


def scroll_to_top(driver, css_scope: str) -> None:
    """Scroll every scrollable element under `css_scope` back to its top (a dialog opens scrolled to its button)."""
    driver.execute_script(
        "document.querySelectorAll(arguments[0] + ', ' + arguments[0] + ' *').forEach(e => { e.scrollTop = 0; });",
        css_scope,
    )


def set_viewport(driver, width: int, height: int, scale: float = 1.0) -> None:
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
        "width": int(width), "height": int(height), "deviceScaleFactor": round(scale, 3), "mobile": False,
    })


def reset_viewport(driver) -> None:
    driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


def wait_for_element(driver, xpath: str, timeout: float = 60.0):
    """The first element matching `xpath` once it exists (bounded); fails naming the XPath and the page."""
    deadline = time.monotonic() + timeout
    while True:
        found = driver.find_elements("xpath", xpath)
        if found:
            return found[0]
        if time.monotonic() > deadline:
            raise AssertionError(
                f"no {xpath} on {driver.current_url} within {timeout:.0f} s:\n{page_text(driver)[:2000]}"
            )
        time.sleep(0.5)
