"""Views of the REST API. Writes go through ``corsadmin.services``."""

from __future__ import annotations

from typing import Any

from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import generics, serializers, status, viewsets
from rest_framework.pagination import PageNumberPagination
from rest_framework.parsers import JSONParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from .. import services
from ..models import AllowedOrigin, Policy
from . import permissions
from .filters import OriginFilter, PolicyFilter
from .serializers import (
    BlockedOriginSerializer,
    CheckQuerySerializer,
    CheckResultSerializer,
    DocumentSerializer,
    ImportResultSerializer,
    OriginSerializer,
    PolicySerializer,
)

TRUE = ("true", "1", "yes", "on")
FALSE = ("", "false", "0", "no", "off")


class Pagination(PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 1000


class RecordedModelViewSet(viewsets.ModelViewSet):
    """Create, change and delete through the services: one transaction with an admin LogEntry."""

    permission_classes = [permissions.ModelPermissions]
    pagination_class = Pagination
    filter_backends = [DjangoFilterBackend]

    def perform_create(self, serializer: Any) -> None:
        services.create(serializer, self.request.user)

    def perform_update(self, serializer: Any) -> None:
        services.update(serializer, self.request.user)

    def perform_destroy(self, instance: Any) -> None:
        services.delete(instance, self.request.user)


@extend_schema_view(
    list=extend_schema(summary="List policies"),
    create=extend_schema(summary="Create a policy"),
    retrieve=extend_schema(summary="Show a policy"),
    update=extend_schema(summary="Replace a policy"),
    partial_update=extend_schema(summary="Change some fields of a policy"),
    destroy=extend_schema(summary="Delete a policy and its origins"),
)
class PolicyViewSet(RecordedModelViewSet):
    queryset = Policy.objects.all()
    serializer_class = PolicySerializer
    lookup_field = "name"
    lookup_value_regex = r"[-a-zA-Z0-9_]+"
    filterset_class = PolicyFilter


@extend_schema_view(
    list=extend_schema(summary="List allowed origins"),
    create=extend_schema(summary="Allow an origin"),
    retrieve=extend_schema(summary="Show an allowed origin"),
    update=extend_schema(summary="Replace an allowed origin"),
    partial_update=extend_schema(summary="Change some fields of an allowed origin"),
    destroy=extend_schema(summary="Remove an allowed origin"),
)
class OriginViewSet(RecordedModelViewSet):
    queryset = AllowedOrigin.objects.select_related("policy", "created_by")
    serializer_class = OriginSerializer
    lookup_value_regex = r"[0-9]+"
    filterset_class = OriginFilter


class CheckView(APIView):
    """Would the middleware allow this origin? The same snapshot, the same headers."""

    permission_classes = [permissions.CanViewOrigins]

    @extend_schema(
        summary="Explain the decision for an origin",
        parameters=[CheckQuerySerializer],
        responses={200: CheckResultSerializer},
    )
    def get(self, request: Request) -> Response:
        query = CheckQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        return Response(services.explain(**query.validated_data))


class ExportView(APIView):
    permission_classes = [permissions.CanExport]

    @extend_schema(summary="Export every policy with its origins", responses={200: DocumentSerializer})
    def get(self, request: Request) -> Response:
        return Response(services.export_document())


def _replace_flag(request: Request) -> bool:
    value = request.query_params.get("replace", "").lower()
    if value in TRUE:
        return True
    if value in FALSE:
        return False
    raise serializers.ValidationError({"replace": ["Give replace=true or replace=false."]})


class ImportView(APIView):
    permission_classes = [permissions.CanImport]
    parser_classes = [JSONParser]

    @extend_schema(
        summary="Import an exported document, all or nothing",
        parameters=[
            OpenApiParameter(
                "replace",
                OpenApiTypes.BOOL,
                description="Delete the policies and origins the document does not name.",
            )
        ],
        request=DocumentSerializer,
        responses={200: ImportResultSerializer},
    )
    def post(self, request: Request) -> Response:
        replace = _replace_flag(request)
        try:
            result = services.import_document(request.data, replace=replace, user=request.user)
        except services.ImportRefused as exc:
            return Response(exc.errors, status=status.HTTP_400_BAD_REQUEST)
        return Response({"replace": replace, **result.as_dict()})


@extend_schema_view(get=extend_schema(summary="Origins recently refused"))
class BlockedView(generics.ListAPIView):
    """Origins the middleware refused recently: origin, count, first and last seen."""

    permission_classes = [permissions.CanViewOrigins]
    serializer_class = BlockedOriginSerializer
    pagination_class = Pagination

    def get_queryset(self) -> list[dict[str, Any]]:
        # TODO(issue 4): return the refused-origin telemetry, newest last_seen first,
        # as rows of {origin, count, first_seen, last_seen}.
        return []
