"""Views of the REST API.

Each view names its own authentication (corsadmin's token and session classes) and
permissions, and turns a database outage into a 503 (``exceptions.exception_handler``);
throttling and the pages of unexpected errors are the host's (DRF's
``DEFAULT_THROTTLE_CLASSES``, Django's ``handler500``). Writes are recorded in the admin
history (``corsadmin.history``) in the transaction that makes them.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

from django.core.exceptions import ObjectDoesNotExist
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.paginator import Paginator
from django.db import IntegrityError
from django.db.models import Model, Prefetch, QuerySet
from django.http import HttpRequest, HttpResponse
from django.utils.translation import gettext as _
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView
from rest_framework import generics, routers, serializers, status, viewsets
from rest_framework.authentication import BaseAuthentication
from rest_framework.exceptions import NotFound
from rest_framework.pagination import PageNumberPagination
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from .. import browser_check, budget, deadlines, documents, history, import_jobs, metrics, writes
from ..errors import DUPLICATE_ORIGIN, DUPLICATE_POLICY
from ..models import AllowedOrigin, ImportJob, Policy, RefusedOrigin
from ..usage import with_usage
from ..widening import ChangeWatch, write_warnings
from . import permissions, previews
from .answers import (
    BlockedOriginSerializer,
    CheckQuerySerializer,
    CheckResultSerializer,
    DocumentSerializer,
    ImportJobSerializer,
    ImportResultSerializer,
)
from .authentication import SessionAuthentication, TokenAuthentication
from .background import accepted, job_body
from .exceptions import exception_handler
from .filters import OriginFilter, PolicyFilter
from .lease_scope import CREATE_DESCRIPTION, LeaseRefusals, LeaseScopedOrigins
from .params import flag
from .parsers import SafeJSONParser, read_document
from .schema import CorsAdminSchema
from .serializers import OriginSerializer, PolicySerializer, drf_errors

_Row = TypeVar("_Row", bound=Model)

# Import and export: a statement may take this many SERVICE_TIMEOUTs.
LONG_STATEMENTS = 30


@contextmanager
def long_request(view: CorsAdminAPIView) -> Iterator[None]:
    """Import and export: stop in time (``budget``: 503 ``out_of_time``, nothing changed) rather
    than be killed by the server; each query may take up to the time left."""
    deadline = budget.deadline_for(view.started)
    with budget.limited(deadline):
        seconds = deadlines.service_timeout() * LONG_STATEMENTS
        left = budget.remaining()
        if left is not None:
            seconds = max(0.1, min(seconds, left))
        with deadlines.deadline(seconds):
            yield


class CorsAdminAPIView(LeaseRefusals):
    """What every view of the API shares: corsadmin's authentication, a deadline on every
    query (authentication's included: ``deadlines``), and a 503 when the database is
    unavailable or hangs (the host's exception handler for everything else)."""

    authentication_classes: Sequence[type[BaseAuthentication]] = [TokenAuthentication, SessionAuthentication]

    started = 0.0  # budget.now() when this request reached the view

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        self.started = budget.now()
        with deadlines.deadline():
            return super().dispatch(request, *args, **kwargs)  # type: ignore[misc]

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        deadlines.check_health()  # in DRF's error handling: a hang is a 503
        super().initial(request, *args, **kwargs)  # type: ignore[misc]

    def get_exception_handler(self) -> Any:
        return exception_handler


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
                {
                    self.page_size_query_param: [
                        _("Give a whole number from 1 to %(max)d.") % {"max": self.max_page_size}
                    ]
                }
            )
        return int(value)

    def get_page_number(self, request: Request, paginator: Paginator[Any]) -> int | str:
        # DRF reads ?page= (empty) as page 1 and ?page=last as the last page; the schema says
        # a whole number, so anything else is the 404 of a page that does not exist.
        value = request.query_params.get(self.page_query_param)
        if value is None:
            return 1
        if not value.isascii() or not value.isdigit():
            raise NotFound(
                self.invalid_page_message.format(page_number=value, message=_("Not a page number."))
            )
        return value

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.page_size_query_param:
                parameter["schema"].update(minimum=1, maximum=self.max_page_size)
            if parameter["name"] == self.page_query_param:
                parameter["schema"]["minimum"] = 1
        return parameters


class RecordedModelViewSet(previews.PreviewMixin, CorsAdminAPIView, viewsets.ModelViewSet[_Row]):
    """Create, change and delete: each in one transaction with its admin ``LogEntry``
    (``?dry_run=true``: previewed, ``previews``)."""

    schema = CorsAdminSchema()
    permission_classes = [permissions.ModelPermissions]
    # JSON, or form fields (curl -d origin=..., the browsable API); documented as JSON.
    parser_classes = [SafeJSONParser, FormParser, MultiPartParser]
    pagination_class = Pagination
    filter_backends = [DjangoFilterBackend]

    # Each write: the generation row locked first, a conflict retried once (``writes.run``).

    def perform_create(self, serializer: Any) -> None:
        user = self.request.user
        extra = {}
        if serializer.Meta.model is AllowedOrigin:
            extra["created_by"] = user if history.user_id(user) is not None else None

        def write() -> None:
            obj = serializer.save(**extra)
            history.log_addition(user, [obj])
            if isinstance(obj, AllowedOrigin):  # e.g. an exception in its policy refuses it
                obj.widening_warnings = write_warnings(obj)  # type: ignore[attr-defined]

        with refused_as_field_errors(serializer.Meta.model):
            writes.run(write)

    def perform_update(self, serializer: Any) -> None:
        def write() -> None:
            # The row as committed, read under the lock: a field this request does not set
            # keeps what a concurrent write gave it (a bulk action's "disable", say).
            try:
                serializer.instance = self.get_queryset().get(pk=serializer.instance.pk)
            except ObjectDoesNotExist:
                raise NotFound() from None  # deleted meanwhile
            before = history.field_values(serializer.instance)
            watch = (
                ChangeWatch(serializer.instance) if isinstance(serializer.instance, AllowedOrigin) else None
            )
            obj = serializer.save()
            history.log_change(self.request.user, obj, before, history.changed_fields(before, obj))
            if watch is not None:  # an explicit act on an exception proceeds, and says what it opens
                obj.widening_warnings = write_warnings(obj, watch)

        with refused_as_field_errors(serializer.Meta.model):
            writes.run(write)

    def perform_destroy(self, instance: _Row) -> None:
        pk = instance.pk

        def write() -> None:
            instance.pk = pk  # a retried attempt: the failed one may have cleared it
            history.log_deletion(self.request.user, [instance])
            instance.delete()

        writes.run(write)


@contextmanager
def refused_as_field_errors(model: type[Model]) -> Iterator[None]:
    """What the database or a model's save refuses (a concurrent duplicate): a 400 with field errors."""
    try:
        yield
    except IntegrityError:
        if model is AllowedOrigin:
            raise serializers.ValidationError({"origin": [DUPLICATE_ORIGIN]}) from None
        raise serializers.ValidationError({"name": [DUPLICATE_POLICY]}) from None
    except DjangoValidationError as exc:
        raise drf_errors(exc) from None


@extend_schema_view(
    list=extend_schema(summary="List policies"),
    create=extend_schema(summary="Create a policy"),
    retrieve=extend_schema(summary="Show a policy"),
    update=extend_schema(summary="Replace a policy"),
    partial_update=extend_schema(summary="Change some fields of a policy"),
    destroy=extend_schema(summary="Delete a policy and its origins"),
)
class PolicyViewSet(RecordedModelViewSet[Policy]):
    # The plain http:// origins, for the warnings of a policy that allows credentials.
    queryset = Policy.objects.prefetch_related(
        Prefetch(
            "origins", AllowedOrigin.objects.filter(origin__startswith="http://"), to_attr="http_origins"
        )
    )
    serializer_class = PolicySerializer
    lookup_field = "name"
    # Anything up to the next slash reaches the view, so a bad name is a JSON 404; but a NUL,
    # in no name and refused by PostgreSQL in a query, goes to the catch-all JSON 404.
    lookup_value_regex = r"[^/\x00]+"
    filterset_class = PolicyFilter


@extend_schema_view(
    list=extend_schema(summary="List allowed origins"),
    create=extend_schema(summary="Allow an origin", description=CREATE_DESCRIPTION),
    retrieve=extend_schema(summary="Show an allowed origin"),
    update=extend_schema(summary="Replace an allowed origin"),
    partial_update=extend_schema(summary="Change some fields of an allowed origin"),
    destroy=extend_schema(summary="Remove an allowed origin"),
)
class OriginViewSet(LeaseScopedOrigins, RecordedModelViewSet[AllowedOrigin]):
    queryset = with_usage(AllowedOrigin.objects.select_related("policy", "created_by"))
    serializer_class = OriginSerializer
    lookup_value_regex = r"[^/]+"
    filterset_class = OriginFilter


class CheckView(CorsAdminAPIView, APIView):
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
        return Response(browser_check.check(**query.validated_data))


class ExportView(CorsAdminAPIView, APIView):
    schema = CorsAdminSchema()
    permission_classes = [permissions.CanExport]

    @extend_schema(summary="Export every policy with its origins", responses={200: DocumentSerializer})
    def get(self, request: Request) -> Response:
        with long_request(self):
            return Response(documents.export_document())


def _replace_flag(request: Request) -> bool:
    value = request.query_params.get("replace", "")
    answer = flag(value) if value else False
    if answer is None:
        raise serializers.ValidationError({"replace": [_("Give replace=true or replace=false.")]})
    return answer


class ImportView(CorsAdminAPIView, APIView):
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
        responses={200: ImportResultSerializer, 202: ImportJobSerializer},
        description="A document naming more than CORSADMIN['IMPORT_JOB_ORIGINS'] origins, or one "
        "the request runs out of time for (rolled back), is imported in the background: 202 "
        "with a job to poll at imports/<id>/ (Location).",
    )
    def post(self, request: Request) -> Response:
        replace = _replace_flag(request)
        document = read_document(request)
        if previews.dry_run(request):  # the real import, rolled back, whatever its size
            try:
                with long_request(self):
                    return previews.answer(
                        lambda: documents.import_document(document, replace=replace, user=request.user)
                    )
            except documents.ImportRefused as exc:
                return Response(exc.errors, status=status.HTTP_400_BAD_REQUEST)
        origins = import_jobs.origin_count(document)

        def in_background() -> Response:
            return accepted(
                request, import_jobs.start(document, origins=origins, replace=replace, user=request.user)
            )

        if origins > import_jobs.threshold():
            return in_background()
        try:
            # A 100,000-origin document's statements take longer than one lookup's.
            with long_request(self):
                result = documents.import_document(document, replace=replace, user=request.user)
        except documents.ImportRefused as exc:
            return Response(exc.errors, status=status.HTTP_400_BAD_REQUEST)
        except budget.OutOfTime:  # rolled back: the work goes on in the background
            return in_background()
        body: dict[str, Any] = {"replace": replace, **result.as_dict()}
        if result.warnings:
            body["warnings"] = result.warnings
        return Response(body)


