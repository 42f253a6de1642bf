"""The CORS middleware: asks the snapshot, never the database."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.http import HttpRequest, HttpResponse
from django.utils.cache import patch_vary_headers

from .refresh import holder
from .snapshot import Decision, Snapshot

MAX_ORIGIN_LENGTH = 2048


def _ask(snapshot: Snapshot, request: HttpRequest) -> tuple[Decision, bool]:
    """The decision for this request, and whether it is a preflight."""
    meta = request.META
    origin = meta.get("HTTP_ORIGIN")
    if origin is not None and len(origin) > MAX_ORIGIN_LENGTH:
        origin = None
    method = request.method or "GET"
    preflight = method == "OPTIONS" and "HTTP_ACCESS_CONTROL_REQUEST_METHOD" in meta
    decision = snapshot.decide(
        origin,
        request.path_info,
        method,
        preflight,
        meta.get("HTTP_ACCESS_CONTROL_REQUEST_PRIVATE_NETWORK") == "true",
    )
    return decision, preflight


def _preflight_response() -> HttpResponse:
    response = HttpResponse()
    response["Content-Length"] = "0"
    return response


def _finish(response: HttpResponse, decision: Decision) -> HttpResponse:
    if decision.covered:
        patch_vary_headers(response, ("Origin",))
        for name, value in decision.headers.items():
            response[name] = value
    return response


class CorsMiddleware:
    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        self.get_response = get_response
        self.async_mode = iscoroutinefunction(get_response)
        if self.async_mode:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> Any:
        if self.async_mode:
            return self.__acall__(request)
        decision, preflight = _ask(holder.get(), request)
        if preflight and decision.covered:
            return _finish(_preflight_response(), decision)
        return _finish(self.get_response(request), decision)

    async def __acall__(self, request: HttpRequest) -> HttpResponse:
        decision, preflight = _ask(await holder.aget(), request)
        if preflight and decision.covered:
            return _finish(_preflight_response(), decision)
        response = await self.get_response(request)
        return _finish(response, decision)

