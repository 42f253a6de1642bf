"""Fuzzing the middleware through Django's own WSGI and ASGI handlers.

No test client in between: ``WSGIHandler`` gets raw environ dicts and ``ASGIHandler``
a raw scope with ``receive``/``send``, so the requests can be what no client library
would send: huge, non-UTF-8, with control characters, repeated ``Origin`` headers
(two headers in ASGI, a comma-joined value in WSGI as servers join them), decoy
headers (``Referer``, ``X-Origin``, ``X-Forwarded-*``, ``Host``) carrying listed
origins, odd methods and preflight headers.

For every request: no 5xx; ``Access-Control-*`` headers exactly as the reference of
tests/test_properties.py says (none for an unlisted origin, the request's own
origin byte for byte or ``*`` otherwise); no CR, LF or NUL in any header;
``Vary: Origin``; and a time bounded relative to a baseline measured in the same
test (a slow request is re-timed before it fails, so only a reproducible slowness
counts).
"""

from __future__ import annotations

import asyncio
import io
import math
import statistics
import time
from collections.abc import Callable

import pytest
from asgiref.sync import async_to_sync
from django.core.handlers.asgi import ASGIHandler
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import event, given, note
from hypothesis import strategies as st

from corsadmin.models import AllowedOrigin, Policy, RefusedOrigin
from corsadmin.refresh import holder
from corsadmin.telemetry import recorder

from .hypothesis_profiles import profile
from .test_properties import FOREVER, PolicySpec, origins_for, reference_decide

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("manual_telemetry")]

ECHO = "/demo/echo/"
MAX_ORIGIN_LENGTH = 2048  # corsadmin.middleware: a longer Origin is ignored
SLOWER_THAN_BASELINE = 100  # the generous bound: this many times the median of plain requests (per 10 kB)

SPECS = [
    PolicySpec(
        "default",
        "^/",
        0,
        False,
        False,
        tuple(
            (text, FOREVER)
            for text in (
                "https://app.example.com",
                "https://*.example.org",
                "http://localhost:*",
                "https://*.example.net:8443",
                "null",
            )
        ),
    ),
    PolicySpec(
        "credentials",
        "^/demo/",
        10,
        False,
        True,
        (("https://secure.example.com", FOREVER), ("https://*.secure.example.com:*", FOREVER)),
    ),
    PolicySpec("public", "^/public/", 20, True, False, ()),
]
LISTED = [text for spec in SPECS for text, _ in spec.entries]


@pytest.fixture
def listed(settings):
    """The allow-list above, in the database, loaded once: the fuzzed requests never refresh it."""
    settings.CORSADMIN = {**settings.CORSADMIN, "REFRESH_INTERVAL": 3600}
    Policy.objects.all().delete()
    for spec in SPECS:
        policy = Policy.objects.create(
            name=spec.name,
            url_regex=spec.url_regex,
            priority=spec.priority,
            allow_all_origins=spec.allow_all,
            allow_credentials=spec.credentials,
        )
        for text, _ in spec.entries:
            AllowedOrigin.objects.create(policy=policy, origin=text)
    holder.reset()
    holder.get()
    # Django's test client does the same: closing "old" connections would end the test's transaction.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


# --- the two handlers, driven raw -----------------------------------------------------------


def latin1(text: str) -> str:
    """A header or path as a WSGI server hands it over: the UTF-8 bytes read as latin-1."""
    return text.encode("utf-8", "surrogatepass").decode("latin-1")


def wsgi_call(handler: WSGIHandler, request: dict) -> tuple[int, list[tuple[str, str]], str | None]:
    """One request; returns the status, the headers and the Origin value Django saw."""
    environ = {
        "REQUEST_METHOD": request["method"],
        "SCRIPT_NAME": "",
        "PATH_INFO": latin1(request["path"]),
        "QUERY_STRING": latin1(request["query"]),
        "SERVER_NAME": "testserver",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "CONTENT_LENGTH": "0",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(b""),
        "wsgi.errors": io.StringIO(),
        "wsgi.multithread": False,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }
    joined: dict[str, list[str]] = {}
    for name, value in request["headers"]:
        joined.setdefault("HTTP_" + name.upper().replace("-", "_"), []).append(latin1(value))
    for key, values in joined.items():
        environ[key] = ",".join(values)  # what servers do with a repeated header
    captured = {}

    def start_response(status, headers, exc_info=None):
        captured["status"], captured["headers"] = status, headers

    result = handler(environ, start_response)
    try:
        b"".join(result)
    finally:
        getattr(result, "close", lambda: None)()
    return int(captured["status"].split()[0]), captured["headers"], environ.get("HTTP_ORIGIN")


