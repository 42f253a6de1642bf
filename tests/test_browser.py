"""Real-browser end-to-end tests: what Chromium itself lets a page on another origin do.

The site runs for real (``manage.py migrate`` + ``collectstatic`` on a temporary SQLite database,
then ``gunicorn project.wsgi -w 2`` on a loopback port, REFRESH_INTERVAL = 1 s). Each test opens a
tiny front-end page served from its own port (so its own origin) in headless Chromium and calls
the site with ``fetch()``; the page reports ``{ok, status, body, headers, error}``. Changes to
the allow-list are made the way users make them: the ORM in another process (like
``manage.py shell -c``, kept running to spare Django's start-up) or the admin in the browser.
Every change must reach the browser within REFRESH_INTERVAL + 1 s, in both gunicorn workers.

Covered: an unlisted origin is refused (TypeError) though the site got and answered the request;
an origin added through the ORM is allowed, and refused again once removed; a response header is
readable only when the policy exposes it; a preflighted PUT with a custom header passes only when
the policy allows that header; ``credentials: "include"`` works only with allow_credentials and
never against allow_all_origins ('*'); a 500 is readable by an allowed origin; the admin flow
(log in, add an origin, form errors for a public-suffix wildcard and a duplicate, delete); a
policy added with the admin's add form answers a preflighted PUT. (Every admin page at 1280 px:
tests/test_admin_layout.py.)

Chromium is Debian's ``/usr/bin/chromium`` (``make browser`` installs it). Without it these tests
fail; they never skip.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator

import pytest

from tests.browser.chromium import FrontPage
from tests.browser.site import Site, raw_get

ECHO = "/demo/echo/"
ERROR = "/demo/error/"
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
JSON_PUT = {
    "method": "PUT",
    "headers": {"Content-Type": "application/json", "X-Custom": "yes"},
    "body": '{"hello": "world"}',
}

# Policies next to `default` (^/, no exposed header, no credentials, the default request headers),
# which lists an origin no page has, so that it covers every path (a policy that can allow
# nothing covers nothing).
POLICIES = """
from corsadmin.conf import DEFAULT_HEADERS
AllowedOrigin.objects.create(origin="https://listed.example.com")
Policy.objects.create(name="exposing", url_regex=r"^/demo/", priority=10, expose_headers=["x-request-id"])
Policy.objects.create(name="custom-headers", url_regex=r"^/demo/", priority=10,
                      allow_headers=[*DEFAULT_HEADERS, "x-custom"])
Policy.objects.create(name="with-credentials", url_regex=r"^/demo/", priority=10, allow_credentials=True)
"""


# -- fixtures -------------------------------------------------------------------


@pytest.fixture(scope="module", autouse=True)
def chromium_first(chromium: object) -> object:
    """Headless Chromium, started first: without it every test here fails at once."""
    return chromium


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    site = Site(tmp_path_factory.mktemp("browser-site"))
    try:
        site.start(setup_code=POLICIES)
        yield site
    finally:
        site.stop()


@pytest.fixture
def open_page(chromium: object, site: Site) -> Iterator[Callable[[], FrontPage]]:
    """Opens front-end pages, each on a new origin; closes them after the test."""
    pages: list[FrontPage] = []

    def open_() -> FrontPage:
        pages.append(FrontPage(chromium, site))
        return pages[-1]

    try:
        yield open_
    finally:
        for page in pages:
            page.close()


@pytest.fixture
def page(open_page: Callable[[], FrontPage]) -> FrontPage:
    return open_page()


def allow(site: Site, origin: str, policy: str = "default") -> float:
    """List ``origin`` in ``policy`` through the ORM in another process; returns when it committed."""
    site.orm(f"AllowedOrigin.objects.create(origin={origin!r}, policy=Policy.objects.get(name={policy!r}))")
    return time.monotonic()


def refused(result: dict) -> bool:
    """The page's fetch rejected with a TypeError: the browser withheld the response."""
    return result["status"] is None and (result["error"] or "").startswith("TypeError")


