"""The admin of origin leases: listed, created (the key shown once, in the message after the
save) and revoked (an action); a lease is never edited: revoke it and create another."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from .. import leases
from ..lease_patterns import duration_text, parse_duration
from ..models import LeaseToken

if TYPE_CHECKING:
    _LeaseForm = forms.ModelForm[LeaseToken]
    _LeaseAdmin = admin.ModelAdmin[LeaseToken]
else:  # generic in django-stubs only
    _LeaseForm, _LeaseAdmin = forms.ModelForm, admin.ModelAdmin


class DurationField(forms.CharField):
    """7d, 12h, 30m or seconds, read as seconds."""

    def to_python(self, value: Any) -> int | None:  # type: ignore[override]
        text = super().to_python(value)
        if not text:
            return None
        try:
            return parse_duration(text)
        except ValidationError as exc:
            raise ValidationError(exc.messages[0], code="invalid") from None

    def prepare_value(self, value: Any) -> Any:
        return duration_text(value) if isinstance(value, int) else value


class LeaseAddForm(_LeaseForm):
    max_ttl = DurationField(
        label=_("maximum lifetime"),
        help_text=_(
            "Each entry it adds expires at most this far ahead (the default): 7d, 12h, 30m or seconds."
        ),
    )

    class Meta:
        model = LeaseToken
        fields = ("name", "policy", "pattern", "max_ttl")


class LeaseTokenAdmin(_LeaseAdmin):
    list_display = ("name", "policy", "pattern", "lifetime", "key_hint", "created_by", "created_at", "status")
    list_filter = ("policy",)
    search_fields = ("name", "pattern")
    actions = ("revoke",)
    form = LeaseAddForm
    shown = (
        "name",
        "policy",
        "pattern",
        "lifetime",
        "key_hint",
        "actor",
        "created_by",
        "created_at",
        "revoked_at",
    )

    def get_fields(self, request: HttpRequest, obj: LeaseToken | None = None) -> Any:
        return self.shown if obj is not None else LeaseAddForm.Meta.fields

    def get_readonly_fields(self, request: HttpRequest, obj: LeaseToken | None = None) -> Any:
        return self.shown if obj is not None else ()

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any) -> Any:
        if obj is not None:  # shown, never edited
            kwargs["form"] = forms.ModelForm
        return super().get_form(request, obj, change, **kwargs)

    def has_change_permission(self, request: HttpRequest, obj: LeaseToken | None = None) -> bool:
        # The change page only shows a lease; "change" permits revoking (the action).
        return obj is None and super().has_change_permission(request, obj)

    @admin.display(description=_("maximum lifetime"), ordering="max_ttl")
    def lifetime(self, obj: LeaseToken) -> str:
        return obj.max_ttl_text

    @admin.display(description=_("status"))
    def status(self, obj: LeaseToken) -> str:
        return gettext("revoked") if obj.revoked else gettext("active")

    def save_model(self, request: HttpRequest, obj: LeaseToken, form: Any, change: bool) -> None:
        if change:  # never: the change page only shows a lease
            return
        key = leases.issue_key(obj)
        leases.save_new(obj, request.user)
        messages.warning(
            request,
            gettext(
                "The key of origin lease %(name)s, shown only now (only a digest is kept): %(key)s — "
                "send it as “Authorization: Token %(key)s”."
            )
            % {"name": obj.name, "key": key},
        )

    @admin.action(description=_("Revoke the selected origin leases"), permissions=["change"])
    def revoke(self, request: HttpRequest, queryset: QuerySet[LeaseToken]) -> None:
        count = len([lease for lease in queryset if leases.revoke(lease, request.user)])
        messages.success(
            request,
            ngettext(
                "Revoked %(count)d origin lease: its key is refused from now on.",
                "Revoked %(count)d origin leases: their keys are refused from now on.",
                count,
            )
            % {"count": count},
        )
