"""One request through the middleware's sync path and the same through its async path.

The allow-list is written with the ORM, loaded once (``load_snapshot``) and pinned as
the process's snapshot; the middleware is built around a plain view (sync) or a
coroutine view (async), so only the ``get_response`` call differs between the twins.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from django.http import HttpResponse
from django.test import AsyncRequestFactory, RequestFactory

from corsadmin.loader import load_snapshot
from corsadmin.middleware import CorsMiddleware
from corsadmin.refresh import holder

PATHS = ("sync", "async")


def _view(request: Any) -> HttpResponse:
    return HttpResponse("ok")


async def _aview(request: Any) -> HttpResponse:
    return HttpResponse("ok")


@pytest.fixture
def pinned(monkeypatch):
    """``pin()``: load the allow-list now and serve every request from that snapshot."""

    def pin():
        snapshot = load_snapshot()

        async def aget():
            return snapshot

        monkeypatch.setattr(holder, "get", lambda: snapshot)
        monkeypatch.setattr(holder, "aget", aget)
        return snapshot

    return pin


def send(
    twin: str,
    origin: str | None,
    path: str = "/demo/echo/",
    host: str = "testserver",
    method: str = "GET",
    headers: dict[str, str] | None = None,
) -> HttpResponse:
    """A request through the ``twin`` ("sync" or "async") path of the middleware."""
    headers = {"Host": host, **(headers or {})}
    if origin is not None:
        headers["Origin"] = origin
    if twin == "sync":
        request = RequestFactory().generic(method, path, headers=headers)
        return CorsMiddleware(_view)(request)
    headers.pop("Host")  # the factory's scope names testserver already: set it in place
    arequest = AsyncRequestFactory().generic(method, path, headers=headers)
    arequest.META["HTTP_HOST"] = host
    assert arequest.META.get("HTTP_ORIGIN") == origin
    return asyncio.run(CorsMiddleware(_aview)(arequest))


def allow_origin(response: HttpResponse) -> str | None:
    return response.headers.get("Access-Control-Allow-Origin")
