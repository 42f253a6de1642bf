"""django-cors-headers' settings keep their meaning under corsadmin's middleware."""

import itertools
import random
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

from .covering import pairwise, uncovered_pairs

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def no_database_policies():
    Policy.objects.all().delete()


def view(request):
    return HttpResponse("ok")


MISSING = object()


def parity_view(request):
    response = HttpResponse("ok")
    if request.path_info.endswith("/vary"):
        response["Vary"] = "Cookie"  # a view's own Vary, which both middlewares extend
    return response


def observed(middleware_class, request):
    """Everything a client or a later view can see: status, every header's exact value (by
    name: field names are case-insensitive, and HTTP/2 lower-cases them), body, and the
    attribute django-cors-headers sets on the request."""
    response = middleware_class(parity_view)(request)
    return (
        response.status_code,
        {name.lower(): value for name, value in response.items()},
        response.content,
        getattr(request, "_cors_enabled", MISSING),
    )


# The generated table: every django-cors-headers setting (old aliases included), crossed
# with the settings that change the headers of an allowed response.
GRANTING = {
    "exact": {"CORS_ALLOWED_ORIGINS": ["https://app.example.com", "http://localhost:3000"]},
    "exact-tuple-alias": {"CORS_ORIGIN_WHITELIST": ("https://app.example.com",)},
    "null-and-file": {"CORS_ALLOWED_ORIGINS": ["null", "file://"]},
    "regex": {"CORS_ALLOWED_ORIGIN_REGEXES": [r"^https://\w+\.example\.com$"]},
    "compiled-regex": {"CORS_ALLOWED_ORIGIN_REGEXES": [re.compile(r"^https://\w+\.example\.org$")]},
    "regex-alias": {"CORS_ORIGIN_REGEX_WHITELIST": [r"^https://\w+\.example\.com$"]},
    "exact-and-regex": {
        "CORS_ALLOWED_ORIGINS": ["http://localhost:3000"],
        "CORS_ALLOWED_ORIGIN_REGEXES": [r"^https://\w+\.example\.com$"],
    },
    "allow-all": {"CORS_ALLOW_ALL_ORIGINS": True},
    "allow-all-alias": {"CORS_ORIGIN_ALLOW_ALL": True},
    "allow-all-and-list": {
        "CORS_ALLOW_ALL_ORIGINS": True,
        "CORS_ALLOWED_ORIGINS": ["https://app.example.com"],
    },
    "allow-all-off-and-list": {
        "CORS_ALLOW_ALL_ORIGINS": False,
        "CORS_ALLOWED_ORIGINS": ["https://app.example.com"],
    },
}
CREDENTIALS = {
    "": {},
    "credentials-off": {"CORS_ALLOW_CREDENTIALS": False},
    "credentials": {"CORS_ALLOW_CREDENTIALS": True},
}
OPTIONS = {
    "": {},
    "custom-lists-no-max-age": {
        "CORS_ALLOW_METHODS": ["GET", "POST"],
        "CORS_ALLOW_HEADERS": ["x-custom"],
        "CORS_EXPOSE_HEADERS": ["X-Request-Id", "X-Total"],
        "CORS_PREFLIGHT_MAX_AGE": 0,
    },
    "tuples-max-age": {
        "CORS_ALLOW_METHODS": ("PUT",),
        "CORS_ALLOW_HEADERS": (),
        "CORS_EXPOSE_HEADERS": ("X-One",),
        "CORS_PREFLIGHT_MAX_AGE": 600,
    },
}
URLS = {"": {}, "urls-regex": {"CORS_URLS_REGEX": r"^/api/.*$"}}
PRIVATE_NETWORK = {"": {}, "private-network": {"CORS_ALLOW_PRIVATE_NETWORK": True}}


def generated_settings():
    tables = (GRANTING, CREDENTIALS, OPTIONS, URLS, PRIVATE_NETWORK)
    for index, parts in enumerate(itertools.product(*tables)):
        values = {}
        for table, key in zip(tables, parts, strict=True):
            values.update(table[key])
        yield pytest.param(index, values, id="+".join(part for part in parts if part))


SETTINGS = list(generated_settings())


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
    "file:garbage",
    "*",
    "https://a.example.com\x01",
    "https://" + "a" * 2050 + ".example.com",
]
# README, "Differences from django-cors-headers": origins corsadmin never answers.
UNSAFE_ORIGINS = {"*", "https://a.example.com\x01", "https://" + "a" * 2050 + ".example.com"}
PATHS = ["/api/x", "/api/vary", "/other"]
METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
PREFLIGHT = {"HTTP_ACCESS_CONTROL_REQUEST_METHOD": "PUT", "HTTP_ACCESS_CONTROL_REQUEST_HEADERS": "x-custom"}
PRIVATE = {"HTTP_ACCESS_CONTROL_REQUEST_PRIVATE_NETWORK": "true"}


def request_shapes():
    """(method, extra META): every method plain and asking for the private network; OPTIONS
    also as a preflight, with and without the private-network header."""
    for method in METHODS:
        yield method, {}
        yield method, PRIVATE
    yield "OPTIONS", PREFLIGHT
    yield "OPTIONS", PREFLIGHT | PRIVATE


