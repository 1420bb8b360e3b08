"""Debian's chromium, headless, driven by playwright (whose own browser download is never
used), as the web page's tests need it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from playwright.sync_api import Page, sync_playwright

from tests.support.debian_packages import installed_program

# As root in a container; without the network's background services (this machine has no
# network beyond loopback); WebGL on the CPU (SwiftShader), there being no GPU.
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run", "--use-angle=swiftshader", "--enable-unsafe-swiftshader",
]  # fmt: skip
VIEWPORT = {"width": 1280, "height": 1000}


@contextmanager
def browser_page() -> Iterator[Page]:
    """A page in a new headless chromium, closed afterwards."""
    chromium = installed_program("chromium", "chromium")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium, headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield browser.new_page(viewport=VIEWPORT)  # type: ignore[arg-type]
        finally:
            browser.close()
