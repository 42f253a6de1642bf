"""django-cors-headers' settings keep their meaning under corsadmin's middleware."""

import re
import time

import pytest
from corsheaders.middleware import CorsMiddleware as CorsHeadersMiddleware
from corsheaders.signals import check_request_enabled as corsheaders_signal
from django.http import HttpResponse
from django.test import RequestFactory

from corsadmin import signals
from corsadmin.middleware import CorsMiddleware
from corsadmin.models import Policy
from corsadmin.settings_policy import compile_origin_regex

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def no_database_policies():
    Policy.objects.all().delete()


def view(request):
    return HttpResponse("ok")


def cors_headers(response):
    return {
        name.lower(): value
        for name, value in response.items()
        if name.lower().startswith("access-control-") or name.lower() == "vary"
    } | ({"vary": response["Vary"].lower()} if response.has_header("Vary") else {})


def both(request):
    theirs = CorsHeadersMiddleware(view)(request)
    ours = CorsMiddleware(view)(request)
    return cors_headers(theirs), cors_headers(ours), theirs, ours


SETTINGS = {
    "exact": {"CORS_ALLOWED_ORIGINS": ["https://app.example.com", "http://localhost:3000"]},
    "old-alias": {"CORS_ORIGIN_WHITELIST": ["https://app.example.com"]},
    "null-and-file": {"CORS_ALLOWED_ORIGINS": ["null", "file://"]},
    "regexes": {"CORS_ALLOWED_ORIGIN_REGEXES": [r"^https://\w+\.example\.com$"]},
    "compiled-regex": {"CORS_ALLOWED_ORIGIN_REGEXES": [re.compile(r"^https://\w+\.example\.org$")]},
    "old-regex-alias": {"CORS_ORIGIN_REGEX_WHITELIST": [r"^https://\w+\.example\.com$"]},
    "allow-all": {"CORS_ALLOW_ALL_ORIGINS": True},
    "old-allow-all": {"CORS_ORIGIN_ALLOW_ALL": True},
    "allow-all-credentials": {"CORS_ALLOW_ALL_ORIGINS": True, "CORS_ALLOW_CREDENTIALS": True},
    "credentials-expose": {
        "CORS_ALLOWED_ORIGINS": ["https://app.example.com"],
        "CORS_ALLOW_CREDENTIALS": True,
        "CORS_EXPOSE_HEADERS": ["X-Request-Id", "X-Total"],
    },
    "methods-headers-age": {
        "CORS_ALLOWED_ORIGINS": ["https://app.example.com"],
        "CORS_ALLOW_METHODS": ["GET", "POST"],
        "CORS_ALLOW_HEADERS": ["x-custom"],
        "CORS_PREFLIGHT_MAX_AGE": 0,
    },
    "urls-regex": {"CORS_ALLOWED_ORIGINS": ["https://app.example.com"], "CORS_URLS_REGEX": r"^/api/.*$"},
    "private-network": {"CORS_ALLOWED_ORIGINS": ["https://app.example.com"], "CORS_ALLOW_PRIVATE_NETWORK": True},
}

ORIGINS = [
    None,
    "https://app.example.com",
    "http://localhost:3000",
    "https://evil.example.net",
    "https://a.example.com",
    "https://a.example.org",
    "https://example.com.evil.net",
    "null",
    "file://",
    "https://app.example.com:443",
    "HTTPS://APP.EXAMPLE.COM",
    "garbage",
]

# django-cors-headers compares only scheme and netloc, so with "null" listed any
# host-less Origin (here "garbage") is allowed and echoed. corsadmin refuses it.
HOLES_IN_DJANGO_CORS_HEADERS = {("null-and-file", "garbage")}

REQUESTS = [
    ("get", "/api/x", {}),
    ("get", "/other", {}),
    ("post", "/api/x", {}),
    ("options", "/api/x", {"HTTP_ACCESS_CONTROL_REQUEST_METHOD": "PUT"}),
    ("options", "/api/x", {"HTTP_ACCESS_CONTROL_REQUEST_METHOD": "GET", "HTTP_ACCESS_CONTROL_REQUEST_PRIVATE_NETWORK": "true"}),
    ("options", "/api/x", {}),
]