def methods(log_lines: list[str]) -> list[str]:
    """The request methods of access-log lines (``... "PUT /path HTTP/1.1" 200 ...``), sorted.

    Sorted, not in log order: gunicorn logs a request after its response is sent, so with
    several workers the PUT's line can come before its preflight's. That the preflight came
    first is the browser's doing (it sends the PUT only after the preflight's answer)."""
    return sorted(line.split('"')[1].split()[0] for line in log_lines)


def cors_headers(headers: dict[str, str]) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items() if k.lower().startswith("access-control-")}


# -- (1) an origin nobody listed --------------------------------------------------


def test_unlisted_origin_is_refused_by_the_browser_though_the_site_answered(
    site: Site, page: FrontPage
) -> None:
    result = page.call(ECHO)

    assert refused(result), result
    assert page.console_mentions("No 'Access-Control-Allow-Origin' header is present")
    # The request did reach the site, which answered 200: only the browser kept it from the page.
    seen = site.requests_seen(result["probe"])
    assert len(seen) == 1 and '"GET /demo/echo/?probe=' in seen[0] and '" 200 ' in seen[0], seen
    status, headers = raw_get(site.url(ECHO), {"Origin": page.origin})
    assert status == 200
    assert cors_headers(headers) == {}
    assert "Origin" in headers.get("Vary", "")


# -- (2) adding an origin, exposed headers ---------------------------------------


def test_origin_added_through_the_orm_is_allowed_within_the_interval(site: Site, page: FrontPage) -> None:
    assert refused(page.call(ECHO))

    since = allow(site, page.origin)
    result = page.settles(True, since, read_headers=("X-Request-Id", "Content-Type"))

    assert result["ok"] and result["status"] == 200 and result["type"] == "cors"
    assert result["body"]["method"] == "GET"
    assert result["body"]["origin"] == page.origin
    assert result["headers"]["Content-Type"] == "application/json"  # CORS-safelisted
    # X-Request-Id was sent but `default` does not expose it: the page cannot read it.
    assert result["headers"]["X-Request-Id"] is None
    assert "x-request-id" not in result["headerNames"]
    _status, headers = raw_get(site.url(ECHO), {"Origin": page.origin})
    assert "X-Request-Id" in headers and "Access-Control-Expose-Headers" not in headers

    # Removed through the ORM: refused again within the interval.
    site.orm(f"AllowedOrigin.objects.filter(origin={page.origin!r}).delete()")
    assert refused(page.settles(False, time.monotonic()))


def test_exposed_header_is_readable_by_the_page(site: Site, page: FrontPage) -> None:
    since = allow(site, page.origin, "exposing")
    result = page.settles(True, since, read_headers=("X-Request-Id",))

    assert result["body"]["origin"] == page.origin
    assert UUID.match(result["headers"]["X-Request-Id"] or ""), result
    assert "x-request-id" in result["headerNames"]


# -- (3) preflight ----------------------------------------------------------------


def test_preflighted_put_with_custom_header_succeeds_when_the_header_is_allowed(
    site: Site, page: FrontPage
) -> None:
    since = allow(site, page.origin, "custom-headers")
    page.settles(True, since)

    result = page.call(ECHO, JSON_PUT)

    assert result["ok"] and result["status"] == 200, result
    assert result["body"]["method"] == "PUT"
    assert result["body"]["headers"]["X-Custom"] == "yes"
    assert result["body"]["headers"]["Content-Type"] == "application/json"
    assert result["body"]["body"] == '{"hello": "world"}'
    seen = site.requests_seen(result["probe"], expect=2)
    assert methods(seen) == ["OPTIONS", "PUT"], seen


def test_preflight_fails_when_the_custom_header_is_not_allowed(site: Site, page: FrontPage) -> None:
    since = allow(site, page.origin)  # `default`: content-type yes, x-custom no
    page.settles(True, since)

    result = page.call(ECHO, JSON_PUT)

    assert refused(result), result
    assert page.console_mentions(
        "Request header field x-custom is not allowed by Access-Control-Allow-Headers"
    )
    assert methods(site.requests_seen(result["probe"], expect=2, timeout=4)) == ["OPTIONS"]  # no PUT

    # The same PUT without the custom header passes its preflight.
    plain = page.call(ECHO, {**JSON_PUT, "headers": {"Content-Type": "application/json"}})
    assert plain["ok"] and plain["body"]["method"] == "PUT", plain
    seen = site.requests_seen(plain["probe"], expect=2)
    assert methods(seen) == ["OPTIONS", "PUT"], seen


