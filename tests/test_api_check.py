"""check/ and `cors check` say exactly what the middleware does."""

from __future__ import annotations

import io
import json
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from corsadmin.models import AllowedOrigin, Policy
from tests.api_fixtures import API
from tests.cors_helpers import cors_headers, vary

pytestmark = pytest.mark.django_db

APP = "https://app.example.com"


@pytest.fixture
def allow_list(db):
    default = Policy.objects.get(name="default")
    default.url_regex = r"^/(demo|site)/"
    default.save()
    AllowedOrigin.objects.create(origin=APP, policy=default)
    AllowedOrigin.objects.create(origin="https://off.example.com", policy=default, enabled=False)
    AllowedOrigin.objects.create(
        origin="https://old.example.com", policy=default, expires_at=timezone.now() - timedelta(days=1)
    )
    AllowedOrigin.objects.create(origin="null", policy=default)
    api = Policy.objects.create(
        name="api",
        url_regex=r"^/api/v1/",
        priority=10,
        allow_credentials=True,
        allow_methods=["GET", "PUT"],
        allow_headers=["content-type", "x-token"],
        expose_headers=["x-total"],
        max_age=600,
        allow_private_network=True,
    )
    AllowedOrigin.objects.create(origin="https://*.example.org", policy=api)
    AllowedOrigin.objects.create(origin="http://localhost:*", policy=api)
    Policy.objects.create(name="public", url_regex=r"^/public/", allow_all_origins=True, max_age=0)


# (origin, path, method, request_method, request_headers, private_network)
CASES = [
    (APP, "/demo/echo/", "GET", None, None, False),
    (APP, "/demo/echo/", "POST", None, None, False),
    (APP, "/demo/echo/", "PUT", None, None, False),
    (APP, "/demo/echo/", "OPTIONS", "PUT", "content-type", False),
    (APP, "/demo/echo/", "OPTIONS", None, None, False),
    (APP, "/site/nowhere/", "DELETE", None, None, False),
    ("https://evil.example", "/demo/echo/", "GET", None, None, False),
    ("https://evil.example", "/demo/echo/", "OPTIONS", "GET", None, False),
    ("https://app.example.com.evil.example", "/demo/echo/", "GET", None, None, False),
    ("HTTPS://APP.EXAMPLE.COM", "/demo/echo/", "GET", None, None, False),
    ("https://app.example.com:443", "/demo/echo/", "GET", None, None, False),
    ("https://off.example.com", "/demo/echo/", "GET", None, None, False),
    ("https://old.example.com", "/demo/echo/", "GET", None, None, False),
    ("null", "/demo/echo/", "GET", None, None, False),
    (APP, "/elsewhere/", "GET", None, None, False),
    (APP, "/api/v1/items", "GET", None, None, False),
    ("https://a.b.example.org", "/api/v1/items", "GET", None, None, False),
    ("https://a.b.example.org", "/api/v1/items", "OPTIONS", "PUT", "x-token, content-type", False),
    ("https://a.b.example.org", "/api/v1/items", "OPTIONS", "PUT", None, True),
    ("https://example.org", "/api/v1/items", "GET", None, None, False),
    ("http://localhost:5173", "/api/v1/items", "PATCH", None, None, False),
    ("http://localhost:5173", "/api/v1/items", "OPTIONS", "PATCH", "x-other", True),
    ("https://anyone.example", "/public/data", "GET", None, None, False),
    ("https://anyone.example", "/public/data", "OPTIONS", "DELETE", "x-a", False),
    ("https://anyone.example", "/public/data", "OPTIONS", "DELETE", None, True),
]


def _query(origin, path, method, request_method, request_headers, private_network):
    query = {"origin": origin, "path": path, "method": method}
    if request_method:
        query["request_method"] = request_method
    if request_headers:
        query["request_headers"] = request_headers
    if private_network:
        query["private_network"] = "true"
    return query


def _real_request(client, origin, path, method, request_method, request_headers, private_network):
    headers = {"HTTP_ORIGIN": origin}
    if request_method:
        headers["HTTP_ACCESS_CONTROL_REQUEST_METHOD"] = request_method
    if request_headers:
        headers["HTTP_ACCESS_CONTROL_REQUEST_HEADERS"] = request_headers
    if private_network:
        headers["HTTP_ACCESS_CONTROL_REQUEST_PRIVATE_NETWORK"] = "true"
    return client.generic(method, path, **headers)


@pytest.mark.parametrize("case", CASES, ids=[f"{c[2]} {c[1]} {c[0]}"[:70] for c in CASES])
def test_check_endpoint_equals_the_middleware(allow_list, reader_client, client, case):
    checked = reader_client.get(API + "check/", _query(*case))
    assert checked.status_code == 200
    result = checked.json()
    response = _real_request(client, *case)
    assert result["headers"] == cors_headers(response)
    assert result["covered"] == ("Origin" in vary(response))


@pytest.mark.parametrize("case", CASES, ids=[f"{c[2]} {c[1]} {c[0]}"[:70] for c in CASES])
def test_cli_check_equals_the_middleware(allow_list, client, case):
    origin, path, method, request_method, request_headers, private_network = case
    args = ["cors", "check", origin, "--path", path, "--method", method, "--json"]
    if request_method:
        args += ["--request-method", request_method]
    if request_headers:
        args += ["--request-headers", request_headers]
    if private_network:
        args.append("--private-network")
    out = io.StringIO()
    try:
        call_command(*args, stdout=out)
        refused = False
    except CommandError as exc:
        assert exc.returncode == 1
        refused = True
    result = json.loads(out.getvalue())
    assert refused is not result["allowed"]
    assert result["headers"] == cors_headers(_real_request(client, *case))