class ImportJobView(CorsAdminAPIView, APIView):
    """A background import (``import/`` answered 202): its state, progress, counts and errors."""

    schema = CorsAdminSchema()
    permission_classes = [permissions.CanImport]

    @extend_schema(summary="A background import's state", responses={200: ImportJobSerializer})
    def get(self, request: Request, pk: str) -> Response:
        try:
            job = ImportJob.objects.get(pk=uuid.UUID(pk))
        except (ValueError, ImportJob.DoesNotExist):
            raise NotFound from None
        return Response(job_body(request, job))


@extend_schema_view(get=extend_schema(summary="Origins recently refused"))
class BlockedView(CorsAdminAPIView, generics.ListAPIView[RefusedOrigin]):
    """Origins the middleware refused recently: origin, count, first and last seen."""

    schema = CorsAdminSchema()
    permission_classes = [permissions.CanViewOrigins]
    serializer_class = BlockedOriginSerializer
    pagination_class = Pagination

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "report",
                bool,
                description="true: only would-be refusals of report-only policies; false: only refusals.",
            )
        ]
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    def get_queryset(self) -> QuerySet[RefusedOrigin]:
        rows = RefusedOrigin.objects.filter(dismissed=False).order_by("-last_seen", "origin", "policy")
        report = self.request.query_params.get("report")
        if not report:
            return rows
        wanted = flag(report)
        if wanted is None:
            raise serializers.ValidationError({"report": [_("Give report=true or report=false.")]})
        return rows.filter(report=wanted)