# -- (4) credentials --------------------------------------------------------------


def test_credentials_are_allowed_only_by_a_policy_with_allow_credentials(
    site: Site, open_page: Callable[[], FrontPage]
) -> None:
    trusted, other = open_page(), open_page()
    for front in (trusted, other):
        front.context.add_cookies([{"name": "sessionprobe", "value": "s3cret", "url": site.origin}])
    since = allow(site, trusted.origin, "with-credentials")
    trusted.settles(True, since, init={"credentials": "include"})
    other.settles(True, allow(site, other.origin))

    result = trusted.call(ECHO, {"credentials": "include"})
    assert result["ok"], result
    assert "sessionprobe=s3cret" in result["body"]["headers"].get("Cookie", "")
    without = trusted.call(ECHO)  # credentials: "same-origin" sends no cookie to another origin
    assert without["ok"] and "Cookie" not in without["body"]["headers"], without

    # `default` has no allow_credentials: the browser refuses a credentialed fetch.
    result = other.call(ECHO, {"credentials": "include"})
    assert refused(result), result
    assert other.console_mentions("'Access-Control-Allow-Credentials' header in the response is ''")
    assert len(site.requests_seen(result["probe"])) == 1  # sent (with its cookie), answer withheld


def test_credentials_fail_against_allow_all_origins(site: Site, page: FrontPage) -> None:
    site.orm(
        'Policy.objects.create(name="everyone", url_regex=r"^/demo/", priority=-10, allow_all_origins=True)'
    )
    since = time.monotonic()
    try:
        result = page.settles(True, since)  # this origin is listed nowhere
        assert result["body"]["origin"] == page.origin
        _status, headers = raw_get(site.url(ECHO), {"Origin": page.origin})
        assert headers.get("Access-Control-Allow-Origin") == "*"
        assert "Access-Control-Allow-Credentials" not in headers

        result = page.call(ECHO, {"credentials": "include"})
        assert refused(result), result
        assert page.console_mentions(
            "must not be the wildcard '*' when the request's credentials mode is 'include'"
        )
    finally:
        site.orm('Policy.objects.filter(name="everyone").delete()')
        since = time.monotonic()
    assert refused(page.settles(False, since))  # and the other tests see no allow-all policy


# -- (5) errors carry CORS headers -------------------------------------------------


def test_a_500_is_readable_by_an_allowed_origin_only(site: Site, open_page: Callable[[], FrontPage]) -> None:
    allowed, stranger = open_page(), open_page()
    since = allow(site, allowed.origin)
    allowed.settles(True, since)

    result = allowed.call(ERROR)
    assert result["error"] is None, result
    assert result["ok"] is False and result["status"] == 500 and result["type"] == "cors"
    assert "Server Error (500)" in result["body"]

    result = stranger.call(ERROR)
    assert refused(result), result
    seen = site.requests_seen(result["probe"])
    assert len(seen) == 1 and '" 500 ' in seen[0], seen


# -- (6) the admin, end to end -------------------------------------------------------


def navigate(tab: object, action: Callable[[], None]) -> None:
    """Do ``action`` (a click, a key press) and wait until the page it leads to has loaded."""
    with tab.expect_navigation():
        action()


