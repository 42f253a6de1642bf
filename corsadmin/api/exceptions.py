"""The exception handler of corsadmin's API views: a 503 when the database is unreachable
(saying so when a change may have been committed all the same), a 409 when a write
collided with another (``corsadmin.db_errors``).

corsadmin's views use it by themselves (``get_exception_handler``); everything else goes
to the site's own handler (DRF's ``EXCEPTION_HANDLER``), so the site keeps its error
pages. A site may also name it in ``REST_FRAMEWORK["EXCEPTION_HANDLER"]`` for its own views.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, cast

from django.db import InterfaceError, OperationalError
from django.utils.translation import gettext_lazy
from rest_framework.exceptions import APIException
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import exception_handler as drf_exception_handler

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
    # A dotted path in the settings, a function once DRF has imported it.
    site_handler = cast(Callable[[Exception, Any], Response | None], api_settings.EXCEPTION_HANDLER)
    if site_handler is exception_handler:  # the site named this one
        site_handler = drf_exception_handler
    return site_handler(exc, context)
