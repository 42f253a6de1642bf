"""The demo site's own middleware: a 503 page when the database is unreachable."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse

from corsadmin.db_errors import describe

logger = logging.getLogger("corsadmin")


class DatabaseUnavailableMiddleware:
    """A 503 instead of a traceback when a view fails because the database is unreachable.

    E.g. an admin save while PostgreSQL is down: the page says so, and nothing was
    changed. HTML for browsers, JSON for clients that ask for it. (corsadmin's REST API has its
    own handler: ``corsadmin.api.exceptions``.) Anywhere in ``MIDDLEWARE``.
    """

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        self.get_response = get_response
        if iscoroutinefunction(get_response):
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> Any:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not isinstance(exception, (OperationalError, InterfaceError)):
            return None
        detail, code = describe(exception)
        logger.warning(
            "corsadmin: answered 503 to %s %s, %s (%s)",
            request.method,
            request.path,
            code.replace("_", " "),
            str(exception).strip(),
        )
        accept = request.headers.get("Accept", "")
        response: HttpResponse
        if "json" in accept and "html" not in accept:
            response = JsonResponse({"detail": detail, "code": code}, status=503)
        else:
            response = HttpResponse(
                "<!doctype html><title>Service unavailable</title><h1>Service unavailable</h1>"
                f"<p>{detail}</p>",
                status=503,
            )
        response["Retry-After"] = "5"
        return response
