"""Views of the REST API. Writes go through ``corsadmin.services``."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core import signals
from django.core.exceptions import BadRequest, SuspiciousOperation
from django.db.models import Prefetch
from django.http.multipartparser import MultiPartParserError
from django.utils.log import log_response
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView
from rest_framework import generics, routers, serializers, status, viewsets
from rest_framework.exceptions import NotFound
from rest_framework.pagination import PageNumberPagination
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from .. import services
from ..usage import with_usage
from ..models import AllowedOrigin, Policy, RefusedOrigin
from . import permissions
from .filters import OriginFilter, PolicyFilter
from .parsers import SafeJSONParser, read_document
from .schema import CorsAdminSchema
from .serializers import (
    BlockedOriginSerializer,
    CheckQuerySerializer,
    CheckResultSerializer,
    DocumentSerializer,
    ImportResultSerializer,
    OriginSerializer,
    PolicySerializer,
)
from .throttles import THROTTLES

TRUE = ("true", "1", "yes", "on")
FALSE = ("", "false", "0", "no", "off")
SERVER_ERROR = "A server error occurred. It has been logged."
# Django answers these itself with a bare 400 (and logs the suspicious ones).
DJANGO_400 = (BadRequest, SuspiciousOperation, MultiPartParserError)


class HardenedView:
    """What every view of the API shares: throttles, and no internals in a 500.

    With ``DEBUG`` off, an unexpected error is ``{"detail": "A server error
    occurred..."}`` with status 500 and nothing else; it is reported as Django
    reports its own: the ``got_request_exception`` signal (error trackers) and
    an ERROR record with the traceback on the ``django.request`` logger
    (``ADMINS`` mail). With ``DEBUG`` on, Django's debug page as usual.
    """

    throttle_classes = THROTTLES

    def handle_exception(self, exc: Exception) -> Response:
        try:
            return super().handle_exception(exc)  # type: ignore[misc]
        except Exception as uncaught:
            if settings.DEBUG or isinstance(uncaught, DJANGO_400):
                raise
            request = self.request._request  # type: ignore[attr-defined]
            signals.got_request_exception.send(sender=type(self), request=request)
            response = Response({"detail": SERVER_ERROR}, status=status.HTTP_500_INTERNAL_SERVER_ERROR)
            log_response(
                "Internal Server Error: %s",
                request.path,
                response=response,
                request=request,
                exception=uncaught,
            )
            return response


class Pagination(PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 1000

    def get_page_size(self, request: Request) -> int:
        value = request.query_params.get(self.page_size_query_param)
        if value is None:
            return self.page_size
        if not value.isascii() or not value.isdigit() or not 1 <= int(value) <= self.max_page_size:
            raise serializers.ValidationError(
                {self.page_size_query_param: [f"Give a whole number from 1 to {self.max_page_size}."]}
            )
        return int(value)

    def get_page_number(self, request: Request, paginator: Any) -> Any:
        # DRF reads ?page= (empty) as page 1 and ?page=last as the last page; the schema says
        # a whole number, so anything else is the 404 of a page that does not exist.
        value = request.query_params.get(self.page_query_param)
        if value is None:
            return 1
        if not value.isascii() or not value.isdigit():
            raise NotFound(self.invalid_page_message.format(page_number=value, message="Not a page number."))
        return value

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.page_size_query_param:
                parameter["schema"].update(minimum=1, maximum=self.max_page_size)
            if parameter["name"] == self.page_query_param:
                parameter["schema"]["minimum"] = 1
        return parameters


class RecordedModelViewSet(HardenedView, viewsets.ModelViewSet):
    """Create, change and delete through the services: one transaction with an admin LogEntry."""

    schema = CorsAdminSchema()
    permission_classes = [permissions.ModelPermissions]
    # JSON, or form fields (curl -d origin=..., the browsable API); documented as JSON.
    parser_classes = [SafeJSONParser, FormParser, MultiPartParser]
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
    # The plain http:// origins, for the warnings of a policy that allows credentials.
    queryset = Policy.objects.prefetch_related(
        Prefetch(
            "origins", AllowedOrigin.objects.filter(origin__startswith="http://"), to_attr="http_origins"
        )
    )
    serializer_class = PolicySerializer
    lookup_field = "name"
    # Anything up to the next slash reaches the view, so a bad name is a JSON 404.
    lookup_value_regex = r"[^/]+"
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
    queryset = with_usage(AllowedOrigin.objects.select_related("policy", "created_by"))
    serializer_class = OriginSerializer
    lookup_value_regex = r"[^/]+"
    filterset_class = OriginFilter


class CheckView(HardenedView, APIView):
    """Would the middleware allow this origin? The same snapshot, the same headers."""

    schema = CorsAdminSchema()
    permission_classes = [permissions.CanViewOrigins]

    @extend_schema(
        summary="Explain the decision for an origin",
        parameters=[CheckQuerySerializer],
        responses={200: CheckResultSerializer},
    )
    def get(self, request: Request) -> Response:
        # A plain dict: from a QueryDict, DRF would read ?path= as "not given" (a form's empty
        # field); here an empty value is a bad one, as for the command line (found by the stateful run).
        query = CheckQuerySerializer(data=request.query_params.dict())
        query.is_valid(raise_exception=True)
        return Response(services.explain(**query.validated_data))


class ExportView(HardenedView, APIView):
    schema = CorsAdminSchema()
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


class ImportView(HardenedView, APIView):
    schema = CorsAdminSchema()
    permission_classes = [permissions.CanImport]
    parser_classes = [SafeJSONParser]  # for the schema: post() reads the body itself

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
            result = services.import_document(read_document(request), replace=replace, user=request.user)
        except services.ImportRefused as exc:
            return Response(exc.errors, status=status.HTTP_400_BAD_REQUEST)
        body: dict[str, Any] = {"replace": replace, **result.as_dict()}
        if result.warnings:
            body["warnings"] = result.warnings
        return Response(body)


@extend_schema_view(get=extend_schema(summary="Origins recently refused"))
class BlockedView(HardenedView, generics.ListAPIView):
    """Origins the middleware refused recently: origin, count, first and last seen."""

    schema = CorsAdminSchema()
    permission_classes = [permissions.CanViewOrigins]
    serializer_class = BlockedOriginSerializer
    pagination_class = Pagination

    def get_queryset(self) -> Any:
        return RefusedOrigin.objects.filter(dismissed=False).order_by("-last_seen", "origin")


@extend_schema(exclude=True)
class NotFoundView(HardenedView, APIView):
    """Any other path under the API: a JSON 404 rather than the site's HTML page."""

    permission_classes: list[Any] = []
    authentication_classes: list[Any] = []

    def http_method_not_allowed(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        raise NotFound()

    get = post = put = patch = delete = head = options = http_method_not_allowed


class RootView(HardenedView, routers.APIRootView):
    pass


# drf-spectacular's pages, throttled like the rest of the API.
class SchemaView(HardenedView, SpectacularAPIView):
    pass


class SwaggerView(HardenedView, SpectacularSwaggerView):
    pass


class RedocView(HardenedView, SpectacularRedocView):
    pass