Request = tuple[str | None, str, tuple[str, dict[str, str]]]  # origin, path, (method, extra META)
FULL_PRODUCT: list[Request] = list(itertools.product(ORIGINS, PATHS, request_shapes()))
REQUEST_DIMENSIONS = {
    "origin": ORIGINS,
    "path": PATHS,
    "method": METHODS,
    "private": [False, True],
    "preflight": [False, True],
}


def is_possible(row) -> bool:
    """A preflight is an OPTIONS request."""
    return not (row.get("preflight") and row.get("method", "OPTIONS") != "OPTIONS")


def as_request(row) -> Request:
    extra = (PREFLIGHT if row["preflight"] else {}) | (PRIVATE if row["private"] else {})
    return row["origin"], row["path"], (row["method"], extra)


PAIRWISE = pairwise(REQUEST_DIMENSIONS, is_possible, seed=20)


def requests_for(index: int) -> list[Request]:
    """The requests tried under the index-th setting: the pairwise design, each dimension's
    values relabelled by a permutation seeded by the index (a relabelled covering design still
    covers every pair, and the settings between them try many more combinations), plus every
    len(SETTINGS)-th request of the full product, so that the table as a whole sends every
    request of the full product under at least one setting."""
    rng = random.Random(index)
    relabel = {
        name: dict(zip(values, rng.sample(values, len(values)), strict=True))
        for name, values in REQUEST_DIMENSIONS.items()
        if name not in ("method", "preflight")
    }
    plain = [m for m in METHODS if m != "OPTIONS"]  # OPTIONS keeps its label: preflights need it
    relabel["method"] = {**dict(zip(plain, rng.sample(plain, len(plain)), strict=True)), "OPTIONS": "OPTIONS"}
    relabel["preflight"] = {False: False, True: True}
    rows = [as_request({name: relabel[name][value] for name, value in row.items()}) for row in PAIRWISE]
    return rows + FULL_PRODUCT[index :: len(SETTINGS)]


@pytest.fixture
def request_space(request):
    """The covering design by default; every request with ``--dropin-full`` (DEVELOPERS.md)."""
    if request.config.getoption("dropin_full"):
        return lambda index: FULL_PRODUCT
    return requests_for


# With one of these listed, django-cors-headers (comparing only scheme and netloc) also
# allows every Origin of the same scheme without a host.
HOST_LESS = {"null": "garbage", "file://": "file:garbage"}


def is_known_difference(values, origin):
    """Deliberate differences, each listed in the README, where corsadmin refuses what
    django-cors-headers allows: host-less origins beside a listed "null" or "file://", and
    origins that cannot be echoed safely (a bare "*", control characters, over 2048 characters)."""
    listed = values.get("CORS_ALLOWED_ORIGINS", ())
    return origin in UNSAFE_ORIGINS or any(
        HOST_LESS[entry] == origin for entry in listed if entry in HOST_LESS
    )


def refused(observation):
    """An observation with every Access-Control-* header taken out: the same request, refused."""
    status, headers, content, enabled = observation
    kept = {name: value for name, value in headers.items() if not name.startswith("access-control-")}
    return status, kept, content, enabled


@pytest.mark.parametrize(("index", "values"), SETTINGS)
def test_same_response_as_django_cors_headers(index, values, settings, request_space):
    for name, value in values.items():
        setattr(settings, name, value)
    rf = RequestFactory()
    mismatches = []
    for origin, path, (method, extra) in request_space(index):
        meta = dict(extra) if origin is None else {**extra, "HTTP_ORIGIN": origin}
        theirs = observed(CorsHeadersMiddleware, rf.generic(method, path, **meta))
        ours = observed(CorsMiddleware, rf.generic(method, path, **meta))
        if is_known_difference(values, origin):
            theirs = refused(theirs)
        if ours != theirs:
            mismatches.append(((origin, method, path, sorted(extra)), theirs, ours))
    assert mismatches == []


def as_row(request: Request) -> dict:
    origin, path, (method, extra) = request
    return {
        "origin": origin,
        "path": path,
        "method": method,
        "private": "HTTP_ACCESS_CONTROL_REQUEST_PRIVATE_NETWORK" in extra,
        "preflight": "HTTP_ACCESS_CONTROL_REQUEST_METHOD" in extra,
    }


def test_each_setting_is_crossed_with_every_pair_of_request_values():
    for param in SETTINGS:
        rows = [as_row(r) for r in requests_for(param.values[0])]
        assert uncovered_pairs(rows, REQUEST_DIMENSIONS, is_possible) == set(), param.id


def test_the_table_sends_every_request_of_the_full_product():
    sent = {repr(r) for param in SETTINGS for r in requests_for(param.values[0])}
    assert sent == {repr(r) for r in FULL_PRODUCT}
    assert len(PAIRWISE) < len(FULL_PRODUCT) / 5


