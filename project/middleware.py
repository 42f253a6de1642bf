"""The demo site's own middleware: a 503 page when the database is unreachable."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.html import escape

from corsadmin.db_errors import classify

logger = logging.getLogger("corsadmin")


class DatabaseUnavailableMiddleware:
    """A 503 instead of a traceback when a view fails because the database is unreachable.

    E.g. an admin save while PostgreSQL is down: the page says so, and that nothing was
    changed, or, when the connection failed during the commit, that the change may have
    been saved (a 409 for a write that collided with another: try again). HTML for
    browsers, JSON for clients that ask for it. (corsadmin's REST API has its own handler:
    ``corsadmin.api.exceptions``.) Anywhere in ``MIDDLEWARE``.
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
        failure = classify(exception)
        detail, code = failure.detail, failure.code
        logger.warning(
            "corsadmin: answered %d to %s %s, %s (%s)",
            failure.status,
            request.method,
            request.path,
            code.replace("_", " "),
            str(exception).strip(),
        )
        accept = request.headers.get("Accept", "")
        response: HttpResponse
        if "json" in accept and "html" not in accept:
            response = JsonResponse({"detail": detail, "code": code}, status=failure.status)
        else:
            title = "Conflict" if failure.status == 409 else "Service unavailable"
            response = HttpResponse(
                f"<!doctype html><title>{title}</title><h1>{title}</h1><p>{escape(detail)}</p>",
                status=failure.status,
            )
        if failure.status == 503:
            response["Retry-After"] = "5"
        return response
