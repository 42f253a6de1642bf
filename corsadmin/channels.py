"""WebSocket handshakes checked against the same registry as CORS (``corsadmin[channels]``).

CORS middleware never runs for a WebSocket scope, and a browser opens a WebSocket to any site
with the user's cookies: the server must check ``Origin`` itself (cross-site WebSocket
hijacking). ``OriginValidator`` wraps an ASGI application — Django Channels' ``URLRouter``, or
any other — and lets a handshake through only when its ``Origin`` is

- the site's own (its host and port those of the ``Host`` header), or
- allowed with the ``websocket`` scope by an entry of an enabled, enforcing policy covering the
  path (and the host, when the policy names hosts), that policy's deny entries not refusing it
  (``Snapshot.scope_allows``: the in-memory snapshot, no query).

Anything else — no ``Origin`` (not a browser: use another authentication for those), ``null``,
an origin listed for CORS only — is refused before the application sees it: the server answers
the handshake with HTTP 403, and the refusal is counted like a refused CORS request (the
admin's *Refused origins*, ``/api/cors/blocked/``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from django.conf import settings
from django.http.request import split_domain_port, validate_host

from . import refusals, telemetry
from .refresh import holder

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class OriginValidator:
    """ASGI middleware: WebSocket handshakes from origins the registry does not allow with the
    ``websocket`` scope are refused; other scopes (HTTP, lifespan) pass untouched."""

    def __init__(self, application: ASGIApp) -> None:
        self.application = application

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket" and not await handshake_allowed(scope):
            await _refuse(receive, send)
            return
        await self.application(scope, receive, send)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return bytes(value).decode("latin-1")
    return None


def _allowed_host(host_header: str | None) -> str | None:
    """The request's host, port-less and lower case, when ``ALLOWED_HOSTS`` accepts it."""
    if not host_header:
        return None
    domain, _port = split_domain_port(host_header.lower())
    allowed = settings.ALLOWED_HOSTS or (["localhost", "127.0.0.1", "[::1]"] if settings.DEBUG else [])
    return domain if domain and validate_host(domain, allowed) else None


async def handshake_allowed(scope: Scope) -> bool:
    origin = _header(scope, b"origin")
    if not origin:
        return False
    host_header = _header(scope, b"host")
    host = _allowed_host(host_header)
    if host is not None and host_header and origin.partition("://")[2] == host_header.lower():
        return True  # the site's own page
    path = scope.get("path") or "/"
    snapshot = await holder.aget()
    if origin != "null" and snapshot.scope_allows(
        "websocket", origin, path, host if snapshot.hosts.scoped else None
    ):
        return True
    if telemetry.ENABLED:
        refusals.count(origin, path, None, "")
    return False


async def _refuse(receive: Receive, send: Send) -> None:
    """Close before accepting: the server answers the handshake with HTTP 403."""
    message = await receive()
    if message["type"] == "websocket.connect":
        await send({"type": "websocket.close", "code": 1008})
