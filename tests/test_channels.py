"""WebSocket handshakes against the registry: ``corsadmin.channels.OriginValidator`` in front of a
Django Channels consumer, served by a real ASGI server (uvicorn) and opened by a real WebSocket
client (``websockets``), the allow-list changed from another process as an operator would.
Refused handshakes are counted like refused CORS requests (in process, below)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator

import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from corsadmin import refusals, telemetry
from corsadmin.channels import OriginValidator
from corsadmin.loader import load_snapshot
from corsadmin.models import AllowedOrigin, Policy, RefusedOrigin
from corsadmin.refresh import holder
from tests.browser.site import HOST, REFRESH_INTERVAL, ROOT, Site, raw_get

APP = "https://app.example.com"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    site = Site(tmp_path_factory.mktemp("channels-site"))
    site.manage("migrate", "--noinput", "--verbosity", "0")
    log = open(site.error_log, "ab")  # noqa: SIM115  (the server's output while it runs)
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "tests.ws_asgi:application", "--host", HOST,
         "--port", str(site.port), "--ws", "websockets", "--log-level", "warning"],
        cwd=ROOT, env=site.env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    log.close()
    try:
        deadline = time.monotonic() + 30
        while True:
            assert server.poll() is None, site.log_text()
            try:
                if raw_get(site.url("/demo/echo/"), timeout=2)[0] == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, f"uvicorn did not answer within 30 s:\n{site.log_text()}"
            time.sleep(0.1)
        yield site
    finally:
        server.terminate()
        server.wait(timeout=10)
        site.cleanup()


@pytest.fixture
def registry(site: Site) -> Site:
    """Each test starts from an empty list (the seeded ``default`` policy, a sentinel CORS entry
    of its own), once the server has it: no entry of an earlier test lingers there."""
    sentinel = f"https://sentinel-{uuid.uuid4().hex[:8]}.test"
    since = listed(
        site,
        "AllowedOrigin.objects.all().delete(); Policy.objects.exclude(name='default').delete()\n"
        f"AllowedOrigin.objects.create(origin={sentinel!r})",
    )
    cors_reaches(site, sentinel, since)
    return site


def cors_reaches(site: Site, origin: str, since: float) -> None:
    """The server allows CORS from ``origin`` within REFRESH_INTERVAL + 1 s of ``since``."""
    while "Access-Control-Allow-Origin" not in raw_get(site.url("/demo/echo/"), {"Origin": origin})[1]:
        assert time.monotonic() < since + REFRESH_INTERVAL + 1, f"{origin} never reached the server"
        time.sleep(0.1)


def echo(site: Site, origin: str | None, path: str = "/ws/echo/") -> str:
    """Opens the socket with this Origin, sends a word, returns the answer (InvalidStatus: refused)."""
    url = f"ws://{HOST}:{site.port}{path}"
    with connect(url, origin=origin, open_timeout=10) as socket:  # type: ignore[arg-type]
        socket.send("hello")
        return socket.recv(timeout=10)


def refused_with(site: Site, origin: str | None) -> int:
    with pytest.raises(InvalidStatus) as info:
        echo(site, origin)
    return info.value.response.status_code


def settles(site: Site, origin: str, allowed: bool, since: float) -> None:
    """The handshake from ``origin`` turns ``allowed`` within REFRESH_INTERVAL + 1 s of ``since``."""
    while True:
        try:
            echo(site, origin)
            now_allowed = True
        except InvalidStatus:
            now_allowed = False
        if now_allowed == allowed:
            return
        assert time.monotonic() < since + REFRESH_INTERVAL + 1, f"{origin} still {not allowed}"
        time.sleep(0.1)


def listed(site: Site, code: str) -> float:
    site.orm(code)
    return time.monotonic()


def test_an_origin_with_the_websocket_scope_is_accepted(registry: Site):
    since = listed(registry, f"AllowedOrigin.objects.create(origin={APP!r}, websocket=True)")
    settles(registry, APP, True, since)
    assert echo(registry, APP) == "hello"


def test_an_unlisted_origin_is_refused_with_a_403(registry: Site):
    assert refused_with(registry, "https://evil.example") == 403


def test_an_origin_listed_for_cors_only_is_refused(registry: Site):
    since = listed(registry, f"AllowedOrigin.objects.create(origin={APP!r})")
    cors_reaches(registry, APP, since)  # the server has the entry, and still refuses the handshake
    assert refused_with(registry, APP) == 403


def test_a_handshake_without_origin_is_refused(registry: Site):
    assert refused_with(registry, None) == 403


def test_the_sites_own_origin_is_accepted(registry: Site):
    assert echo(registry, f"http://{HOST}:{registry.port}") == "hello"


def test_a_wildcard_accepts_below_it_only(registry: Site):
    since = listed(registry, "AllowedOrigin.objects.create(origin='https://*.example.com', websocket=True)")
    settles(registry, APP, True, since)
    assert refused_with(registry, "https://example.com") == 403


def test_a_deny_entry_refuses_past_a_wildcard(registry: Site):
    since = listed(
        registry,
        "AllowedOrigin.objects.create(origin='https://*.example.com', websocket=True)\n"
        f"AllowedOrigin.objects.create(origin={APP!r}, effect='deny')",
    )
    settles(registry, "https://eu.example.com", True, since)
    settles(registry, APP, False, since)  # the two rows are two commits: the second may come later
    assert refused_with(registry, APP) == 403


def test_the_list_changes_live(registry: Site):
    since = listed(registry, f"AllowedOrigin.objects.create(origin={APP!r}, websocket=True)")
    settles(registry, APP, True, since)
    since = listed(registry, f"AllowedOrigin.objects.filter(origin={APP!r}).delete()")
    settles(registry, APP, False, since)


# --- in process: what a refusal is counted as ----------------------------------------------


def handshake(origin: str, path: str = "/ws/echo/") -> list[dict]:
    """One handshake through OriginValidator around an accepting app: the messages sent back."""
    sent: list[dict] = []

    async def app(scope, receive, send):
        await receive()
        await send({"type": "websocket.accept"})

    async def receive():
        return {"type": "websocket.connect"}

    async def send(message):
        sent.append(message)

    scope = {
        "type": "websocket",
        "path": path,
        "headers": [(b"origin", origin.encode()), (b"host", b"testserver")],
    }
    # The snapshot of this test's transaction (the validator's thread could not read it).
    previous = holder.override(load_snapshot())
    try:
        asyncio.run(OriginValidator(app)(scope, receive, send))
    finally:
        holder.override(previous)
    return sent


@pytest.mark.django_db
def test_a_refused_handshake_is_counted_like_a_refused_cors_request(settings):
    AllowedOrigin.objects.create(origin=APP)  # covered by `default`, for CORS only
    assert handshake(APP) == [{"type": "websocket.close", "code": 1008}]
    refusals.split()
    telemetry.recorder.flush()
    assert list(RefusedOrigin.objects.values_list("origin", "count")) == [(APP, 1)]


@pytest.mark.django_db
def test_an_accepted_handshake_reaches_the_application():
    policy = Policy.objects.create(name="live", url_regex=r"^/ws/")
    AllowedOrigin.objects.create(origin=APP, policy=policy, websocket=True)
    assert handshake(APP) == [{"type": "websocket.accept"}]
