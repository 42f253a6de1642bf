from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.contrib import admin, messages
from django.db.models import Count, Q, QuerySet
from django.http import HttpRequest
from django.utils import timezone

from .forms import PolicyForm
from .models import AllowedOrigin, Policy

EXPIRES_SOON = timedelta(days=7)


def origin_status(obj: AllowedOrigin) -> str:
    now = timezone.now()
    if not obj.enabled:
        return "disabled"
    if obj.expires_at is not None and obj.expires_at <= now:
        return "expired"
    if obj.expires_at is not None and obj.expires_at <= now + EXPIRES_SOON:
        return "expires soon"
    return "active"


class ExpiredFilter(admin.SimpleListFilter):
    title = "expiry"
    parameter_name = "expired"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("yes", "Expired"), ("no", "Not expired")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        expired = Q(expires_at__lte=timezone.now())
        if self.value() == "yes":
            return queryset.filter(expired)
        if self.value() == "no":
            return queryset.exclude(expired)
        return queryset


class AllowedOriginInline(admin.TabularInline):
    model = AllowedOrigin
    extra = 1
    fields = ("origin", "enabled", "expires_at", "csrf_trusted", "note")
    show_change_link = True


@admin.register(Policy)
class PolicyAdmin(admin.ModelAdmin):
    form = PolicyForm
    inlines = [AllowedOriginInline]
    list_display = ("name", "url_regex", "priority", "enabled", "allow_all_origins", "allow_credentials", "active_origins")
    list_filter = ("enabled", "allow_credentials", "allow_all_origins")
    search_fields = ("name", "note", "url_regex")
    readonly_fields = ("created_at", "updated_at")
    fieldsets = (
        (None, {"fields": ("name", "url_regex", "priority", "enabled", "note")}),
        ("Origins", {"fields": ("allow_all_origins", "allow_credentials")}),
        ("Headers", {"fields": ("allow_methods", "allow_headers", "expose_headers", "max_age", "allow_private_network")}),
        ("History", {"fields": ("created_at", "updated_at")}),
    )

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        active = Q(origins__enabled=True) & (Q(origins__expires_at__isnull=True) | Q(origins__expires_at__gt=timezone.now()))
        return super().get_queryset(request).annotate(_active=Count("origins", filter=active))

    @admin.display(description="active origins", ordering="_active")
    def active_origins(self, obj: Policy) -> int:
        return obj._active  # type: ignore[attr-defined]

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: bool) -> None:
        for instance in formset.save(commit=False):
            if instance.pk is None:
                instance.created_by = request.user
            instance.save()
        for obj in formset.deleted_objects:
            obj.delete()
        formset.save_m2m()


@admin.register(AllowedOrigin)
class AllowedOriginAdmin(admin.ModelAdmin):
    list_display = ("origin", "policy", "enabled", "status", "expires_at", "csrf_trusted", "note", "updated_at")
    list_filter = ("policy", "enabled", ExpiredFilter, "csrf_trusted")
    search_fields = ("origin", "note")
    list_select_related = ("policy",)
    readonly_fields = ("created_at", "updated_at", "created_by")
    actions = ("enable", "disable")

    @admin.display(description="status")
    def status(self, obj: AllowedOrigin) -> str:
        return origin_status(obj)

    def save_model(self, request: HttpRequest, obj: AllowedOrigin, form: Any, change: bool) -> None:
        if not change:
            obj.created_by = request.user  # type: ignore[assignment]
        super().save_model(request, obj, form, change)

    @admin.action(description="Enable selected origins", permissions=["change"])
    def enable(self, request: HttpRequest, queryset: QuerySet) -> None:
        count = queryset.update(enabled=True)
        self.message_user(request, f"Enabled {count} origin(s).", messages.SUCCESS)

    @admin.action(description="Disable selected origins", permissions=["change"])
    def disable(self, request: HttpRequest, queryset: QuerySet) -> None:
        count = queryset.update(enabled=False)
        self.message_user(request, f"Disabled {count} origin(s).", messages.SUCCESS)