@extend_schema(exclude=True)
class NotFoundView(CorsAdminAPIView, APIView):
    """Any other path under the API: a JSON 404 rather than the site's HTML page."""

    permission_classes: list[Any] = []
    authentication_classes: Sequence[type[BaseAuthentication]] = []

    def http_method_not_allowed(self, request: HttpRequest, *args: Any, **kwargs: Any) -> Response:
        raise NotFound()

    get = post = put = patch = delete = head = options = http_method_not_allowed


@extend_schema(exclude=True)
class MetricsView(CorsAdminAPIView, APIView):
    """Prometheus metrics (``corsadmin.metrics``) for a user with ``corsadmin.view_policy``:
    a scraper sends the API's ``Authorization: Token <key>``, an operator's browser its session.
    401 without credentials, 403 without the permission, 404 unless ``CORSADMIN["METRICS"]``."""

    permission_classes = [permissions.CanViewMetrics]

    def perform_content_negotiation(self, request: Request, force: bool = False) -> Any:
        # A scraper may accept only text/plain: the errors are JSON all the same.
        return super().perform_content_negotiation(request, force=True)

    def get(self, request: Request) -> HttpResponse:
        return metrics.view(request._request)


class RootView(CorsAdminAPIView, routers.APIRootView):
    pass


# drf-spectacular's pages, with the rest of the API's authentication.
class SchemaView(CorsAdminAPIView, SpectacularAPIView):
    pass


class SwaggerView(CorsAdminAPIView, SpectacularSwaggerView):
    pass


class RedocView(CorsAdminAPIView, SpectacularRedocView):
    pass
