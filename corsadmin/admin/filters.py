"""The admin's list filters: expiry and usage of allowed origins; the state and path of refused ones."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.contrib import admin
from django.db.models import Q, QuerySet
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from ..models import EXPIRES_SOON, AllowedOrigin, RefusedOrigin
from ..usage import unused
from ..visible import visible_text

if TYPE_CHECKING:
    from django_stubs_ext import StrOrPromise

UNUSED_CHOICES = (30, 90)
ALL = _("All")


class ExpiredFilter(admin.SimpleListFilter):
    title = _("expiry")
    parameter_name = "expired"

    def lookups(
        self, request: HttpRequest, model_admin: admin.ModelAdmin[AllowedOrigin]
    ) -> list[tuple[str, StrOrPromise]]:
        return [("yes", _("Expired")), ("soon", _("Expires within 7 days")), ("no", _("Not expired"))]

    def queryset(self, request: HttpRequest, queryset: QuerySet[AllowedOrigin]) -> QuerySet[AllowedOrigin]:
        now = timezone.now()
        expired = Q(expires_at__lte=now)
        if self.value() == "yes":
            return queryset.filter(expired)
        if self.value() == "soon":
            return queryset.filter(expires_at__gt=now, expires_at__lte=now + EXPIRES_SOON)
        if self.value() == "no":
            return queryset.exclude(expired)
        return queryset


class UnusedFilter(admin.SimpleListFilter):
    """Never seen, or not seen for 30 / 90 days (by the usage counts)."""

    title = _("usage")
    parameter_name = "unused"

    def lookups(
        self, request: HttpRequest, model_admin: admin.ModelAdmin[AllowedOrigin]
    ) -> list[tuple[str, StrOrPromise]]:
        return [(str(days), gettext("Unused for %(days)d days") % {"days": days}) for days in UNUSED_CHOICES]

    def queryset(self, request: HttpRequest, queryset: QuerySet[AllowedOrigin]) -> QuerySet[AllowedOrigin]:
        if self.value() in {str(days) for days in UNUSED_CHOICES}:
            return queryset.filter(unused(int(self.value())))  # type: ignore[arg-type]
        return queryset


class DismissedFilter(admin.SimpleListFilter):
    title = _("dismissed")
    parameter_name = "dismissed"

    def lookups(
        self, request: HttpRequest, model_admin: admin.ModelAdmin[RefusedOrigin]
    ) -> list[tuple[str, StrOrPromise]]:
        return [("no", _("Not dismissed (default)")), ("yes", _("Dismissed")), ("all", ALL)]

    def choices(self, changelist: Any) -> Any:
        for choice in super().choices(changelist):
            if str(choice["display"]) == str(ALL) and choice["query_string"].endswith("?"):
                continue
            yield choice

    def queryset(self, request: HttpRequest, queryset: QuerySet[RefusedOrigin]) -> QuerySet[RefusedOrigin]:
        value = self.value() or "no"
        if value == "all":
            return queryset
        return queryset.filter(dismissed=(value == "yes"))


def allowed_now(refused: RefusedOrigin) -> bool:
    """Whether the allow-list allows this origin on this path now (allowed since it was refused)."""
    from ..refresh import holder

    snapshot = holder.get()
    if refused.report:  # would the report-only policy, on its own, allow it now?
        return bool(snapshot.policy_allows(refused.policy, refused.origin))
    return snapshot.decide(refused.origin, refused.path_prefix).allowed


class AllowedNowFilter(admin.SimpleListFilter):
    title = _("allowed since")
    parameter_name = "allowed_now"

    def lookups(
        self, request: HttpRequest, model_admin: admin.ModelAdmin[RefusedOrigin]
    ) -> list[tuple[str, StrOrPromise]]:
        return [("no", _("Still refused")), ("yes", _("Allowed since"))]

    def queryset(self, request: HttpRequest, queryset: QuerySet[RefusedOrigin]) -> QuerySet[RefusedOrigin]:
        if self.value() not in ("yes", "no"):
            return queryset
        # At most REFUSED_MAX_ROWS rows, each asked of the in-memory snapshot.
        rows = queryset.only("pk", "origin", "path_prefix", "report", "policy")
        allowed = [r.pk for r in rows if allowed_now(r)]
        if self.value() == "yes":
            return queryset.filter(pk__in=allowed)
        return queryset.exclude(pk__in=allowed)


class PathFilter(admin.SimpleListFilter):
    """The refused paths, shown with their control and bidi characters made visible."""

    title = _("path")
    parameter_name = "path_prefix__exact"

    def lookups(
        self, request: HttpRequest, model_admin: admin.ModelAdmin[RefusedOrigin]
    ) -> list[tuple[str, StrOrPromise]]:
        paths = (
            model_admin.get_queryset(request).order_by("path_prefix").values_list("path_prefix", flat=True)
        )
        return [(path, visible_text(path)) for path in paths.distinct()]

    def queryset(self, request: HttpRequest, queryset: QuerySet[RefusedOrigin]) -> QuerySet[RefusedOrigin]:
        if self.value() is None:
            return queryset
        return queryset.filter(path_prefix=self.value())
