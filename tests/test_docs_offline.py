"""The API's documentation pages load nothing from another host, in a real browser.

Redoc's bundle (drf-spectacular-sidecar) draws its maker's logo in the side menu from
cdn.redoc.ly; corsadmin's Redoc template carries a Content-Security-Policy that keeps any
such request from being sent. Debian's Chromium (``/usr/bin/chromium``, ``make browser``)
against pytest-django's live server; started inside the test, after the live server, as
Playwright's sync API runs an event loop in this thread (Django refuses database calls
from it). Unmarked: runs once, in the embedded pass, like tests/test_browser.py.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.browser.chromium import launch


def test_the_redoc_page_loads_nothing_from_another_host(live_server: Any) -> None:
    """Every request the page sends is recorded, those to another host aborted (the page
    must work offline): none may go elsewhere, and the schema must still render."""
    from playwright.sync_api import sync_playwright

    own = urlsplit(live_server.url).netloc
    sent: list[str] = []

    def record(route: Any) -> None:
        sent.append(route.request.url)
        if urlsplit(route.request.url).netloc == own:
            route.continue_()
        else:
            route.abort()

    with sync_playwright() as playwright:
        try:
            browser = launch(playwright)
        except RuntimeError as exc:
            pytest.fail(str(exc), pytrace=False)
        try:
            page = browser.new_page()
            page.route("**/*", record)
            page.goto(live_server.url + "/api/cors/redoc/")
            page.get_by_text("API docs by Redocly").wait_for()  # the side menu, where the logo goes
            page.locator("h2", has_text="List policies").first.wait_for()  # the schema, rendered
            page.wait_for_load_state("networkidle")
        finally:
            browser.close()
    assert [url for url in sent if urlsplit(url).netloc != own] == []
    assert {urlsplit(url).path for url in sent} >= {"/api/cors/redoc/", "/api/cors/schema/"}
