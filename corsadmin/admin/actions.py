"""The admin's bulk actions on allowed and refused origins, with the pages they ask or confirm on."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.actions import delete_selected as django_delete_selected
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Model, QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils.html import conditional_escape
from django.utils.safestring import SafeString
from django.utils.text import format_lazy
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from .. import writes
from ..history import change_message, field_values
from ..models import AllowedOrigin, Policy, RefusedOrigin
from ..usage import unused
from .forms import ExpiryForm, PolicyChoiceForm, exception_link, html

UNUSED_DAYS = 30  # the "disable unused" action's

_Row = TypeVar("_Row", bound=Model)

if TYPE_CHECKING:
    _AllowedOriginAdmin = admin.ModelAdmin[AllowedOrigin]
    _RefusedOriginAdmin = admin.ModelAdmin[RefusedOrigin]
else:  # ModelAdmin takes its model as a type argument in django-stubs only
    _AllowedOriginAdmin = _RefusedOriginAdmin = admin.ModelAdmin


def widening_context(queryset: QuerySet[AllowedOrigin]) -> dict[str, Any]:
    """For a page about to disable, delete or move the selected origins: the exceptions (deny
    entries) among them, and the origins their going would allow (``corsadmin.widening``)."""
    from ..widening import openings

    denies, opened = openings(queryset.select_related("policy"))
    return {"widening_denies": denies, "widening_openings": opened}


def ask_action_form(
    model_admin: admin.ModelAdmin[_Row],
    request: HttpRequest,
    queryset: QuerySet[_Row],
    form_class: type[forms.Form],
    title: str,
    action: str,
    extra: Callable[[], dict[str, Any]] | None = None,
) -> tuple[dict[str, Any] | None, HttpResponse | None]:
    """An intermediate page for an admin action: the cleaned form, or the page to show."""
    form = form_class(request.POST if "apply" in request.POST else None)
    if form.is_bound and form.is_valid():
        return form.cleaned_data, None
    context = {
        **(extra() if extra is not None else {}),
        **model_admin.admin_site.each_context(request),
        "title": title,
        "form": form,
        "queryset": queryset,
        "action": action,
        "opts": model_admin.model._meta,
        "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        "media": model_admin.media + form.media,
    }
    return None, TemplateResponse(request, "admin/corsadmin/action_form.html", context)


def allow_origin(
    origin_admin: admin.ModelAdmin[AllowedOrigin],
    request: HttpRequest,
    origin: str,
    policy: Policy,
    note: str,
) -> tuple[AllowedOrigin | None, str]:
    """Add a refused ``origin`` to ``policy`` for the user: validated, saved and recorded in
    the history together. (The entry, "") or (None, why it was not added)."""
    from ..widening import refusing

    entry = AllowedOrigin(
        origin=origin,
        policy=policy,
        created_by=request.user if isinstance(request.user, get_user_model()) else None,
        note=note,
    )
    try:
        entry.full_clean()
        denies = refusing(entry)
        if denies:  # an allow entry beside it would allow nothing: say where to change it
            return None, refused_by_exception(entry.origin, denies[0])

        def write() -> None:
            entry.save()
            origin_admin.log_addition(request, entry, [{"added": {}}])

        writes.run(write)
    except (ValidationError, IntegrityError) as exc:
        listed = entry.listed_exception() if entry.policy_id else None
        if listed is not None:
            return None, refused_by_exception(entry.origin, listed)
        return None, conditional_escape("; ".join(getattr(exc, "messages", [str(exc)])))
    return entry, ""


REFUSED_BY_EXCEPTION = _(
    "the exception (deny entry) %(deny)s in policy %(policy)s refuses it. To allow it, change that "
    "entry (make it an allow entry, or disable or delete it): %(link)s"
)


def refused_by_exception(origin: str, deny: AllowedOrigin) -> SafeString:
    """Why an origin is not added: an exception in its policy, named, with a link to change it."""
    return html(
        str(REFUSED_BY_EXCEPTION), deny=deny.origin, policy=deny.policy.name, link=exception_link(deny)
    )


class AllowedOriginActions(_AllowedOriginAdmin):
    """The bulk actions of the allowed origins' list (``AllowedOriginAdmin.actions``)."""

    def _update_each(
        self, request: HttpRequest, queryset: QuerySet[AllowedOrigin], **values: Any
    ) -> int | None:
        """Change the selected origins one by one, validated as the form validates them.

        All or nothing: when any origin is refused, nothing changes and the reasons are
        shown (one message per origin); returns None then. Each save bumps
        ``updated_at`` and is announced like any other save, with one history entry.
        """

        from ..widening import write_warnings

        risky: list[str] = []

        def write() -> tuple[list[str], int]:
            # The generation row first (``writes.run``), then the selected rows: one lock order.
            objs = list(queryset.select_related("policy").select_for_update(of=("self",)))
            problems: list[str] = []
            risky.clear()  # a retried attempt starts again
            changed = []
            for obj in objs:
                fields = [name for name, value in values.items() if getattr(obj, name) != value]
                if not fields:
                    continue
                before = field_values(obj)
                for name, value in values.items():
                    setattr(obj, name, value)
                try:
                    obj.full_clean(exclude={"created_by"})
                except ValidationError as exc:
                    # Never an origin first: the admin capitalises a message's first letter.
                    problems.append(
                        gettext("Origin %(origin)s: %(reasons)s")
                        % {"origin": obj.origin, "reasons": " ".join(exc.messages)}
                    )
                    continue
                changed.append((obj, fields, before))
            if problems:
                transaction.set_rollback(True)
                return problems, 0
            for obj, fields, before in changed:
                obj.save()
                if obj.enabled:  # what the API's PATCH would warn about
                    risky.extend([*obj.warnings(), *write_warnings(obj)])
                # The API's and the CLI's words: labels and old -> new values.
                self.log_change(
                    request, obj, change_message(AllowedOrigin, before, field_values(obj), fields)
                )
            return problems, len(changed)

        problems, count = writes.run(write)
        if problems:
            refused = len(problems)
            message = ngettext(
                "Nothing changed: %(count)d origin(s) refused.",
                "Nothing changed: %(count)d origin(s) refused.",
                refused,
            ) % {"count": refused}
            self.message_user(request, message, messages.ERROR)
            for problem in problems:
                self.message_user(request, problem, messages.ERROR)
            return None
        for warning in risky:
            self.message_user(request, warning, messages.WARNING)
        return count

    @admin.action(description=_("Enable selected origins"), permissions=["change"])
    def enable(self, request: HttpRequest, queryset: QuerySet[AllowedOrigin]) -> None:
        count = self._update_each(request, queryset, enabled=True)
        if count is not None:
            message = ngettext("Enabled %(count)d origin(s).", "Enabled %(count)d origin(s).", count)
            self.message_user(request, message % {"count": count}, messages.SUCCESS)

    def _confirm_widening(
        self, request: HttpRequest, queryset: QuerySet[AllowedOrigin], action: str, confirm_label: str
    ) -> HttpResponse | None:
        """A page naming what disabling the selected exceptions (deny entries) would allow,
        until it is confirmed; None when confirmed or when no exception in force is selected."""
        if request.POST.get("confirm_widening") == "1":
            return None
        opened = widening_context(queryset)
        if not opened["widening_denies"]:
            return None
        context = {
            **self.admin_site.each_context(request),
            **opened,
            "title": gettext("Allow what the exceptions refuse?"),
            "confirm_label": confirm_label,
            "queryset": queryset,
            "action": action,
            "opts": self.model._meta,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "admin/corsadmin/confirm_widening.html", context)

    @admin.action(description=_("Disable selected origins"), permissions=["change"])
    def disable(self, request: HttpRequest, queryset: QuerySet[AllowedOrigin]) -> HttpResponse | None:
        page = self._confirm_widening(request, queryset, "disable", gettext("Yes, disable them"))
        if page is not None:
            return page
        count = self._update_each(request, queryset, enabled=False)
        if count is not None:
            message = ngettext("Disabled %(count)d origin(s).", "Disabled %(count)d origin(s).", count)
            self.message_user(request, message % {"count": count}, messages.SUCCESS)
        return None

    @admin.action(description=_("Delete selected %(verbose_name_plural)s"), permissions=["delete"])
    def delete_selected(self, request: HttpRequest, queryset: QuerySet[AllowedOrigin]) -> HttpResponse | None:
        """Django's, whose confirmation page also names what deleting exceptions would allow."""
        response = django_delete_selected(self, request, queryset)
        if isinstance(response, TemplateResponse) and response.context_data is not None:
            response.context_data.update(widening_context(queryset))
        return response

    @admin.action(
        description=format_lazy(_("Disable selected origins unused for {days} days"), days=UNUSED_DAYS),
        permissions=["change"],
    )
    def disable_unused(self, request: HttpRequest, queryset: QuerySet[AllowedOrigin]) -> None:
        """Of the selection, disable those never seen or not seen for UNUSED_DAYS days (the
        others are kept and counted in the message); each with a history entry. Never an
        exception (deny entry): disabling one would allow what it refuses."""
        idle = queryset.filter(unused(UNUSED_DAYS), enabled=True)
        exceptions = queryset.filter(enabled=True, effect=AllowedOrigin.DENY).count()
        kept = queryset.filter(enabled=True).count() - idle.count() - exceptions
        count = self._update_each(request, idle, enabled=False)
        if count is not None:
            message = ngettext(
                "Disabled %(count)d origin(s) unused for %(days)d days.",
                "Disabled %(count)d origin(s) unused for %(days)d days.",
                count,
            ) % {"count": count, "days": UNUSED_DAYS}
            if kept:
                message += " " + ngettext(
                    "Kept %(kept)d used within %(days)d days.",
                    "Kept %(kept)d used within %(days)d days.",
                    kept,
                ) % {"kept": kept, "days": UNUSED_DAYS}
            if exceptions:
                message += " " + ngettext(
                    "Kept %(count)d exception(s) (deny entries): a clean-up never disables them.",
                    "Kept %(count)d exception(s) (deny entries): a clean-up never disables them.",
                    exceptions,
                ) % {"count": exceptions}
            self.message_user(request, message, messages.SUCCESS)

    @admin.action(description=_("Move selected origins to a policy"), permissions=["change"])
    def move_to_policy(self, request: HttpRequest, queryset: QuerySet[AllowedOrigin]) -> HttpResponse | None:
        data, page = ask_action_form(
            self,
            request,
            queryset,
            PolicyChoiceForm,
            gettext("Move to policy"),
            "move_to_policy",
            extra=lambda: widening_context(
                queryset
            ),  # an exception moved out of its policy stops refusing there
        )
        if page is not None:
            return page
        count = self._update_each(request, queryset, policy=data["policy"])  # type: ignore[index]
        if count is not None:
            message = ngettext(
                "Moved %(count)d origin(s) to %(policy)s.", "Moved %(count)d origin(s) to %(policy)s.", count
            ) % {"count": count, "policy": data["policy"]}  # type: ignore[index]
            self.message_user(request, message, messages.SUCCESS)
        return None

    @admin.action(description=_("Set expiry of selected origins"), permissions=["change"])
    def set_expiry(self, request: HttpRequest, queryset: QuerySet[AllowedOrigin]) -> HttpResponse | None:
        data, page = ask_action_form(
            self,
            request,
            queryset,
            ExpiryForm,
            gettext("Set expiry"),
            "set_expiry",
            # An exception that expires stops refusing: what it refuses becomes allowed then.
            extra=lambda: {**widening_context(queryset), "widening_at_expiry": True},
        )
        if page is not None:
            return page
        count = self._update_each(request, queryset, expires_at=data["expires_at"])  # type: ignore[index]
        if count is not None:
            message = ngettext(
                "Set the expiry of %(count)d origin(s).", "Set the expiry of %(count)d origin(s).", count
            )
            self.message_user(request, message % {"count": count}, messages.SUCCESS)
        return None