@pytest.mark.parametrize("case", SETTINGS)
def test_same_headers_as_django_cors_headers(case, settings):
    for name, value in SETTINGS[case].items():
        setattr(settings, name, value)
    rf = RequestFactory()
    for origin in ORIGINS:
        for method, path, extra in REQUESTS:
            headers = dict(extra)
            if origin is not None:
                headers["HTTP_ORIGIN"] = origin
            request = getattr(rf, method)(path, **headers)
            theirs, ours, their_response, our_response = both(request)
            if (case, origin) in HOLES_IN_DJANGO_CORS_HEADERS:
                assert "access-control-allow-origin" in theirs
                assert "access-control-allow-origin" not in ours
                continue
            assert ours == theirs, (case, origin, method, path, extra)
            assert our_response.status_code == their_response.status_code


def test_settings_are_reread_when_they_change(client, settings):
    settings.CORS_ALLOWED_ORIGINS = ["https://one.example.com"]
    assert client.get("/demo/echo/", HTTP_ORIGIN="https://one.example.com")["Access-Control-Allow-Origin"] == (
        "https://one.example.com"
    )
    settings.CORS_ALLOWED_ORIGINS = ["https://two.example.com"]
    response = client.get("/demo/echo/", HTTP_ORIGIN="https://one.example.com")
    assert not response.has_header("Access-Control-Allow-Origin")


@pytest.mark.parametrize("signal", [corsheaders_signal, signals.check_request_enabled], ids=["corsheaders", "corsadmin"])
def test_check_request_enabled_receiver_allows(signal, client, settings):
    settings.CORS_ALLOWED_ORIGINS = []

    def allow_partner(sender, request, **kwargs):
        return request.headers.get("Origin") == "https://partner.example.com"

    signal.connect(allow_partner)
    try:
        allowed = client.get("/demo/echo/", HTTP_ORIGIN="https://partner.example.com")
        refused = client.get("/demo/echo/", HTTP_ORIGIN="https://other.example.com")
    finally:
        signal.disconnect(allow_partner)
    assert allowed["Access-Control-Allow-Origin"] == "https://partner.example.com"
    assert not refused.has_header("Access-Control-Allow-Origin")


def test_pathological_regex_takes_linear_time(client, settings):
    """An Origin crafted against ^(a+)+$ would take ages in a backtracking engine."""
    settings.CORS_ALLOWED_ORIGIN_REGEXES = [r"^(https://a+)+\.example\.com$"]
    hostile = "https://" + "a" * 2000 + "!"
    started = time.perf_counter()
    response = client.get("/demo/echo/", HTTP_ORIGIN=hostile)
    elapsed = time.perf_counter() - started
    assert not response.has_header("Access-Control-Allow-Origin")
    print(f"pathological origin answered in {elapsed * 1000:.1f} ms")
    assert type(compile_origin_regex(r"^(https://a+)+\.example\.com$")).__module__.startswith("re2")


def test_receiver_from_the_corsheaders_readme_survives_a_request_without_origin(client, settings):
    """Its README's receiver reads request.headers["origin"]: it must not be asked without one."""
    settings.CORS_ALLOWED_ORIGINS = []

    def cors_allow_mysites(sender, request, **kwargs):
        return request.headers["origin"] == "https://partner.example.com"

    corsheaders_signal.connect(cors_allow_mysites)
    try:
        response = client.get("/demo/echo/")
        allowed = client.get("/demo/echo/", HTTP_ORIGIN="https://partner.example.com")
    finally:
        corsheaders_signal.disconnect(cors_allow_mysites)
    assert response.status_code == 200
    assert allowed["Access-Control-Allow-Origin"] == "https://partner.example.com"


def test_a_receiver_that_raises_does_not_break_the_request(client, settings):
    settings.CORS_ALLOWED_ORIGINS = []

    def broken(sender, request, **kwargs):
        raise RuntimeError("boom")

    signals.check_request_enabled.connect(broken)
    try:
        response = client.get("/demo/echo/", HTTP_ORIGIN="https://partner.example.com")
    finally:
        signals.check_request_enabled.disconnect(broken)
    assert response.status_code == 200
    assert not response.has_header("Access-Control-Allow-Origin")
