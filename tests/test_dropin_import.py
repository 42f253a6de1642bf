"""The migration path keeps every response: ``cors import-settings``, then removing exactly
the settings it says may be removed, answers every request as django-cors-headers did."""

import ast
import io
import itertools
import re

import pytest
from corsheaders.middleware import CorsMiddleware as CorsHeadersMiddleware
from django.core.checks import run_checks
from django.core.management import call_command
from django.test import RequestFactory

from corsadmin.middleware import CorsMiddleware
from corsadmin.models import Policy
from corsadmin.origins import split_request_origin
from corsadmin.protected import is_protected
from corsadmin.refresh import holder

from .test_dropin import observed, refused

pytestmark = pytest.mark.django_db

EXACT = ["https://app.example.com", "http://localhost:3000"]
REGEXES = [r"^https://\w+\.example\.com$"]
# The site of issue 19: every option that shapes an allowed response, beside regexes.
ISSUE_SITE = {
    "CORS_ALLOWED_ORIGINS": EXACT,
    "CORS_ALLOWED_ORIGIN_REGEXES": REGEXES,
    "CORS_URLS_REGEX": r"^/api/.*$",
    "CORS_ALLOW_CREDENTIALS": True,
    "CORS_EXPOSE_HEADERS": ["X-Request-Id"],
    "CORS_ALLOW_HEADERS": ["x-custom", "content-type"],
}
SITES = {
    "issue-19": ISSUE_SITE,
    "regexes": {"CORS_ALLOWED_ORIGIN_REGEXES": REGEXES},
    "regexes-alias-and-urls": {"CORS_ORIGIN_REGEX_WHITELIST": REGEXES, "CORS_URLS_REGEX": r"^/api/"},
    "regexes-credentials": {"CORS_ALLOWED_ORIGIN_REGEXES": REGEXES, "CORS_ALLOW_CREDENTIALS": True},
    "exact-and-regexes-lists": {
        "CORS_ALLOWED_ORIGINS": EXACT,
        "CORS_ALLOWED_ORIGIN_REGEXES": [re.compile(r"^https://\w+\.example\.org$")],
        "CORS_ALLOW_METHODS": ["GET", "PUT"],
        "CORS_ALLOW_HEADERS": ["x-custom"],
        "CORS_EXPOSE_HEADERS": ["X-Total"],
        "CORS_PREFLIGHT_MAX_AGE": 600,
    },
    "exact-everything": {**ISSUE_SITE, "CORS_ALLOWED_ORIGIN_REGEXES": []},
    "exact-urls-credentials": {
        "CORS_ALLOWED_ORIGINS": EXACT,
        "CORS_URLS_REGEX": r"^/api/",
        "CORS_ALLOW_CREDENTIALS": True,
    },
    "exact-with-unimportable": {
        "CORS_ORIGIN_WHITELIST": [*EXACT, "file://"],
        "CORS_ALLOW_CREDENTIALS": True,
        "CORS_URLS_REGEX": r"^/api/",
    },
    "allow-all-and-regexes": {
        "CORS_ALLOW_ALL_ORIGINS": True,
        "CORS_ALLOWED_ORIGIN_REGEXES": REGEXES,
        "CORS_EXPOSE_HEADERS": ["X-Request-Id"],
    },
    "private-network-and-regexes": {
        "CORS_ALLOWED_ORIGINS": EXACT,
        "CORS_ALLOWED_ORIGIN_REGEXES": REGEXES,
        "CORS_ALLOW_PRIVATE_NETWORK": True,
    },
}
ORIGINS = [
    None,
    "https://app.example.com",
    "http://localhost:3000",
    "https://a.example.com",
    "https://a.example.org",
    "https://evil.example.net",
    "null",
    "file://",
]
PATHS = ["/api/x", "/admin/", "/other"]
PRIVATE = {"HTTP_ACCESS_CONTROL_REQUEST_PRIVATE_NETWORK": "true"}
SHAPES = [
    ("GET", {}),
    ("POST", {}),
    (
        "OPTIONS",
        {"HTTP_ACCESS_CONTROL_REQUEST_METHOD": "PUT", "HTTP_ACCESS_CONTROL_REQUEST_HEADERS": "x-custom"},
    ),
    ("OPTIONS", {"HTTP_ACCESS_CONTROL_REQUEST_METHOD": "GET", **PRIVATE}),
    ("GET", PRIVATE),
]
REQUESTS = list(itertools.product(ORIGINS, PATHS, SHAPES))
REMOVABLE = re.compile(r"can be removed from settings\.py: (.+)$", re.MULTILINE)
KEEP_ONLY = re.compile(r"^Keep in settings\.py, only: (CORS_\w+) = (.+)$", re.MULTILINE)