def test_check_answer_shape(allow_list, reader_client):
    result = reader_client.get(API + "check/", {"origin": APP, "path": "/demo/echo/"}).json()
    assert result == {
        "origin": APP,
        "path": "/demo/echo/",
        "method": "GET",
        "allowed": True,
        "covered": True,
        "policy": "default",
        "matched": APP,
        "host": None,
        "effect": "allow",
        "exception": None,
        "would_refuse": [],
        "headers": {"Access-Control-Allow-Origin": APP},
        "preflight": None,
        "reason": "Allowed by policy 'default' (entry 'https://app.example.com').",
        "credentials": "same-origin",
        "url": "https://testserver/demo/echo/",
        "engines": {
            engine: {"allowed": True, "message": "", "warnings": [], "preflight_cached_seconds": None}
            for engine in ("chromium", "firefox", "webkit")
        },
        "status": None,
        "middleware_allows": True,
        "fix": [],
    }


def test_check_defaults_to_get_on_root(reader_client):
    AllowedOrigin.objects.create(origin=APP)
    result = reader_client.get(API + "check/", {"origin": APP}).json()
    assert (result["path"], result["method"], result["allowed"]) == ("/", "GET", True)


def test_check_shows_the_preflight_of_a_non_simple_request(allow_list, reader_client):
    result = reader_client.get(
        API + "check/",
        {
            "origin": "https://x.example.org",
            "path": "/api/v1/a",
            "method": "put",
            "request_headers": "X-Token",
        },
    ).json()
    assert result["method"] == "PUT"
    assert result["allowed"] is True
    assert result["headers"] == {
        "Access-Control-Allow-Origin": "https://x.example.org",
        "Access-Control-Allow-Credentials": "true",
        "Access-Control-Expose-Headers": "x-total",
    }
    assert result["preflight"] == {
        "request_method": "PUT",
        "request_headers": ["x-token"],
        "allowed": True,
        "method_allowed": True,
        "missing_headers": [],
        "headers": {
            "Access-Control-Allow-Origin": "https://x.example.org",
            "Access-Control-Allow-Credentials": "true",
            "Access-Control-Expose-Headers": "x-total",
            "Access-Control-Allow-Headers": "content-type, x-token",
            "Access-Control-Allow-Methods": "GET, PUT",
            "Access-Control-Max-Age": "600",
        },
    }


def test_check_explains_a_method_the_preflight_does_not_list(allow_list, reader_client):
    result = reader_client.get(
        API + "check/", {"origin": "https://x.example.org", "path": "/api/v1/a", "method": "DELETE"}
    ).json()
    assert result["allowed"] is False
    assert result["policy"] == "api"
    assert result["preflight"]["method_allowed"] is False
    assert "does not list the method DELETE" in result["reason"]


@pytest.mark.parametrize(
    "origin, path, reason",
    [
        (
            "https://evil.example",
            "/demo/x",
            "No policy covering '/demo/x' (default) allows 'https://evil.example'.",
        ),
        (APP, "/elsewhere/", "No enabled policy covers the path '/elsewhere/'"),
        ("https://off.example.com", "/demo/x", "listed in policy 'default' but disabled"),
        ("https://old.example.com", "/demo/x", "listed in policy 'default' but expired"),
        (
            "HTTPS://APP.example.com",
            "/demo/x",
            "Browsers send origins in canonical form ('https://app.example.com')",
        ),
        ("https://app.example.com/", "/demo/x", "has a path"),
        (APP, "/api/v1/x", "listed in policy 'default', which does not cover '/api/v1/x'"),
    ],
)
def test_check_explains_a_refusal(allow_list, reader_client, origin, path, reason):
    result = reader_client.get(API + "check/", {"origin": origin, "path": path}).json()
    assert result["allowed"] is False
    assert reason in result["reason"]


COVERS_NOTHING = (
    "No enabled policy covers the path '/demo/echo/': responses carry no CORS headers. Policy "
    "'default' matches the path but covers nothing: it has no enabled, unexpired allow entry and "
    "does not allow all origins, so it changes no response (no Vary, no preflight answered) until "
    "it has one."
)


def test_check_says_the_seeded_default_without_entries_covers_nothing(reader_client, client):
    result = reader_client.get(API + "check/", {"origin": APP, "path": "/demo/echo/"}).json()
    response = client.get("/demo/echo/", HTTP_ORIGIN=APP)
    assert (result["allowed"], result["covered"], result["reason"], vary(response)) == (
        False,
        False,
        COVERS_NOTHING,
        [],
    )


def test_cli_check_says_the_seeded_default_without_entries_covers_nothing():
    with pytest.raises(CommandError) as refused:
        call_command("cors", "check", APP, "--path", "/demo/echo/", stdout=io.StringIO())
    assert (refused.value.returncode, str(refused.value)) == (1, f"refused: {COVERS_NOTHING}")


@pytest.mark.parametrize(
    ("entry", "note"),
    [
        ({"enabled": False}, "it is listed in policy 'default' but disabled"),
        ({"effect": "deny"}, "it is listed in policy 'default' as an exception (deny entry)"),
    ],
    ids=["disabled", "deny"],
)
def test_check_notes_the_entry_of_a_policy_that_covers_nothing(reader_client, entry, note):
    AllowedOrigin.objects.create(origin=APP, **entry)
    result = reader_client.get(API + "check/", {"origin": APP, "path": "/demo/echo/"}).json()
    assert (result["covered"], result["reason"]) == (False, f"{COVERS_NOTHING} Note: {note}.")