async def _asgi_call(handler: ASGIHandler, request: dict) -> tuple[int, list[tuple[str, str]], str | None]:
    headers = [
        (name.lower().encode("latin-1"), value.encode("utf-8", "surrogatepass"))
        for name, value in request["headers"]
    ]
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": request["method"],
        "scheme": "http",
        "path": request["path"],
        "raw_path": request["path"].encode("utf-8", "surrogatepass"),
        "query_string": request["query"].encode("utf-8", "surrogatepass"),
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }
    received = False

    async def receive():
        nonlocal received
        if not received:
            received = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await asyncio.Event().wait()  # the client stays connected; Django cancels this wait
        return {"type": "http.disconnect"}

    messages = []

    async def send(message):
        messages.append(message)

    await handler(scope, receive, send)
    start = messages[0]
    assert start["type"] == "http.response.start"
    answer = [(name.decode("latin-1"), value.decode("latin-1")) for name, value in start["headers"]]
    origins = [value.decode("latin-1") for name, value in headers if name == b"origin"]
    return start["status"], answer, ",".join(origins) if origins else None


def asgi_call(handler: ASGIHandler, request: dict) -> tuple[int, list[tuple[str, str]], str | None]:
    # async_to_sync: the sync view runs back in this thread, on the test's database connection.
    return async_to_sync(_asgi_call)(handler, request)


# --- what to send -----------------------------------------------------------------------------