def test_admin_add_and_remove_an_origin(site: Site, chromium: object, page: FrontPage) -> None:
    from playwright.sync_api import expect

    context = chromium.new_context()
    try:
        admin = context.new_page()
        admin.set_default_timeout(15000)
        stylesheets: list[tuple[str, int]] = []
        admin.on(
            "response",
            lambda r: stylesheets.append((r.url, r.status)) if "/static/admin/css/" in r.url else None,
        )

        admin.goto(site.url("/admin/"))
        admin.fill("#id_username", site.username)
        admin.fill("#id_password", site.password)
        navigate(admin, lambda: admin.click("input[type=submit]"))
        assert admin.url == site.url("/admin/")
        expect(admin.locator("#site-name")).to_be_visible()
        # The admin looks right under gunicorn with DEBUG off: its static files are served.
        assert stylesheets and all(status == 200 for _, status in stylesheets), stylesheets

        assert refused(page.call(ECHO))

        # Add the front-end's origin through the "Allowed origins" add form.
        admin.goto(site.url("/admin/corsadmin/allowedorigin/"))
        # The "Add" button: inside #content-main up to Django 5.2, beside the title from 6.0.
        navigate(admin, lambda: admin.click("#content .object-tools a.addlink"))
        admin.fill("#id_origin", page.origin)
        admin.select_option("#id_policy", label="default")
        admin.fill("#id_note", "added by the browser test")
        navigate(admin, lambda: admin.click("input[name=_save]"))
        since = time.monotonic()
        assert admin.url == site.url("/admin/corsadmin/allowedorigin/")
        expect(admin.locator(".messagelist .success")).to_have_count(1)
        # The row's link holds the origin (exactly: no other port) and, on a line below, its note.
        listed = admin.locator("#result_list a").filter(has=admin.get_by_text(page.origin, exact=True))
        expect(listed).to_have_count(1)
        expect(listed.locator(".corsadmin-note")).to_have_text("added by the browser test")

        result = page.settles(True, since)
        assert result["body"]["origin"] == page.origin

        # A bad origin shows a form error and stores nothing.
        admin.goto(site.url("/admin/corsadmin/allowedorigin/add/"))
        admin.fill("#id_origin", "https://*.com")
        navigate(admin, lambda: admin.click("input[name=_save]"))
        expect(admin.locator(".errornote")).to_be_visible()
        expect(admin.locator(".field-origin .errorlist")).to_contain_text("public suffix")

        # The same origin twice in one policy (spelt differently): refused the same way.
        admin.fill("#id_origin", page.origin.upper())
        admin.select_option("#id_policy", label="default")
        navigate(admin, lambda: admin.click("input[name=_save]"))
        expect(admin.locator(".errornote")).to_be_visible()
        expect(admin.locator(".errorlist").first).to_contain_text("already")

        # Neither was stored: searching finds the one good entry only.
        admin.goto(site.url("/admin/corsadmin/allowedorigin/"))
        admin.fill("#searchbar", "*.com")
        navigate(admin, lambda: admin.press("#searchbar", "Enter"))
        expect(admin.locator("#result_list")).to_have_count(0)  # no table: "0 allowed origins"
        admin.fill("#searchbar", page.origin)
        navigate(admin, lambda: admin.press("#searchbar", "Enter"))
        rows = admin.locator("#result_list tbody tr")
        expect(rows).to_have_count(1)
        expect(rows.first).to_contain_text("default")

        # Remove it in the admin: refused again within the interval.
        navigate(admin, lambda: admin.locator("#result_list").get_by_role("link", name=page.origin).click())
        navigate(admin, lambda: admin.click("#content-main a.deletelink"))
        confirm = "#content form input[type=submit]:not([name=_preview])"  # "Yes, I'm sure", not Preview
        navigate(admin, lambda: admin.click(confirm))
        if admin.locator("#corsadmin-make-change").count():  # its traffic flushed: the admin asks first
            navigate(admin, lambda: admin.click("#corsadmin-make-change"))
        since = time.monotonic()
        assert re.search(r"/admin/corsadmin/allowedorigin/(\?.*)?$", admin.url), admin.url  # keeps the search
        expect(admin.locator(".messagelist .success")).to_have_count(1)
        assert refused(page.settles(False, since))
    finally:
        context.close()


