"""CrossOriginProtectionMiddleware against what a real Chromium sends: the rows of its decision
table a browser can produce (Sec-Fetch-Site same-origin, same-site, cross-site; fetch and form
posts; safe and unsafe methods; an entry with and without the ``csrf`` scope).

The site runs under gunicorn with the demo settings plus the middleware
(tests/browser/protection_settings.py). A page on 127.0.0.1 at another port is same-site; one on
``localhost`` is cross-site. For the page to read the status of an unsafe request, its origin is
listed for CORS (the 403 carries CORS headers too); whether it is also trusted for the CSRF check
(``csrf_trusted``) is what decides.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest

from tests.browser.chromium import FrontPage
from tests.browser.site import REFRESH_INTERVAL, Site

ECHO = "/demo/echo/"
POST = {"method": "POST", "body": "hello"}  # a simple request: no preflight


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    site = Site(tmp_path_factory.mktemp("cross-origin-site"))
    site.env["DJANGO_SETTINGS_MODULE"] = "tests.browser.protection_settings"
    try:
        site.start()
        yield site
    finally:
        site.stop()


@pytest.fixture
def page(chromium: object, site: Site) -> Iterator[FrontPage]:
    page = FrontPage(chromium, site)
    try:
        yield page
    finally:
        page.close()


@pytest.fixture
def cross_site_page(page: FrontPage) -> FrontPage:
    """The same front-end page, opened as http://localhost:<port>: another site than 127.0.0.1."""
    page.origin = page.origin.replace("127.0.0.1", "localhost")
    page.page.goto(page.origin + "/")
    return page


def listed(site: Site, origin: str, csrf_trusted: bool) -> float:
    site.orm(
        f"AllowedOrigin.objects.update_or_create(origin={origin!r}, "
        f"policy=Policy.objects.get(name='default'), defaults={{'csrf_trusted': {csrf_trusted!r}}})"
    )
    return time.monotonic()


def status_within_refresh(page: FrontPage, since: float, expected: int, init: dict | None = None) -> dict:
    """The page's call answers ``expected`` within REFRESH_INTERVAL + 1 s of ``since``."""
    while True:
        result = page.call(ECHO, init)
        if result["status"] == expected or time.monotonic() > since + REFRESH_INTERVAL + 1:
            assert result["status"] == expected, result
            return result
        page.page.wait_for_timeout(100)


def test_a_same_origin_post_passes(chromium: object, site: Site):
    context = chromium.new_context()  # type: ignore[attr-defined]
    try:
        tab = context.new_page()
        tab.goto(site.url(ECHO))
        result = tab.evaluate(
            "async (url) => { const r = await fetch(url, {method: 'POST', body: 'x'});"
            " return {status: r.status, body: await r.json()}; }",
            site.url(ECHO),
        )
    finally:
        context.close()
    assert (result["status"], result["body"]["headers"]["Sec-Fetch-Site"]) == (200, "same-origin")


def test_a_same_site_post_from_a_cors_only_origin_is_refused(page: FrontPage, site: Site):
    since = listed(site, page.origin, csrf_trusted=False)
    assert status_within_refresh(page, since, 403, POST)["status"] == 403


def test_a_same_site_post_from_a_csrf_trusted_origin_passes(page: FrontPage, site: Site):
    since = listed(site, page.origin, csrf_trusted=True)
    result = status_within_refresh(page, since, 200, POST)
    assert result["body"]["headers"]["Sec-Fetch-Site"] == "same-site"


def test_a_cross_site_post_from_a_cors_only_origin_is_refused(cross_site_page: FrontPage, site: Site):
    since = listed(site, cross_site_page.origin, csrf_trusted=False)
    assert status_within_refresh(cross_site_page, since, 403, POST)["status"] == 403


def test_a_cross_site_get_passes(cross_site_page: FrontPage, site: Site):
    since = listed(site, cross_site_page.origin, csrf_trusted=False)
    result = status_within_refresh(cross_site_page, since, 200)
    assert result["body"]["headers"]["Sec-Fetch-Site"] == "cross-site"


def test_a_cross_site_post_from_a_csrf_trusted_origin_passes(cross_site_page: FrontPage, site: Site):
    since = listed(site, cross_site_page.origin, csrf_trusted=True)
    result = status_within_refresh(cross_site_page, since, 200, POST)
    assert result["body"]["headers"]["Sec-Fetch-Site"] == "cross-site"


def form_post(page: FrontPage, site: Site) -> int:
    """A cross-site form submitted by the page (a navigation): the status the browser got."""
    page.page.goto(page.origin + "/")
    url = site.url(f"{ECHO}?probe={uuid.uuid4().hex}")
    with page.page.expect_navigation() as navigation:
        page.page.evaluate(
            "(url) => { const f = document.createElement('form'); f.method = 'POST'; f.action = url;"
            " document.body.appendChild(f); f.submit(); }",
            url,
        )
    return navigation.value.status


def test_a_cross_site_form_post_is_refused(cross_site_page: FrontPage, site: Site):
    assert form_post(cross_site_page, site) == 403


def test_a_cross_site_form_post_from_a_csrf_trusted_origin_passes(cross_site_page: FrontPage, site: Site):
    since = listed(site, cross_site_page.origin, csrf_trusted=True)
    while (
        status := form_post(cross_site_page, site)
    ) != 200 and time.monotonic() < since + REFRESH_INTERVAL + 1:
        cross_site_page.page.wait_for_timeout(100)
    assert status == 200
