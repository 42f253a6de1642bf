"""The middleware's header rules, each run through the sync and the async request path.

Every case in ``CASES`` is one behaviour. ``test_sync`` sends it through Django's
test ``Client`` (WSGI handler, the middleware's sync path) and ``test_async``
through ``AsyncClient`` (ASGI handler, the async path); both assert the exact
status, the exact set of ``Access-Control-*`` headers and ``Vary``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from types import SimpleNamespace

import pytest
from asgiref.sync import sync_to_async
from django.utils import timezone

from corsadmin import snapshot as snapshot_module
from corsadmin.loader import SnapshotBuilder
from corsadmin.models import AllowedOrigin, Policy

from .cors_helpers import (
    APP,
    DEFAULT_HEADERS,
    DEFAULT_METHODS,
    ECHO,
    cors_headers,
    vary,
)

pytestmark = pytest.mark.usefixtures("manual_telemetry")

EVIL = "https://evil.example.net"
PREFLIGHT = {"Access-Control-Request-Method": "PUT", "Access-Control-Request-Headers": "content-type"}
PREFLIGHT_HEADERS = {
    "Access-Control-Allow-Origin": APP,
    "Access-Control-Allow-Methods": DEFAULT_METHODS,
    "Access-Control-Allow-Headers": DEFAULT_HEADERS,
    "Access-Control-Max-Age": "7200",
}


# --- set-ups (plain ORM, run before the request) --------------------------------


def change_default(**changes) -> None:
    policy = Policy.objects.get(name="default")
    for name, value in changes.items():
        setattr(policy, name, value)
    policy.save()


def listing(*origins: str, **policy_changes) -> Callable[[], None]:
    def setup() -> None:
        if policy_changes:
            change_default(**policy_changes)
        for origin in origins:
            AllowedOrigin.objects.create(origin=origin)

    return setup


OTHER = "https://other.example.com"


def disabled_entry() -> None:
    AllowedOrigin.objects.create(origin=APP, enabled=False)
    AllowedOrigin.objects.create(origin=OTHER)  # the policy allows something: it covers


def expired_entry() -> None:
    AllowedOrigin.objects.create(origin=APP, expires_at=timezone.now() - timedelta(seconds=1))
    AllowedOrigin.objects.create(origin=OTHER)  # the policy allows something: it covers


def only_disabled_and_expired_entries() -> None:
    AllowedOrigin.objects.create(origin=APP, enabled=False)
    AllowedOrigin.objects.create(origin=OTHER, expires_at=timezone.now() - timedelta(seconds=1))


def only_a_deny_entry() -> None:
    AllowedOrigin.objects.create(origin=EVIL, effect=AllowedOrigin.DENY)


def unexpired_entry() -> None:
    AllowedOrigin.objects.create(origin=APP, expires_at=timezone.now() + timedelta(hours=1))


def api_policy_first() -> None:
    """A credentialed policy for /demo/ tried before the default one; both list APP."""
    api = Policy.objects.create(name="api", url_regex="^/demo/", priority=10, allow_credentials=True)
    AllowedOrigin.objects.create(origin=APP, policy=api)
    AllowedOrigin.objects.create(origin=APP)


def two_policies_same_priority() -> None:
    for name in ("zulu", "alpha"):
        policy = Policy.objects.create(name=name, priority=5, expose_headers=[f"x-{name}"])
        AllowedOrigin.objects.create(origin=APP, policy=policy)


def higher_priority_without_the_origin() -> None:
    api = Policy.objects.create(name="api", priority=10, allow_credentials=True)
    AllowedOrigin.objects.create(origin="https://other.example.com", policy=api)
    AllowedOrigin.objects.create(origin=APP)


@dataclass(frozen=True)
class Case:
    setup: Callable[[], None]
    method: str = "GET"
    path: str = ECHO
    headers: dict[str, str] = field(default_factory=lambda: {"Origin": APP})
    status: int = 200
    cors: dict[str, str] = field(default_factory=dict)
    vary: bool = True
    view_called: bool | None = None
    csrf_checks: bool = False


ALLOWED = {"Access-Control-Allow-Origin": APP}

CASES: dict[str, Case] = {
    # exact origins
    "exact origin echoed": Case(listing(APP), cors=ALLOWED, view_called=True),
    "exact origin echoed on POST": Case(listing(APP), method="POST", cors=ALLOWED),
    "exact origin echoed on DELETE": Case(listing(APP), method="DELETE", cors=ALLOWED),
    "unlisted origin refused": Case(listing(APP), headers={"Origin": EVIL}),
    "no origin header: only Vary": Case(listing(APP), headers={}),
    # A policy that can allow nothing covers nothing (the seeded default until it has an entry).
    "nothing listed: covers nothing, no Vary": Case(listing(), vary=False),
    "only disabled or expired entries: covers nothing": Case(only_disabled_and_expired_entries, vary=False),
    "only a deny entry: covers nothing": Case(only_a_deny_entry, vary=False),
    "nothing listed: a preflight goes to the view": Case(
        listing(), method="OPTIONS", headers={"Origin": APP, **PREFLIGHT}, vary=False, view_called=True
    ),
    "subdomain wildcard echoes the origin": Case(
        listing("https://*.example.com"),
        headers={"Origin": "https://a.b.example.com"},
        cors={"Access-Control-Allow-Origin": "https://a.b.example.com"},
    ),
    "subdomain wildcard refuses its base": Case(
        listing("https://*.example.com"), headers={"Origin": "https://example.com"}
    ),
    "subdomain wildcard refuses a look-alike": Case(
        listing("https://*.example.com"), headers={"Origin": "https://evil-example.com"}
    ),
    "subdomain wildcard refuses another scheme": Case(
        listing("https://*.example.com"), headers={"Origin": "http://sub.example.com"}
    ),
    "port wildcard echoes the origin": Case(
        listing("http://localhost:*"),
        headers={"Origin": "http://localhost:3000"},
        cors={"Access-Control-Allow-Origin": "http://localhost:3000"},
    ),
    "null allowed when listed": Case(
        listing("null"), headers={"Origin": "null"}, cors={"Access-Control-Allow-Origin": "null"}
    ),
    "null refused when not listed": Case(listing(APP, "https://*.example.com"), headers={"Origin": "null"}),
    "idn entry matches punycode origin": Case(
        listing("https://bücher.de"),
        headers={"Origin": "https://xn--bcher-kva.de"},
        cors={"Access-Control-Allow-Origin": "https://xn--bcher-kva.de"},
    ),
    # only the Origin header counts
    "Referer, X-Origin and X-Forwarded-* are ignored": Case(
        listing(APP),
        headers={
            "Referer": APP + "/page",
            "X-Origin": APP,
            "X-Forwarded-Host": "app.example.com",
            "X-Forwarded-Proto": "https",
        },
    ),
    # policy options
    "credentials: exact origin and Allow-Credentials": Case(
        listing(APP, allow_credentials=True),
        cors={"Access-Control-Allow-Origin": APP, "Access-Control-Allow-Credentials": "true"},
    ),
    "allow all without credentials answers *": Case(
        listing(allow_all_origins=True), headers={"Origin": EVIL}, cors={"Access-Control-Allow-Origin": "*"}
    ),
    "expose headers": Case(
        listing(APP, expose_headers=["X-Request-Id", "X-Total"]),
        cors={"Access-Control-Allow-Origin": APP, "Access-Control-Expose-Headers": "x-request-id, x-total"},
    ),
    # preflight
    "preflight answered directly": Case(
        listing(APP),
        method="OPTIONS",
        headers={"Origin": APP, **PREFLIGHT},
        cors=PREFLIGHT_HEADERS,
        view_called=False,
    ),
    "preflight answered on a path with no view": Case(
        listing(APP),
        method="OPTIONS",
        path="/no/such/page/",
        headers={"Origin": APP, **PREFLIGHT},
        cors=PREFLIGHT_HEADERS,
    ),
    "preflight lists the policy's methods and headers": Case(
        listing(APP, allow_methods=["GET", "POST"], allow_headers=["x-token"], max_age=600),
        method="OPTIONS",
        headers={"Origin": APP, **PREFLIGHT},
        cors={
            "Access-Control-Allow-Origin": APP,
            "Access-Control-Allow-Methods": "GET, POST",
            "Access-Control-Allow-Headers": "x-token",
            "Access-Control-Max-Age": "600",
        },
    ),
    "preflight with max_age 0 has no Max-Age": Case(
        listing(APP, max_age=0),
        method="OPTIONS",
        headers={"Origin": APP, **PREFLIGHT},
        cors={k: v for k, v in PREFLIGHT_HEADERS.items() if k != "Access-Control-Max-Age"},
    ),
    "credentialed preflight never says *": Case(
        listing(APP, allow_credentials=True),
        method="OPTIONS",
        headers={"Origin": APP, **PREFLIGHT},
        cors={**PREFLIGHT_HEADERS, "Access-Control-Allow-Credentials": "true"},
    ),
    "refused preflight: 200 without CORS headers": Case(
        listing(APP), method="OPTIONS", headers={"Origin": EVIL, **PREFLIGHT}, view_called=False
    ),
    "private network preflight allowed": Case(
        listing(APP, allow_private_network=True),
        method="OPTIONS",
        headers={"Origin": APP, **PREFLIGHT, "Access-Control-Request-Private-Network": "true"},
        cors={**PREFLIGHT_HEADERS, "Access-Control-Allow-Private-Network": "true"},
    ),
    "private network refused by the policy": Case(
        listing(APP),
        method="OPTIONS",
        headers={"Origin": APP, **PREFLIGHT, "Access-Control-Request-Private-Network": "true"},
        cors=PREFLIGHT_HEADERS,
    ),
    "private network header only on a preflight": Case(
        listing(APP, allow_private_network=True),
        headers={"Origin": APP, "Access-Control-Request-Private-Network": "true"},
        cors=ALLOWED,
    ),
    "private network not announced unasked": Case(
        listing(APP, allow_private_network=True),
        method="OPTIONS",
        headers={"Origin": APP, **PREFLIGHT},
        cors=PREFLIGHT_HEADERS,
    ),
    # errors carry the same headers
    "404 carries CORS headers": Case(listing(APP), path="/no/such/page/", status=404, cors=ALLOWED),
    "500 from an exception carries CORS headers": Case(
        listing(APP), path="/demo/error/", status=500, cors=ALLOWED
    ),
    "500 for a refused origin has none": Case(
        listing(APP), path="/demo/error/", headers={"Origin": EVIL}, status=500
    ),
    "redirect from another middleware carries CORS headers": Case(
        listing(APP), path="/demo/echo", status=301, cors=ALLOWED
    ),
    "403 from the CSRF middleware carries CORS headers": Case(
        listing(APP), method="POST", path="/admin/login/", status=403, cors=ALLOWED, csrf_checks=True
    ),
    # scoping and state
    "uncovered path: no Vary, no headers": Case(
        listing(APP, url_regex="^/demo/"), path="/elsewhere/", status=404, vary=False
    ),
    "disabled policy: no Vary, no headers": Case(listing(APP, enabled=False), vary=False),
    "disabled entry refused": Case(disabled_entry),
    "expired entry refused": Case(expired_entry),
    "entry expiring later allowed": Case(unexpired_entry, cors=ALLOWED),
    "higher priority policy decides": Case(
        api_policy_first,
        cors={"Access-Control-Allow-Origin": APP, "Access-Control-Allow-Credentials": "true"},
    ),
    "policy not covering the path is skipped": Case(
        api_policy_first, path="/no/such/page/", status=404, cors=ALLOWED
    ),
    "priority ties broken by name": Case(
        two_policies_same_priority,
        cors={"Access-Control-Allow-Origin": APP, "Access-Control-Expose-Headers": "x-alpha"},
    ),
    "policy without the origin passes to the next": Case(higher_priority_without_the_origin, cors=ALLOWED),
}

# Origin headers no browser sends: never echoed, never a 500.
MALFORMED = {
    "path": APP + "/",
    "upper case": "HTTPS://APP.EXAMPLE.COM",
    "default port": APP + ":443",
    "trailing dot": APP + ".",
    "no scheme": "app.example.com",
    "two origins": f"{APP}, {EVIL}",
    "two origins no space": f"{APP} {APP}",
    "userinfo": "https://user@app.example.com",
    "nul byte": APP + "\x00",
    "CRLF injection": APP + "\r\nSet-Cookie: session=stolen",
    "tab": APP + "\t",
    "control characters only": "\x01\x02\x03\x7f" * 50,
    "non-ASCII host": "https://bücher.de",
    "huge wildcard match": "https://" + "a." * 5000 + "example.com",
    "huge": "https://" + "a" * 100_000 + ".example.com",
    "empty": "",
}
for _name, _origin in MALFORMED.items():
    CASES[f"malformed origin: {_name}"] = Case(
        listing(APP, "https://*.example.com", "https://bücher.de"), headers={"Origin": _origin}
    )


def check(case: Case, response) -> None:
    assert response.status_code == case.status
    assert cors_headers(response) == case.cors
    assert ("Origin" in vary(response)) is case.vary
    if case.view_called is not None:
        assert response.has_header("X-Request-Id") is case.view_called
    if case.method == "OPTIONS" and "Access-Control-Request-Method" in case.headers and case.vary:
        assert response.content == b""


# --- the twins --------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("name", list(CASES))
def test_sync(name, client):
    case = CASES[name]
    case.setup()
    client.raise_request_exception = False
    client.handler.enforce_csrf_checks = case.csrf_checks
    response = client.generic(case.method, case.path, headers=case.headers)
    check(case, response)


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
@pytest.mark.parametrize("name", list(CASES))
async def test_async(name, async_client):
    case = CASES[name]
    await sync_to_async(case.setup)()
    async_client.raise_request_exception = False
    async_client.handler.enforce_csrf_checks = case.csrf_checks
    response = await async_client.generic(case.method, case.path, headers=case.headers)
    check(case, response)


@pytest.mark.django_db
def test_host_header_is_ignored(client):
    AllowedOrigin.objects.create(origin=APP)
    response = client.get(ECHO, headers={"Host": "app.example.com", "Referer": APP + "/"})
    assert cors_headers(response) == {}


# --- zero queries per request ------------------------------------------------

REQUESTS = {
    "allowed": ("GET", {"Origin": APP}),
    "refused": ("GET", {"Origin": EVIL}),
    "preflight": ("OPTIONS", {"Origin": APP, **PREFLIGHT}),
    "refused preflight": ("OPTIONS", {"Origin": EVIL, **PREFLIGHT}),
    "no origin": ("GET", {}),
    "wildcard": ("GET", {"Origin": "https://a.example.com"}),
}


@pytest.mark.django_db
@pytest.mark.parametrize("kind", list(REQUESTS))
def test_no_query_per_request(kind, client, long_interval, django_assert_num_queries):
    AllowedOrigin.objects.create(origin=APP)
    AllowedOrigin.objects.create(origin="https://*.example.com")
    client.get(ECHO, headers={"Origin": APP})  # loads the snapshot
    method, headers = REQUESTS[kind]
    with django_assert_num_queries(0):
        for _ in range(3):
            response = client.generic(method, ECHO, headers=headers)
    assert "Origin" in vary(response)


@pytest.mark.django_db
def test_snapshot_load_is_counted_on_the_first_request(client, long_interval, django_assert_max_num_queries):
    """The counterpart: the first request does load, so zero above is not vacuous."""
    AllowedOrigin.objects.create(origin=APP)
    with django_assert_max_num_queries(5) as captured:
        response = client.get(ECHO, headers={"Origin": APP})
    assert len(captured) >= 1
    assert response["Access-Control-Allow-Origin"] == APP


@pytest.fixture
def spy(monkeypatch):
    """Record every database read of the refresh layer (a check for changes, ``update``, and
    a full build, ``load``, which the first ``update`` does itself), and its thread."""
    calls: list[tuple[str, int]] = []
    load, update = SnapshotBuilder.load, SnapshotBuilder.update

    def spy_load(self):
        calls.append(("load", threading.get_ident()))
        return load(self)

    def spy_update(self):
        calls.append(("update", threading.get_ident()))
        return update(self)

    monkeypatch.setattr(SnapshotBuilder, "load", spy_load)
    monkeypatch.setattr(SnapshotBuilder, "update", spy_update)
    return calls


FIRST_LOAD = ["update", "load"]


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
@pytest.mark.parametrize("kind", list(REQUESTS))
async def test_async_no_database_read_per_request(kind, async_client, long_interval, spy):
    await sync_to_async(AllowedOrigin.objects.create)(origin=APP)
    await sync_to_async(AllowedOrigin.objects.create)(origin="https://*.example.com")
    await async_client.get(ECHO, headers={"Origin": APP})
    assert [name for name, _ in spy] == FIRST_LOAD
    method, headers = REQUESTS[kind]
    for _ in range(3):
        response = await async_client.generic(method, ECHO, headers=headers)
    assert [name for name, _ in spy] == FIRST_LOAD
    assert "Origin" in vary(response)


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
async def test_async_refresh_runs_off_the_event_loop(async_client, spy):
    await sync_to_async(AllowedOrigin.objects.create)(origin=APP)
    response = await async_client.get(ECHO, headers={"Origin": APP})
    assert response["Access-Control-Allow-Origin"] == APP
    assert [name for name, _ in spy] == FIRST_LOAD
    assert all(thread != threading.get_ident() for _, thread in spy)


# --- expiry without a write ---------------------------------------------------


# The snapshot compares expiries with ``corsadmin.snapshot``'s ``time.time()``; the test
# moves that clock past the expiry instead of sleeping (the database keeps real time).
LIFETIME = 60.0


def pass_expiry(monkeypatch, expires) -> None:
    later = expires.timestamp() + 0.001
    monkeypatch.setattr(snapshot_module, "time", SimpleNamespace(time=lambda: later))


@pytest.mark.django_db
def test_entry_expires_without_a_write(client, long_interval, django_assert_num_queries, monkeypatch):
    expires = timezone.now() + timedelta(seconds=LIFETIME)
    AllowedOrigin.objects.create(origin=APP, expires_at=expires)
    assert client.get(ECHO, headers={"Origin": APP})["Access-Control-Allow-Origin"] == APP
    pass_expiry(monkeypatch, expires)
    with django_assert_num_queries(0):
        response = client.get(ECHO, headers={"Origin": APP})
    assert cors_headers(response) == {}


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
async def test_async_entry_expires_without_a_write(async_client, long_interval, spy, monkeypatch):
    expires = timezone.now() + timedelta(seconds=LIFETIME)
    await sync_to_async(AllowedOrigin.objects.create)(origin=APP, expires_at=expires)
    response = await async_client.get(ECHO, headers={"Origin": APP})
    assert response["Access-Control-Allow-Origin"] == APP
    pass_expiry(monkeypatch, expires)
    response = await async_client.get(ECHO, headers={"Origin": APP})
    assert cors_headers(response) == {}
    assert [name for name, _ in spy] == FIRST_LOAD


# --- Vary is added to, not replaced ---------------------------------------------


@pytest.mark.django_db
def test_vary_keeps_the_views_own_entries(admin_client):
    AllowedOrigin.objects.create(origin=APP)
    response = admin_client.get("/admin/", headers={"Origin": APP})
    assert vary(response) == ["Cookie", "Origin"]
    assert response["Access-Control-Allow-Origin"] == APP