def test_policy_added_in_the_admin_form_answers_a_preflighted_fetch(
    site: Site, chromium: object, page: FrontPage
) -> None:
    """Issue 12: a policy added with the admin's add form, methods and headers left as shown,
    lets a page on another origin make a preflighted PUT."""
    from playwright.sync_api import expect

    context = chromium.new_context()
    try:
        admin = context.new_page()
        admin.set_default_timeout(15000)
        admin.goto(site.url("/admin/login/?next=/admin/"))
        admin.fill("#id_username", site.username)
        admin.fill("#id_password", site.password)
        navigate(admin, lambda: admin.click("input[type=submit]"))

        request = {"method": "PUT", "headers": {"Content-Type": "application/json"}, "body": "{}"}
        assert refused(page.call(ECHO, request))

        admin.goto(site.url("/admin/corsadmin/policy/add/"))
        admin.fill("#id_name", "browser-flow")
        admin.fill("#id_url_regex", "^/demo/")
        admin.fill("#id_priority", "50")
        admin.fill("#id_origins-0-origin", page.origin)  # the inline row; methods and headers as shown
        navigate(admin, lambda: admin.click("input[name=_save]"))
        since = time.monotonic()
        expect(admin.locator(".messagelist .success")).to_have_count(1)

        page.settles(True, since)
        result = page.call(ECHO, request)
        assert result["ok"] and result["status"] == 200, result
        assert result["body"]["method"] == "PUT"
        seen = site.requests_seen(result["probe"], expect=2)
        assert methods(seen) == ["OPTIONS", "PUT"], seen
    finally:
        context.close()


# -- (9) from allow-all to an allow-list with a report-only policy ------------------------------

TELEMETRY_WAIT = 15.0  # TELEMETRY_INTERVAL (10 s) and a margin: the workers write what they counted


@pytest.fixture
def report_only(site: Site) -> Iterator[str]:
    """`legacy` allows every origin on /demo/echo/; `strict`, report-only, lists another origin
    (not the page's: a policy that can allow nothing would report nothing). An API token to read
    /api/cors/blocked/. Both policies go afterwards (the site is shared)."""
    key = site.orm(
        "from django.contrib.auth import get_user_model\n"
        "from rest_framework.authtoken.models import Token\n"
        f"user = get_user_model().objects.get(username={site.username!r})\n"
        "print(Token.objects.get_or_create(user=user)[0].key)\n"
        'Policy.objects.create(name="legacy", url_regex=r"^/demo/echo/", priority=20,\n'
        "                      allow_all_origins=True)\n"
        'strict = Policy.objects.create(name="strict", url_regex=r"^/demo/echo/", priority=30,\n'
        '                               mode="report")\n'
        'AllowedOrigin.objects.create(origin="https://partner.example.com", policy=strict)\n'
    ).strip()
    try:
        yield key
    finally:
        site.orm('Policy.objects.filter(name__in=["legacy", "strict"]).delete()')


def blocked(site: Site, token: str) -> list[dict]:
    import json
    import urllib.request

    request = urllib.request.Request(
        site.url("/api/cors/blocked/?report=true"), headers={"Authorization": f"Token {token}"}
    )
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(request, timeout=5) as response:
        return json.load(response)["results"]


def test_report_only_policy_to_enforced_allow_list(site: Site, page: FrontPage, report_only: str) -> None:
    # 1. allow-all decides; the report-only policy would refuse the page's origin.
    result = page.settles(True, time.monotonic())
    assert result["status"] == 200

    # 2. The refused origins list that would-be refusal, marked report with its policy.
    deadline = time.monotonic() + TELEMETRY_WAIT
    rows: list[dict] = []
    while not rows and time.monotonic() < deadline:
        rows = [r for r in blocked(site, report_only) if r["origin"] == page.origin]
        page.page.wait_for_timeout(250)
    assert [(r["report"], r["policy"], r["path_prefix"]) for r in rows] == [(True, "strict", "/demo/")], rows

    # 3. Allow that origin in the report-only policy, 4. switch it to enforce and drop allow-all.
    allow(site, page.origin, "strict")
    site.orm(
        'Policy.objects.filter(name="strict").update(mode="enforce")\n'
        'Policy.objects.filter(name="legacy").update(allow_all_origins=False)'
    )
    since = time.monotonic()

    # 5. The browser's fetch still works, now allowed by the list (the origin echoed, not '*').
    result = page.settles(True, since)
    assert result["status"] == 200
    _status, headers = raw_get(site.url(ECHO), {"Origin": page.origin})
    assert cors_headers(headers) == {"access-control-allow-origin": page.origin}
    # Another origin is now refused: the list is enforced.
    assert cors_headers(raw_get(site.url(ECHO), {"Origin": "http://other.invalid"})[1]) == {}
