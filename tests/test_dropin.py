"""django-cors-headers' settings keep their meaning under corsadmin's middleware."""

import itertools
import random
import re
import time

import pytest
from corsheaders.middleware import CorsMiddleware as CorsHeadersMiddleware
from corsheaders.signals import check_request_enabled as corsheaders_signal
from django.http import HttpResponse
from django.test import Client, RequestFactory, override_settings

from corsadmin import signals
from corsadmin.middleware import CorsMiddleware
from corsadmin.models import AllowedOrigin, Policy
from corsadmin.settings_policy import compile_origin_regex

from .covering import pairwise, uncovered_pairs
from .twin_requests import PATHS as TWINS
from .twin_requests import allow_origin, pinned, send  # noqa: F401  (pinned is a fixture)

PREFLIGHT_HEADERS = {"Access-Control-Request-Method": "PUT"}

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def seeded_default_only():
    """The database as ``migrate`` leaves it: the ``default`` policy (``^/``), no entry."""
    Policy.objects.exclude(name="default").delete()
    assert list(Policy.objects.values_list("name", "url_regex", "origins")) == [("default", "^/", None)]


def with_seeded_default(index: int) -> bool:
    """Whether the index-th setting of the table runs with the seeded ``default`` (two in
    three; the others with no database policy at all). Not a factor of the product's inner
    dimensions (urls-regex, private network: 4), so both states meet every combination."""
    return index % 3 != 0


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
# Outside CORS_URLS_REGEX too: another path, and one whose view sets its own Vary (README,
# "Migrating": the seeded default, which allows nothing, covers nothing).
PATHS = ["/api/x", "/api/vary", "/other", "/other/vary"]
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
    if not with_seeded_default(index):
        Policy.objects.all().delete()
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


# --- the whole site, outside the settings' paths -------------------------------------------
# Sites with CORS_URLS_REGEX, through every middleware of the demo site (the URLconf, the
# admin, CSRF, sessions), with the seeded default or no database policy: requests to paths
# the settings do not cover (another path the app 404s, the admin login whose view varies on
# Cookie, a redirect) and to one they do. The middleware is the only difference.
SITES = {
    "exact": {"CORS_ALLOWED_ORIGINS": ["https://app.example.com"], "CORS_URLS_REGEX": r"^/api/"},
    "regex-credentials": {
        "CORS_ALLOWED_ORIGIN_REGEXES": [r"^https://\w+\.example\.com$"],
        "CORS_ALLOW_CREDENTIALS": True,
        "CORS_URLS_REGEX": r"^/api/.*$",
    },
    "allow-all": {"CORS_ALLOW_ALL_ORIGINS": True, "CORS_URLS_REGEX": r"^/api/"},
    "lists-private-network": {
        "CORS_ALLOWED_ORIGINS": ["https://app.example.com"],
        "CORS_ALLOW_METHODS": ["GET"],
        "CORS_ALLOW_HEADERS": ["x-custom"],
        "CORS_EXPOSE_HEADERS": ["X-Total"],
        "CORS_PREFLIGHT_MAX_AGE": 0,
        "CORS_ALLOW_PRIVATE_NETWORK": True,
        "CORS_URLS_REGEX": r"^/api/v1/",
    },
}
SITE_DIMENSIONS = {
    "site": list(SITES),
    "seeded": [True, False],
    "path": ["/other/", "/admin/login/", "/", "/api/v1/nowhere/", "/static/nowhere.css"],
    "origin": [None, "https://app.example.com", "https://evil.example.net"],
    "shape": ["GET", "POST", "OPTIONS", "preflight", "preflight-private"],
}
SITE_ROWS = pairwise(SITE_DIMENSIONS, seed=21)
SITE_FULL_PRODUCT = [
    dict(zip(SITE_DIMENSIONS, values, strict=True)) for values in itertools.product(*SITE_DIMENSIONS.values())
]
SHAPES = {
    "GET": ("GET", {}),
    "POST": ("POST", {}),
    "OPTIONS": ("OPTIONS", {}),
    "preflight": ("OPTIONS", PREFLIGHT),
    "preflight-private": ("OPTIONS", PREFLIGHT | PRIVATE),
}
TOKEN = re.compile(rb"[A-Za-z0-9]{64}")  # a CSRF token in a form: new on every response
MIDDLEWARES = ("corsheaders.middleware.CorsMiddleware", "corsadmin.middleware.CorsMiddleware")


@pytest.fixture
def site_clients(settings):
    """A test client per CORS middleware, each with the demo site's whole chain in place of
    corsadmin's (loaded once: a chain is built at a client's first request)."""
    ours = list(settings.MIDDLEWARE)
    clients = {}
    for middleware in MIDDLEWARES:
        settings.MIDDLEWARE = [middleware if name == MIDDLEWARES[1] else name for name in ours]
        # CSRF enforced, as on a real site: a cross-origin POST without a token is a 403.
        clients[middleware] = Client(enforce_csrf_checks=True, raise_request_exception=False)
        clients[middleware].get("/other/")  # the first request loads the chain and the URLconf
    settings.MIDDLEWARE = ours
    return clients


