"""The exception handler of corsadmin's API views: a 503 when the database is unreachable
(saying so when a change may have been committed all the same), a 409 when a write
collided with another (``corsadmin.db_errors``), a 503 when a long request ran out of
time (``corsadmin.budget``), and a JSON 500 for anything unexpected: an API client never
gets the site's HTML error page.

corsadmin's views use it by themselves (``get_exception_handler``); everything else goes
to the site's own handler (DRF's ``EXCEPTION_HANDLER``), so the site keeps its error
pages. A site may also name it in ``REST_FRAMEWORK["EXCEPTION_HANDLER"]`` for its own views.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, cast

from django.core.exceptions import BadRequest, SuspiciousOperation
from django.core.signals import got_request_exception
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import NoReverseMatch, reverse
from django.utils.log import log_response
from django.utils.translation import gettext_lazy
from django.views import defaults
from rest_framework.exceptions import APIException
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import exception_handler as drf_exception_handler
from rest_framework.views import set_rollback

from ..budget import OutOfTime
from ..db_errors import classify

logger = logging.getLogger("corsadmin")

RETRY_AFTER = "5"


class DatabaseUnavailable(APIException):
    status_code = 503
    default_detail = gettext_lazy(
        "The database is unavailable right now; nothing was changed. Try again in a moment."
    )
    default_code = "database_unavailable"


class WriteConflict(APIException):
    status_code = 409
    default_detail = gettext_lazy(
        "This change collided with another write made at the same moment. Try again."
    )
    default_code = "write_conflict"


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, (OperationalError, InterfaceError)):
        failure = classify(exc)
        logger.warning(
            "corsadmin: API answered %d, %s (%s)",
            failure.status,
            failure.code.replace("_", " "),
            str(exc).strip(),
        )
        error = WriteConflict if failure.status == 409 else DatabaseUnavailable
        response = drf_exception_handler(error(failure.detail), context)
        if response is not None:
            response.data["code"] = failure.code
            if failure.status == 503:
                response["Retry-After"] = RETRY_AFTER
        return response
    if isinstance(exc, OutOfTime):
        set_rollback()  # the work's own transaction is undone already; ATOMIC_REQUESTS' too
        logger.warning("corsadmin: API answered 503, out of time (%s)", exc)
        response = Response({"detail": str(exc), "code": OutOfTime.code}, status=503)
        response["Retry-After"] = RETRY_AFTER
        return response
    if isinstance(exc, (SuspiciousOperation, BadRequest)):
        return bad_request(exc, context)
    # A dotted path in the settings, a function once DRF has imported it.
    site_handler = cast(Callable[[Exception, Any], Response | None], api_settings.EXCEPTION_HANDLER)
    if site_handler is exception_handler:  # the site named this one
        site_handler = drf_exception_handler
    response = site_handler(exc, context)
    if response is None:
        response = server_error(exc, context)
    return response


BAD_REQUEST = gettext_lazy(
    "The server could not read this request (too large or malformed): nothing was changed."
)
SERVER_ERROR = gettext_lazy(
    "The server failed while answering this request; the error was logged for its administrators."
)


def handler500(request: HttpRequest) -> HttpResponse:
    """A site's ``handler500`` (``handler500 = "corsadmin.api.exceptions.handler500"`` in its
    root URLconf): the API's JSON 500 for a request to corsadmin's API that failed before or
    after its view (in a middleware), Django's own page for any other path."""
    try:
        api_root = reverse("corsadmin-api:check").removesuffix("check/")
    except NoReverseMatch:
        api_root = None
    if api_root and request.path.startswith(api_root):
        return JsonResponse({"detail": str(SERVER_ERROR), "code": "server_error"}, status=500)
    return defaults.server_error(request)


def bad_request(exc: Exception, context: dict[str, Any]) -> Response:
    """What Django answers a ``SuspiciousOperation`` or ``BadRequest`` (e.g. a body over
    ``DATA_UPLOAD_MAX_MEMORY_SIZE``), in JSON: a 400 that names no setting, logged where Django
    logs it (``django.security.<name>``, or ``django.request``)."""
    set_rollback()
    name = (
        "django.security." + type(exc).__name__ if isinstance(exc, SuspiciousOperation) else "django.request"
    )
    logging.getLogger(name).error("%s", exc)
    return Response({"detail": str(BAD_REQUEST), "code": "bad_request"}, status=400)


def server_error(exc: Exception, context: dict[str, Any]) -> Response:
    """A JSON 500 for an exception nobody handled, reported as Django reports one (the
    ``got_request_exception`` signal, and the traceback on the ``django.request`` logger,
    which e-mails ``ADMINS`` where the site set that up)."""
    request = getattr(context.get("request"), "_request", None)
    set_rollback()  # under ATOMIC_REQUESTS, what the view wrote before failing is undone
    got_request_exception.send(sender=None, request=request)
    response = Response(
        {
            "detail": str(SERVER_ERROR),
            "code": "server_error",
        },
        status=500,
    )
    log_response(
        "%s: %s",
        "Internal Server Error",
        getattr(request, "path", ""),
        response=response,
        request=request,
        exception=exc,
    )
    return response
