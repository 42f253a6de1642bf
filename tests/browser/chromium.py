"""Debian's Chromium driven by Playwright (never ``playwright install``), and a front-end page in it."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from .frontend import FrontEnd
from .site import REFRESH_INTERVAL, Site

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
MISSING = (
    f"Chromium is needed for the browser tests and is missing at {CHROMIUM}: "
    "run `make browser` (as root: apt-get install -y --no-install-recommends chromium)."
)


def launch(playwright: Any) -> Any:
    """Start headless Chromium; raise a clear error when it cannot start."""
    if not os.access(CHROMIUM, os.X_OK):
        raise RuntimeError(MISSING)
    try:
        return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
    except Exception as exc:
        raise RuntimeError(f"Chromium at {CHROMIUM} could not start: {exc}") from exc


@contextmanager
def running_chromium() -> Iterator[Any]:
    """Playwright and headless Chromium for a module's tests; a clear failure when it cannot start."""
    from playwright.sync_api import sync_playwright

    playwright = sync_playwright().start()
    try:
        try:
            browser = launch(playwright)
        except RuntimeError as exc:
            pytest.fail(str(exc), pytrace=False)
        try:
            yield browser
        finally:
            browser.close()
    finally:
        playwright.stop()


class FrontPage:
    """A browser tab showing the front-end page of its own origin, calling ``site`` with fetch()."""

    def __init__(self, browser: Any, site: Site) -> None:
        self.site = site
        self.frontend = FrontEnd()
        self.origin = self.frontend.origin
        self.context = browser.new_context()
        self.page = self.context.new_page()
        self.page.set_default_timeout(15000)
        self.console: list[str] = []
        self.page.on("console", lambda message: self.console.append(message.text))
        self.page.goto(self.origin + "/")

    def call(self, path: str, init: dict[str, Any] | None = None, read_headers: tuple[str, ...] = ()) -> dict:
        """fetch() ``path`` of the site from the page.

        Returns ``{ok, status, type, body, headers, headerNames, error}`` as the page saw them.

        Each call gets a unique ``probe`` query parameter, returned as ``probe``, to find it in the
        site's access log.
        """
        probe = uuid.uuid4().hex
        url = self.site.url(f"{path}{'&' if '?' in path else '?'}probe={probe}")
        result = self.page.evaluate(
            "([url, init, names]) => window.callSite(url, init, names)", [url, init or {}, list(read_headers)]
        )
        result["probe"] = probe
        return result

    def console_mentions(self, text: str, timeout: float = 2.0) -> bool:
        deadline = time.monotonic() + timeout
        while True:
            if any(text in line for line in self.console):
                return True
            if time.monotonic() >= deadline:
                return False
            self.page.wait_for_timeout(50)

    def settles(
        self,
        allowed: bool,
        since: float,
        path: str = "/demo/echo/",
        init: dict[str, Any] | None = None,
        read_headers: tuple[str, ...] = (),
        confirm: int = 6,
    ) -> dict:
        """Assert the page's fetch turns ``allowed`` (or refused) within REFRESH_INTERVAL + 1 s of
        ``since`` (when the change was committed), and stays so once REFRESH_INTERVAL has passed:
        ``confirm`` more calls, served by whichever gunicorn worker, all agree. Returns the last call.
        """
        deadline = since + REFRESH_INTERVAL + 1
        while True:
            sent = time.monotonic()
            result = self.call(path, init, read_headers)
            if (result["error"] is None) == allowed:
                break
            assert sent < deadline, (
                f"{self.origin} still {'refused' if allowed else 'allowed'} "
                f"for a fetch sent {sent - since:.1f} s after the change: {result}"
            )
            self.page.wait_for_timeout(100)
        self.page.wait_for_timeout(max(0.0, since + REFRESH_INTERVAL + 0.1 - time.monotonic()) * 1000)
        for _ in range(confirm):
            result = self.call(path, init, read_headers)
            assert (result["error"] is None) == allowed, (
                f"workers disagree about {self.origin} after REFRESH_INTERVAL: {result}"
            )
        return result

    def close(self) -> None:
        try:
            self.context.close()
        finally:
            self.frontend.close()
