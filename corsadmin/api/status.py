"""``/api/cors/status/``: the database's generation and every live process's (``corsadmin.status``)."""

from __future__ import annotations

import logging
from typing import Any

from django.db import DatabaseError
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from .. import status
from . import permissions
from .exceptions import RETRY_AFTER
from .schema import CorsAdminSchema
from .views import CorsAdminAPIView

logger = logging.getLogger("corsadmin")


class StatusQuerySerializer(serializers.Serializer[dict[str, object]]):
    max_age = serializers.FloatField(
        required=False,
        min_value=0,
        max_value=86400 * 365,
        help_text="Seconds without confirmation after which a process is stale "
        "(default: DATABASE_CHECK_EVERY + 1 intervals plus twice SERVICE_TIMEOUT).",
    )


class ProcessSerializer(serializers.Serializer[dict[str, object]]):
    id = serializers.CharField(help_text='The process: "hostname:pid".')
    generation = serializers.IntegerField(
        allow_null=True, help_text="The generation its snapshot serves (null: none loaded yet)."
    )
    age_seconds = serializers.FloatField(
        allow_null=True,
        help_text="Seconds since the database last confirmed that snapshot (null: never).",
    )
    last_error = serializers.CharField(allow_null=True, help_text="Its refresher's last error, or null.")
    stale = serializers.BooleanField(
        help_text="Behind the database's generation for longer than a refresh takes, ahead of it, "
        "or unconfirmed for longer than max_age."
    )


class StatusSerializer(serializers.Serializer[dict[str, object]]):
    generation = serializers.IntegerField(help_text="The database's generation.")
    processes = ProcessSerializer(many=True, help_text="Every live process that has reported, by id.")


UNAVAILABLE = {
    "detail": _(
        "The processes' heartbeats cannot be read right now (the cache holding them does not "
        "answer). Try again in a moment."
    ),
    "code": "heartbeats_unavailable",
}


class StatusView(CorsAdminAPIView, APIView):
    """Which server processes serve the database's allow-list, and which are stale."""

    schema = CorsAdminSchema()
    permission_classes = [permissions.CanViewOrigins]

    @extend_schema(
        summary="The database's generation and every live process's",
        parameters=[StatusQuerySerializer],
        responses={200: StatusSerializer},
    )
    def get(self, request: Request) -> Response:
        query = StatusQuerySerializer(data=request.query_params.dict())
        query.is_valid(raise_exception=True)
        try:
            result: dict[str, Any] = status.report(query.validated_data.get("max_age"))
        except DatabaseError:
            raise  # the API's 503 for the database
        except Exception as exc:  # noqa: BLE001  (the cache holding the heartbeats)
            logger.warning("corsadmin: API answered 503, heartbeats unavailable (%s)", exc)
            return Response(UNAVAILABLE, status=503, headers={"Retry-After": RETRY_AFTER})
        return Response(result)