@pytest.mark.parametrize(
    ("listed", "origin"), [("null", "garbage"), ("null", "x"), ("file://", "file:garbage")]
)
def test_a_listed_host_less_origin_does_not_allow_others(listed, origin, settings):
    """The documented difference: django-cors-headers allows it, corsadmin does not."""
    settings.CORS_ALLOWED_ORIGINS = [listed]
    request = RequestFactory().get("/api/x", HTTP_ORIGIN=origin)
    assert CorsHeadersMiddleware(parity_view)(request)["Access-Control-Allow-Origin"] == origin
    assert not CorsMiddleware(parity_view)(request).has_header("Access-Control-Allow-Origin")


@pytest.mark.parametrize("origin", sorted(UNSAFE_ORIGINS), ids=["star", "control-character", "too-long"])
def test_an_origin_that_cannot_be_echoed_safely_gets_no_cors_headers(origin, settings):
    """The documented difference: django-cors-headers echoes it next to credentials."""
    settings.CORS_ALLOWED_ORIGIN_REGEXES = [r"^.*$"]
    settings.CORS_ALLOW_CREDENTIALS = True
    request = RequestFactory().get("/api/x", HTTP_ORIGIN=origin)
    assert CorsHeadersMiddleware(parity_view)(request)["Access-Control-Allow-Origin"] == origin
    assert not CorsMiddleware(parity_view)(request).has_header("Access-Control-Allow-Origin")


def test_vary_is_written_as_django_cors_headers_writes_it(settings):
    settings.CORS_ALLOWED_ORIGINS = ["https://app.example.com"]
    response = CorsMiddleware(parity_view)(
        RequestFactory().get("/api/x", HTTP_ORIGIN="https://app.example.com")
    )
    assert response["Vary"] == "origin"


def test_vary_extends_the_views_own_as_django_cors_headers_does(settings):
    settings.CORS_ALLOWED_ORIGINS = ["https://app.example.com"]
    response = CorsMiddleware(parity_view)(RequestFactory().get("/api/vary"))
    assert response["Vary"] == "Cookie, origin"


def test_private_network_allowed_on_a_request_that_is_not_a_preflight(settings):
    settings.CORS_ALLOWED_ORIGINS = ["https://app.example.com"]
    settings.CORS_ALLOW_PRIVATE_NETWORK = True
    request = RequestFactory().get("/api/x", HTTP_ORIGIN="https://app.example.com", **PRIVATE)
    assert CorsMiddleware(parity_view)(request)["Access-Control-Allow-Private-Network"] == "true"


def test_private_network_not_allowed_for_a_refused_origin(settings):
    settings.CORS_ALLOWED_ORIGINS = ["https://app.example.com"]
    settings.CORS_ALLOW_PRIVATE_NETWORK = True
    request = RequestFactory().get("/api/x", HTTP_ORIGIN="https://evil.example.net", **PRIVATE)
    assert not CorsMiddleware(parity_view)(request).has_header("Access-Control-Allow-Private-Network")


@pytest.mark.parametrize(("path", "enabled"), [("/api/x", True), ("/other", False)])
def test_request_cors_enabled_says_whether_the_path_is_covered(path, enabled, settings):
    settings.CORS_ALLOWED_ORIGINS = ["https://app.example.com"]
    settings.CORS_URLS_REGEX = r"^/api/"
    request = RequestFactory().get(path)
    CorsMiddleware(parity_view)(request)
    assert request._cors_enabled is enabled


@pytest.mark.django_db(transaction=True, serialized_rollback=True)  # the async refresh reads from a thread
async def test_request_cors_enabled_on_the_async_path(settings):
    settings.CORS_ALLOWED_ORIGINS = ["https://app.example.com"]
    settings.CORS_ALLOW_PRIVATE_NETWORK = True

    async def async_view(request):
        return HttpResponse("ok")

    request = RequestFactory().get("/api/x", HTTP_ORIGIN="https://app.example.com", **PRIVATE)
    response = await CorsMiddleware(async_view)(request)
    assert (request._cors_enabled, response["Vary"], response["Access-Control-Allow-Private-Network"]) == (
        True,
        "origin",
        "true",
    )


def test_database_policies_keep_vary_origin_capitalised(settings):
    Policy.objects.create(name="api", url_regex="^/api/")
    response = CorsMiddleware(parity_view)(
        RequestFactory().get("/api/x", HTTP_ORIGIN="https://evil.example.net")
    )
    assert response["Vary"] == "Origin"


def test_settings_are_reread_when_they_change(client, settings):
    settings.CORS_ALLOWED_ORIGINS = ["https://one.example.com"]
    assert client.get("/demo/echo/", HTTP_ORIGIN="https://one.example.com")[
        "Access-Control-Allow-Origin"
    ] == ("https://one.example.com")
    settings.CORS_ALLOWED_ORIGINS = ["https://two.example.com"]
    response = client.get("/demo/echo/", HTTP_ORIGIN="https://one.example.com")
    assert not response.has_header("Access-Control-Allow-Origin")


@pytest.mark.parametrize(
    "signal", [corsheaders_signal, signals.check_request_enabled], ids=["corsheaders", "corsadmin"]
)
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