def site_observed(client: Client, row) -> tuple:
    """Status, headers, cookies (names and attributes), body (form tokens masked) and
    ``request._cors_enabled`` of one request through the whole site; times (``Expires``,
    a cookie's) as the same mark."""
    method, extra = SHAPES[row["shape"]]
    meta = dict(extra) if row["origin"] is None else {**extra, "HTTP_ORIGIN": row["origin"]}
    client.cookies.clear()
    response = client.generic(method, row["path"], **meta)
    headers = {name.lower(): value for name, value in response.items()}
    if "expires" in headers:
        headers["expires"] = "(time)"
    cookies = {
        name: sorted((key, "(time)" if key == "expires" else value) for key, value in morsel.items() if value)
        for name, morsel in response.cookies.items()
    }
    return (
        response.status_code,
        headers,
        cookies,
        TOKEN.sub(b"T", response.content),
        getattr(response.wsgi_request, "_cors_enabled", MISSING),
    )


@pytest.fixture
def site_rows(request):
    """The pairwise design; every row of the product with ``--dropin-full``."""
    if request.config.getoption("dropin_full"):
        return SITE_FULL_PRODUCT
    return SITE_ROWS


def test_same_response_as_django_cors_headers_outside_the_settings_paths(site_clients, site_rows):
    mismatches = []
    by_site = sorted(site_rows, key=lambda row: (row["site"], not row["seeded"]))  # a load per site
    for (site, seeded), rows in itertools.groupby(by_site, lambda row: (row["site"], row["seeded"])):
        if not seeded:
            Policy.objects.all().delete()
        with override_settings(**SITES[site]):
            for row in rows:
                theirs, ours = (site_observed(site_clients[middleware], row) for middleware in MIDDLEWARES)
                if theirs != ours:
                    mismatches.append((row, theirs, ours))
        if not seeded:
            Policy.objects.create(name="default", url_regex="^/")  # as migrate creates it
    assert mismatches == []


def test_the_site_rows_cover_every_pair():
    assert uncovered_pairs(SITE_ROWS, SITE_DIMENSIONS, lambda row: True) == set()
    assert len(SITE_ROWS) < len(SITE_FULL_PRODUCT) / 10


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
    api = Policy.objects.create(name="api", url_regex="^/api/")
    AllowedOrigin.objects.create(origin="https://app.example.com", policy=api)
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


@pytest.mark.parametrize(
    "values",
    [{"CORS_URLS_REGEX": r"^/api/"}, {}, {"CORS_ALLOWED_ORIGINS": ["https://app.example.com"]}],
    ids=["urls-regex-only", "no-setting", "with-origins"],
)
def test_same_response_as_django_cors_headers_with_a_receiver(values, settings):
    """A site that enables CORS with a check_request_enabled receiver, with the seeded default:
    paths CORS_URLS_REGEX matches are covered whatever the receiver answers; others only when
    it says yes."""
    for name, value in values.items():
        setattr(settings, name, value)

    def partner_only(sender, request, **kwargs):
        return request.headers.get("Origin") == "https://partner.example.com"

    rf = RequestFactory()
    mismatches = []
    corsheaders_signal.connect(partner_only)
    try:
        for origin, path, (method, extra) in itertools.product(
            [None, "https://partner.example.com", "https://evil.example.net"],
            ["/api/x", "/other", "/other/vary"],
            [("GET", {}), ("OPTIONS", PREFLIGHT), ("OPTIONS", {})],
        ):
            meta = dict(extra) if origin is None else {**extra, "HTTP_ORIGIN": origin}
            theirs = observed(CorsHeadersMiddleware, rf.generic(method, path, **meta))
            ours = observed(CorsMiddleware, rf.generic(method, path, **meta))
            if ours != theirs:
                mismatches.append(((origin, method, path, sorted(extra)), theirs, ours))
    finally:
        corsheaders_signal.disconnect(partner_only)
    assert mismatches == []


@pytest.mark.parametrize("twin", TWINS)
def test_a_preflight_no_receiver_enables_is_answered_where_the_settings_cover(twin, pinned, settings):  # noqa: F811
    settings.CORS_URLS_REGEX = r"^/api/"
    pinned()

    def no_one(sender, request, **kwargs):
        return False

    signals.check_request_enabled.connect(no_one)
    try:
        inside, outside = (
            send(twin, "https://evil.example.net", path, method="OPTIONS", headers=PREFLIGHT_HEADERS)
            for path in ("/api/x", "/other")
        )
    finally:
        signals.check_request_enabled.disconnect(no_one)
    assert [(r.status_code, r.content, r.get("Vary"), allow_origin(r)) for r in (inside, outside)] == [
        (200, b"", "origin", None),
        (200, b"ok", None, None),  # the view's own answer
    ]


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
