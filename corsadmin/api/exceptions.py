"""The REST API's exception handler: DRF's own, plus a 503 when the database is unreachable.

Wired by the host site: ``REST_FRAMEWORK["EXCEPTION_HANDLER"] =
"corsadmin.api.exceptions.exception_handler"``. Without it a write during a
database outage is a 500 with Django's error page instead of a JSON answer.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import InterfaceError, OperationalError
from rest_framework.exceptions import APIException
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from ..db_errors import describe

logger = logging.getLogger("corsadmin")

RETRY_AFTER = "5"


class DatabaseUnavailable(APIException):
    status_code = 503
    default_detail = "The database is unavailable right now; nothing was changed. Try again in a moment."
    default_code = "database_unavailable"


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, (OperationalError, InterfaceError)):
        detail, code = describe(exc)
        logger.warning("corsadmin: API answered 503, %s (%s)", code.replace("_", " "), str(exc).strip())
        response = drf_exception_handler(DatabaseUnavailable(detail), context)
        if response is not None:
            response.data["code"] = code
            response["Retry-After"] = RETRY_AFTER
        return response
    return drf_exception_handler(exc, context)