class RefusedOriginActions(_RefusedOriginAdmin):
    """The bulk actions of the refused origins' list (``RefusedOriginAdmin.actions``)."""

    def has_allow_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("corsadmin.add_allowedorigin")

    def has_dismiss_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("corsadmin.delete_refusedorigin")

    @admin.action(description=_("Allow selected origins…"), permissions=["allow"])
    def allow(self, request: HttpRequest, queryset: QuerySet[RefusedOrigin]) -> HttpResponse | None:
        data, page = ask_action_form(
            self, request, queryset, PolicyChoiceForm, gettext("Allow in policy"), "allow"
        )
        if page is not None:
            return page
        policy = data["policy"]  # type: ignore[index]
        origin_admin = self.admin_site._registry[AllowedOrigin]
        added, problems = [], []
        for refused in queryset:
            entry, reason = allow_origin(
                origin_admin, request, refused.origin, policy, gettext("allowed from refused origins")
            )
            if entry is None:
                problems.append(html("%(origin)s: %(reason)s", origin=refused.origin, reason=reason))
                continue
            added.append(entry.origin)
        queryset.filter(origin__in=added).update(dismissed=True)
        if added:
            message = gettext("Allowed %(origins)s in policy %(policy)s.") % {
                "origins": ", ".join(added),
                "policy": policy,
            }
            self.message_user(request, message, messages.SUCCESS)
        for problem in problems:
            self.message_user(
                request, html(gettext("Not allowed: %(problem)s"), problem=problem), messages.ERROR
            )
        return None

    @admin.action(description=_("Dismiss selected refused origins"), permissions=["dismiss"])
    def dismiss(self, request: HttpRequest, queryset: QuerySet[RefusedOrigin]) -> None:
        count = queryset.update(dismissed=True)
        message = ngettext(
            "Dismissed %(count)d refused origin(s).", "Dismissed %(count)d refused origin(s).", count
        )
        self.message_user(request, message % {"count": count}, messages.SUCCESS)
