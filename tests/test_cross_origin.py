"""CrossOriginProtectionMiddleware's decision table (Sec-Fetch-Site x Origin x method x trust),
through Django's handler with the demo site's middleware. What Chromium itself sends:
tests/test_browser_cross_origin.py."""

from __future__ import annotations

import logging

import pytest

from corsadmin.models import AllowedOrigin, Policy

pytestmark = pytest.mark.django_db

PARTNER = "https://partner.example.com"
OWN = "http://testserver"


@pytest.fixture(autouse=True)
def protected_site(settings):
    settings.ROOT_URLCONF = "tests.urls"
    settings.MIDDLEWARE = [*settings.MIDDLEWARE, "corsadmin.middleware.CrossOriginProtectionMiddleware"]


def send(client, method="post", site=None, origin=None, path="/protected/") -> int:
    headers = {}
    if site is not None:
        headers["HTTP_SEC_FETCH_SITE"] = site
    if origin is not None:
        headers["HTTP_ORIGIN"] = origin
    return getattr(client, method)(path, **headers).status_code


@pytest.mark.parametrize(
    ("site", "origin", "status"),
    [
        ("same-origin", OWN, 201),
        ("none", None, 201),
        (None, None, 201),  # neither header: not a browser
        (None, OWN, 201),  # an older browser on the site's own origin
        ("same-site", PARTNER, 403),
        ("cross-site", PARTNER, 403),
        ("cross-site", None, 403),
        (None, PARTNER, 403),  # an older browser on another origin
        ("cross-site", "null", 403),
        ("same-origin", PARTNER, 201),  # the browser's word on the relation wins
        ("bogus", PARTNER, 403),
    ],
)
def test_an_unsafe_request_with_nothing_trusted(client, site, origin, status):
    assert send(client, site=site, origin=origin) == status


@pytest.mark.parametrize("method", ["get", "head", "options"])
def test_a_safe_method_always_passes(client, method):
    assert send(client, method, site="cross-site", origin=PARTNER) in (200, 201)


@pytest.mark.parametrize("method", ["put", "patch", "delete"])
def test_every_unsafe_method_is_refused_cross_site(client, method):
    assert send(client, method, site="cross-site", origin=PARTNER) == 403


def test_an_entry_trusted_for_csrf_passes(client):
    AllowedOrigin.objects.create(origin=PARTNER, csrf_trusted=True)
    assert send(client, site="cross-site", origin=PARTNER) == 201


def test_a_cors_only_entry_is_refused(client):
    AllowedOrigin.objects.create(origin=PARTNER)
    assert send(client, site="cross-site", origin=PARTNER) == 403


def test_a_trusted_wildcard_entry_passes_below_it_only(client):
    AllowedOrigin.objects.create(origin="https://*.example.com", csrf_trusted=True)
    verdicts = [send(client, site="same-site", origin=o) for o in (PARTNER, "https://example.com")]
    assert verdicts == [201, 403]


def test_an_entry_trusted_for_other_paths_is_refused(client):
    policy = Policy.objects.create(name="api", url_regex=r"^/api/")
    AllowedOrigin.objects.create(origin=PARTNER, csrf_trusted=True, policy=policy)
    verdicts = [
        send(client, site="cross-site", origin=PARTNER, path=p) for p in ("/api/protected/", "/protected/")
    ]
    assert verdicts == [201, 403]


def test_csrf_trusted_origins_pass(client, settings):
    settings.CSRF_TRUSTED_ORIGINS = [PARTNER]
    assert send(client, site="cross-site", origin=PARTNER) == 201


def test_a_csrf_trusted_origins_wildcard_passes(client, settings):
    settings.CSRF_TRUSTED_ORIGINS = ["https://*.example.com"]
    assert send(client, site="cross-site", origin=PARTNER) == 201


def test_an_exempt_path_passes(client, settings):
    settings.CORSADMIN = {**settings.CORSADMIN, "CROSS_ORIGIN_EXEMPT_PATHS": [r"^/protected/"]}
    assert send(client, site="cross-site", origin=PARTNER) == 201


def test_an_exempt_path_leaves_other_paths_protected(client, settings):
    settings.CORSADMIN = {**settings.CORSADMIN, "CROSS_ORIGIN_EXEMPT_PATHS": [r"^/webhooks/"]}
    assert send(client, site="cross-site", origin=PARTNER) == 403


def test_an_exempt_view_passes(client):
    assert send(client, site="cross-site", origin=PARTNER, path="/exempt/") == 201


def test_a_refusal_is_djangos_csrf_failure_page(client):
    response = client.post("/protected/", HTTP_SEC_FETCH_SITE="cross-site", HTTP_ORIGIN=PARTNER)
    assert (response.status_code, response["Content-Type"]) == (403, "text/html; charset=utf-8")
    assert b"CSRF verification failed" in response.content


def test_a_refusal_is_logged(client, caplog):
    with caplog.at_level(logging.WARNING, logger="corsadmin"):
        send(client, site="cross-site", origin=PARTNER)
    (record,) = [r for r in caplog.records if getattr(r, "event", "") == "cross_origin_refused"]
    assert record.report is False
    assert record.getMessage() == (
        "corsadmin: refused POST /protected/ (Cross-origin request refused: Sec-Fetch-Site is "
        "cross-site and Origin https://partner.example.com is not trusted.)"
    )


def test_report_only_refuses_nothing_and_logs_what_it_would(client, settings, caplog):
    settings.CORSADMIN = {**settings.CORSADMIN, "CROSS_ORIGIN_REPORT_ONLY": True}
    with caplog.at_level(logging.WARNING, logger="corsadmin"):
        status = send(client, site="cross-site", origin=PARTNER)
    reports = [r.report for r in caplog.records if getattr(r, "event", "") == "cross_origin_refused"]
    assert (status, reports) == (201, [True])


async def test_the_async_stack_refuses_too(async_client):
    response = await async_client.post(
        "/protected/", headers={"Sec-Fetch-Site": "cross-site", "Origin": PARTNER}
    )
    assert response.status_code == 403


@pytest.mark.parametrize(
    ("value", "expected"),
    [([], []), ([r"^/webhooks/"], []), ([r"^/(unclosed"], ["corsadmin.E019"]), (r"^/x/", ["corsadmin.E019"])],
)
def test_exempt_paths_are_checked(settings, value, expected):
    from corsadmin.cross_origin import check_exempt_paths

    settings.CORSADMIN = {**settings.CORSADMIN, "CROSS_ORIGIN_EXEMPT_PATHS": value}
    assert [m.id for m in check_exempt_paths()] == expected