HUGE = st.builds(
    lambda unit, times: unit * times,
    st.sampled_from(["a", "a.", "é", "%00", "\x00", "\r\n", "https://a.example.org", "/.."]),
    st.sampled_from([1000, MAX_ORIGIN_LENGTH // 2 - 10, MAX_ORIGIN_LENGTH + 1, 20000, 100000]),
)
wild_text = st.text(max_size=60) | st.binary(max_size=60).map(lambda raw: raw.decode("latin-1"))


@st.composite
def origin_values(draw: st.DrawFn) -> list[str]:
    """The Origin header(s): usually one, sometimes none, two, or huge."""
    kind = draw(st.sampled_from(["one"] * 6 + ["none", "two", "huge", "many-labels"]))
    event(f"origin: {kind}")
    if kind == "none":
        return []
    if kind == "huge":
        return [draw(HUGE)]
    if kind == "many-labels":
        return ["https://" + "a." * draw(st.integers(100, 1010)) + "example.org"]
    one = draw(origins_for(LISTED) | wild_text)
    if kind == "two":
        return [one, draw(st.sampled_from(LISTED) | origins_for(LISTED))]
    return [one]


paths = st.one_of(
    st.just(ECHO),
    st.just(ECHO),
    st.just("/public/x"),
    st.sampled_from(
        ["/\x00/x", "/a\x00b", "/\r\n/x", "/é/x", "/%00/x", "//", "/" + "\x00" * 150]
    ),  # as servers decode %00
    st.builds(lambda tail: ECHO + tail, wild_text),
    st.builds(lambda tail: "/" + tail, wild_text),
    HUGE.map(lambda text: "/" + text),
).filter(lambda path: path != "/demo/error/")  # it raises by design


def optional(strategy):
    return st.none() | strategy


@st.composite
def requests(draw: st.DrawFn) -> dict:
    headers = [("Origin", value) for value in draw(origin_values())]
    method = draw(
        st.sampled_from(["GET", "GET", "POST", "OPTIONS", "OPTIONS", "PUT", "HEAD", "options", "FOO"])
    )
    for name, values in (
        ("Access-Control-Request-Method", st.sampled_from(["PUT", "GET", "", "put", "G\r\nET"]) | wild_text),
        (
            "Access-Control-Request-Headers",
            st.sampled_from(["content-type", "x-a, x-b", ""]) | wild_text | HUGE,
        ),
        ("Access-Control-Request-Private-Network", st.sampled_from(["true", "TRUE", "1"])),
    ):
        value = draw(optional(values))
        if value is not None:
            headers.append((name, value))
    decoy = draw(st.sampled_from(LISTED))
    for name in draw(
        st.lists(
            st.sampled_from(["Referer", "X-Origin", "X-Forwarded-Host", "X-Forwarded-Proto"]), unique=True
        )
    ):
        headers.append((name, decoy))
    headers.append(
        ("Host", draw(st.sampled_from(["testserver", "app.example.com", "secure.example.com:443"])))
    )
    return {
        "method": method,
        "path": draw(paths),
        "query": draw(st.sampled_from(["", "a=1"]) | wild_text),
        "headers": headers,
    }


def plain_request() -> dict:
    return {
        "method": "GET",
        "path": ECHO,
        "query": "",
        "headers": [("Origin", "https://app.example.com"), ("Host", "testserver")],
    }


# --- the checks ----------------------------------------------------------------------------------


def baseline(call: Callable[[dict], tuple], runs: int = 21) -> float:
    """The median time of a plain allowed request through this handler, after a warm-up."""
    for _ in range(5):
        call(plain_request())
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        call(plain_request())
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def size(request: dict) -> int:
    return len(request["path"]) + len(request["query"]) + sum(len(value) for _, value in request["headers"])


def timed(call: Callable[[dict], tuple], request: dict, base: float) -> tuple:
    """Call, within SLOWER_THAN_BASELINE times the baseline (more for a larger request, linearly).

    A quadratic or exponential path (a backtracking regex, a label walk gone wrong) blows
    through that; a one-off stall does not fail the test: a slow call is re-timed, and
    if it stays slow the baseline is measured again (the machine may have got busier)
    before one last try. The quickest time counts. (Found necessary by the long run: a
    2 ms request once took 357 ms on a busy machine.)
    """
    best, answer = float("inf"), None
    for attempt in range(4):
        if attempt == 3:
            base = max(base, baseline(call, runs=7))
        bound = SLOWER_THAN_BASELINE * base * (1 + size(request) / 10_000)
        started = time.perf_counter()
        answer = call(request)
        best = min(best, time.perf_counter() - started)
        if best <= bound or (attempt and best > 10 * bound):  # in time, or twice far too slow: no stall
            break
    assert best <= bound, (
        f"{best * 1000:.1f} ms, over the bound of {bound * 1000:.1f} ms ({base * 1000:.2f} ms baseline)"
    )
    ratio = best / base
    event(
        f"time: within {next(n for n in (2, 5, 10, 20, 50, 100, 1000, math.inf) if ratio <= n)}x the baseline"
    )
    return answer


def check(request: dict, status: int, headers: list[tuple[str, str]], seen_origin: str | None) -> None:
    note(f"{request['method']!r} {request['path'][:200]!r} -> {status}")
    path = request["path"]
    assert status < 500, f"{status} for {request!r}"[:2000]
    for name, value in headers:
        assert not any(char in name + value for char in "\r\n\x00"), (name, value)
    cors = {name.lower(): value for name, value in headers if name.lower().startswith("access-control-")}
    vary = ",".join(value for name, value in headers if name.lower() == "vary")
    assert "origin" in [item.strip().lower() for item in vary.split(",")]
    origin = seen_origin if seen_origin is not None and len(seen_origin) <= MAX_ORIGIN_LENGTH else None
    expected = reference_decide(SPECS, origin, path, time.time())
    if request["method"].upper() == "OPTIONS" and any(
        name == "Access-Control-Request-Method" for name, _ in request["headers"]
    ):
        assert status == 200  # a preflight on a covered path, allowed or not
    if expected.policy is None:
        assert cors == {}, f"CORS headers for an unlisted origin {origin!r}: {cors}"
        event("refused")
        return
    event(f"allowed by policy {expected.policy.name}")
    spec = expected.policy
    assert cors["access-control-allow-origin"] == ("*" if spec.allow_all else origin)
    assert cors.get("access-control-allow-credentials") == ("true" if spec.credentials else None)


@profile(examples=500)
@given(request=requests())
def test_wsgi_handler_survives_any_request(listed, wsgi, request):
    call, base = wsgi
    status, headers, seen = timed(call, request, base)
    check(request, status, headers, seen)


@profile(examples=300)
@given(request=requests())
def test_asgi_handler_survives_any_request(listed, asgi, request):
    call, base = asgi
    status, headers, seen = timed(call, request, base)
    check(request, status, headers, seen)


@pytest.fixture
def wsgi(listed):
    handler = WSGIHandler()

    def call(request):
        return wsgi_call(handler, request)

    return call, baseline(call)


@pytest.fixture
def asgi(listed):
    handler = ASGIHandler()

    def call(request):
        return asgi_call(handler, request)

    return call, baseline(call)


@pytest.mark.parametrize("kind", ["wsgi", "asgi"])
def test_repeated_origin_headers_are_refused(kind, request):
    """Two Origin headers (one listed) reach Django as one comma-joined value: never allowed."""
    call, _ = request.getfixturevalue(kind)
    for first, second in [
        ("https://app.example.com", "https://evil.net"),
        ("https://evil.net", "https://app.example.com"),
        ("https://app.example.com", "https://app.example.com"),
    ]:
        sent = {**plain_request(), "headers": [("Origin", first), ("Origin", second), ("Host", "testserver")]}
        status, headers, seen = call(sent)
        assert seen == f"{first},{second}"
        assert status == 200
        assert not [name for name, _ in headers if name.lower().startswith("access-control-")]


@pytest.mark.parametrize("kind", ["wsgi", "asgi"])
def test_plain_request_is_allowed_through_the_raw_handlers(kind, request):
    """The harness itself: a listed origin does get its headers (so the fuzz checks are not vacuous)."""
    call, _ = request.getfixturevalue(kind)
    status, headers, _ = call(plain_request())
    assert status == 200
    assert ("Access-Control-Allow-Origin", "https://app.example.com") in headers


# --- ReDoS: django-cors-headers' regex settings, run in RE2 ------------------------------------

# Catastrophic in a backtracking engine: "https://" + "a" * 24 + "!" takes a second in ``re``
# (and doubles with each "a": the strategy stops at 24 so a regression fails, not hangs).
HOSTILE_REGEXES = [r"^https://([a-z0-9]+)+\.example\.com$", r"^https://(a|a)+\.example\.com$"]


def hostile_regexes_allow(origin: str) -> bool:
    """What the two regexes above mean, written plainly."""
    if not origin.startswith("https://") or not origin.endswith(".example.com"):
        return False
    middle = origin[len("https://") : -len(".example.com")]
    return middle != "" and all(char in "abcdefghijklmnopqrstuvwxyz0123456789" for char in middle)


@pytest.fixture
def hostile_regexes(settings, listed):
    settings.CORS_ALLOWED_ORIGIN_REGEXES = HOSTILE_REGEXES
    holder.reset()
    holder.get()


hostile_origins = st.builds(
    lambda middle, end: "https://" + middle + end,
    st.text(alphabet="a1.", min_size=1, max_size=24) | st.integers(1, 24).map(lambda n: "a" * n),
    st.sampled_from(["!", ".example.com", ".example.co", ".example.com!", "", "\n", ".example.com\n"]),
)


@profile(examples=60)
@given(origin=hostile_origins)
def test_settings_regexes_answer_in_linear_time(hostile_regexes, wsgi, origin):
    call, base = wsgi
    request = {**plain_request(), "headers": [("Origin", origin), ("Host", "testserver")]}
    status, headers, _ = timed(call, request, base)
    assert status == 200
    allow_origin = dict(headers).get("Access-Control-Allow-Origin")
    assert allow_origin == (origin if hostile_regexes_allow(origin) else None)
    event("allowed" if allow_origin else "refused")


# --- refused-origin telemetry of fuzzed requests --------------------------------------------------


@profile(examples=100)
@given(request=requests())
def test_refusal_telemetry_of_fuzzed_requests_can_be_written(listed, wsgi, request):
    """What a fuzzed request leaves in telemetry (its origin, its first path segment) can be stored.

    Found here on PostgreSQL: a path with NUL ('%00') made the whole batch fail to write.
    """
    call, _ = wsgi
    call(request)
    recorder.flush()
    for origin, prefix in RefusedOrigin.objects.values_list("origin", "path_prefix"):
        assert origin.isascii() and origin.isprintable() and "\x00" not in prefix


@pytest.mark.parametrize(
    ("path", "prefix"),
    [
        ("/\x00/x", "/\\x00/"),
        ("/a\x00b", "/a\\x00b"),
        ("/" + "\x00" * 150, ("/" + "\\x00" * 150)[:100]),
        ("/api/x", "/api/"),
    ],
)
def test_telemetry_path_prefix_has_no_nul(path, prefix):
    from corsadmin.telemetry import path_prefix

    assert path_prefix(path) == prefix
