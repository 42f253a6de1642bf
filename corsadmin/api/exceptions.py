"""The exception handler of corsadmin's API views: a 503 when the database is unreachable.

corsadmin's views use it by themselves (``get_exception_handler``); everything else goes
to the site's own handler (DRF's ``EXCEPTION_HANDLER``), so the site keeps its error
pages. A site may also name it in ``REST_FRAMEWORK["EXCEPTION_HANDLER"]`` for its own views.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, cast

from django.db import InterfaceError, OperationalError
from rest_framework.exceptions import APIException
from rest_framework.response import Response
from rest_framework.settings import api_settings
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
    # A dotted path in the settings, a function once DRF has imported it.
    site_handler = cast(Callable[[Exception, Any], Response | None], api_settings.EXCEPTION_HANDLER)
    if site_handler is exception_handler:  # the site named this one
        site_handler = drf_exception_handler
    return site_handler(exc, context)