# Lists of header field names, which are case-insensitive (RFC 9110, 5.1): database policies
# store header names in lower case and write ``Vary: Origin``, django-cors-headers writes
# them as the settings spell them and ``Vary: origin``.
FIELD_NAME_LISTS = ("vary", "access-control-allow-headers", "access-control-expose-headers")


def comparable(observation):
    status, headers, content, enabled = observation
    headers = {name: value.lower() if name in FIELD_NAME_LISTS else value for name, value in headers.items()}
    return status, headers, content, enabled


def responses(middleware_class):
    rf = RequestFactory()
    answers = {}
    for origin, path, (method, extra) in REQUESTS:
        meta = dict(extra) if origin is None else {**extra, "HTTP_ORIGIN": origin}
        answers[origin, path, method, tuple(sorted(extra))] = comparable(
            observed(middleware_class, rf.generic(method, path, **meta))
        )
    return answers


def expected(site, request, answer):
    """django-cors-headers' answer, less the differences the README lists ("Differences from
    django-cors-headers"): no credentialed answer on the admin; a database policy answers only
    an Origin a browser can send, and the private-network header on preflights only."""
    origin, path, method, extra = request
    status, headers, content, enabled = answer
    if "access-control-allow-credentials" in headers and is_protected(path):
        return refused(answer)
    decision = holder.get().decide(origin, path, method, "HTTP_ACCESS_CONTROL_REQUEST_METHOD" in extra)
    if decision.policy == "(settings)":
        return answer
    if origin not in (None, "null") and split_request_origin(origin) is None:
        return refused(answer)
    if "HTTP_ACCESS_CONTROL_REQUEST_METHOD" not in extra:
        headers = {k: v for k, v in headers.items() if k != "access-control-allow-private-network"}
    return status, headers, content, enabled


def follow_the_advice(output, settings):
    """Remove exactly the settings the command said may go; shorten the lists it said to shorten."""
    for line in REMOVABLE.findall(output):
        for name in line.split(", "):
            delattr(settings, name.strip())
    for name, value in KEEP_ONLY.findall(output):
        setattr(settings, name, ast.literal_eval(value))


@pytest.mark.parametrize("site", list(SITES.values()), ids=list(SITES))
def test_import_settings_then_removing_what_it_says_keeps_every_response(site, settings):
    for name, value in site.items():
        setattr(settings, name, value)
    before = responses(CorsHeadersMiddleware)
    Policy.objects.all().delete()
    Policy.objects.create(name="default", url_regex="^/")  # as after migrate
    out = io.StringIO()
    call_command("cors", "import-settings", stdout=out)
    follow_the_advice(out.getvalue(), settings)
    holder.reset()
    after = responses(CorsMiddleware)
    wanted = {request: expected(site, request, answer) for request, answer in before.items()}
    differing = [
        (request, wanted[request], after[request]) for request in before if wanted[request] != after[request]
    ]
    print(f"{len(differing)}/{len(before)} responses differed")
    shadowing = [
        m.msg for m in run_checks(tags=["database"], databases=["default"]) if m.id == "corsadmin.W009"
    ]
    assert (differing, shadowing) == ([], [])
