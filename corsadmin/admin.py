from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.actions import delete_selected as django_delete_selected
from django.contrib.admin.widgets import AdminSplitDateTime
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Count, Q, QuerySet
from django.forms.models import BaseInlineFormSet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import conditional_escape, format_html, format_html_join
from django.utils.safestring import SafeString
from django.utils.text import format_lazy
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from . import conf, writes
from .diagnosis import explain
from .forms import AllowedOriginForm, PolicyForm, exception_link, html
from .history import change_message, field_values
from .models import (
    EXPIRES_SOON,
    NULL_WITH_CREDENTIALS,
    PAST_EXPIRY,
    AllowedOrigin,
    Policy,
    RefusedOrigin,
    expiry_in_past,
    shared_hosting_wildcards,
)
from .origins import NULL, shared_hosting_refusal
from .usage import hits_of, unused, with_usage
from .visible import one_line, visible_text
from .wording import entry_status

if TYPE_CHECKING:
    from django_stubs_ext import StrOrPromise

UNUSED_CHOICES = (30, 90)
UNUSED_DAYS = 30  # the "disable unused" action's
ALL = _("All")


def _when(value: Any) -> str:
    """A time as the admin shows every time: its localized DATETIME_FORMAT in the current time
    zone (``Dec. 7, 2026, 1:27 a.m.`` in English); "-" for none."""
    return date_format(timezone.localtime(value), "DATETIME_FORMAT") if value else "-"


def _cut(text: str) -> str:
    """Text on one line, cut with an ellipsis by CSS, whole on hover."""
    return format_html('<span class="corsadmin-cut" title="{}">{}</span>', text, text) if text else ""


def _lines(lines: list[str]) -> str:
    """A folded column: one line each (the first is the column's main word)."""
    return format_html_join("", '<span class="corsadmin-line">{}</span>', ((line,) for line in lines))


class CorsadminMedia:
    """The app's stylesheet on its admin pages: one-line origins, fixed-width lists, marked
    escapes of control and bidi characters (corsadmin/static/corsadmin/admin.css)."""

    class Media:
        css = {"all": ("corsadmin/admin.css",)}


def _compact(number: int) -> str:
    """1234 -> "1.2k", 5600000 -> "5.6M"."""
    for limit, suffix in ((1_000_000_000, "G"), (1_000_000, "M"), (1_000, "k")):
        if number >= limit:
            return f"{number / limit:.1f}".rstrip("0").rstrip(".") + suffix
    return str(number)


class ExpiredFilter(admin.SimpleListFilter):
    title = _("expiry")
    parameter_name = "expired"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, StrOrPromise]]:
        return [("yes", _("Expired")), ("soon", _("Expires within 7 days")), ("no", _("Not expired"))]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
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

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, StrOrPromise]]:
        return [(str(days), gettext("Unused for %(days)d days") % {"days": days}) for days in UNUSED_CHOICES]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value() in {str(days) for days in UNUSED_CHOICES}:
            return queryset.filter(unused(int(self.value())))  # type: ignore[arg-type]
        return queryset


class PolicyChoiceForm(forms.Form):
    policy = forms.ModelChoiceField(
        Policy.objects.all(), to_field_name="name", initial="default", label=_("Policy")
    )


class ExpiryForm(forms.Form):
    expires_at = forms.SplitDateTimeField(
        required=False,
        widget=AdminSplitDateTime,
        label=_("Expires at"),
        help_text=_("Leave empty to never expire."),
    )

    def clean_expires_at(self) -> Any:
        value = self.cleaned_data["expires_at"]
        if expiry_in_past(value):
            raise ValidationError(PAST_EXPIRY, code="past_expiry")
        return value


class CheckForm(forms.Form):
    origin = forms.CharField(
        max_length=2048,
        label=_("Origin"),
        help_text=_("As the browser sends it, e.g. https://app.example.com"),
    )
    path = forms.CharField(
        max_length=2048, initial="/", label=_("Path"), help_text=_("The request path, e.g. /api/items/")
    )
    method = forms.CharField(max_length=20, initial="GET", label=_("Method"))
    request_headers = forms.CharField(
        max_length=2048,
        required=False,
        label=_("Request headers"),
        help_text=_("Headers the page sets, comma-separated (e.g. content-type, x-api-key)"),
    )
    host = forms.CharField(
        max_length=300,
        required=False,
        label=_("Host"),
        help_text=_("The request's Host, for policies limited to hosts (e.g. api.example.com)"),
    )

    def clean_host(self) -> str | None:
        value = self.cleaned_data["host"].strip()
        if not value:
            return None
        from django.http.request import split_domain_port

        from .hosts import canonical_host

        domain, _port = split_domain_port(value)
        if not domain or "*" in domain:
            raise ValidationError(
                gettext("'%(value)s' is not a request host: give e.g. api.example.com.") % {"value": value}
            )
        return canonical_host(domain)


def _widening(queryset: QuerySet) -> dict[str, Any]:
    """For a page about to disable, delete or move the selected origins: the exceptions (deny
    entries) among them, and the origins their going would allow (``corsadmin.widening``)."""
    from .widening import openings

    denies, opened = openings(queryset.select_related("policy"))
    return {"widening_denies": denies, "widening_openings": opened}


def _ask_action_form(
    model_admin: admin.ModelAdmin,
    request: HttpRequest,
    queryset: QuerySet,
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


def _allow(
    origin_admin: admin.ModelAdmin, request: HttpRequest, origin: str, policy: Policy, note: str
) -> tuple[AllowedOrigin | None, str]:
    """Add a refused ``origin`` to ``policy`` for the user: validated, saved and recorded in
    the history together. (The entry, "") or (None, why it was not added)."""
    from .widening import refusing

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
            return None, _refused_by_exception(entry.origin, denies[0])

        def write() -> None:
            entry.save()
            origin_admin.log_addition(request, entry, [{"added": {}}])

        writes.run(write)
    except (ValidationError, IntegrityError) as exc:
        listed = entry.listed_exception() if entry.policy_id else None
        if listed is not None:
            return None, _refused_by_exception(entry.origin, listed)
        return None, conditional_escape("; ".join(getattr(exc, "messages", [str(exc)])))
    return entry, ""


REFUSED_BY_EXCEPTION = _(
    "the exception (deny entry) %(deny)s in policy %(policy)s refuses it. To allow it, change that "
    "entry (make it an allow entry, or disable or delete it): %(link)s"
)


def _refused_by_exception(origin: str, deny: AllowedOrigin) -> SafeString:
    """Why an origin is not added: an exception in its policy, named, with a link to change it."""
    return html(
        str(REFUSED_BY_EXCEPTION), deny=deny.origin, policy=deny.policy.name, link=exception_link(deny)
    )


class OneLockOrderMixin:
    """The admin's saves and deletes as every write: the generation row locked first, a
    conflict retried once (``corsadmin.writes``)."""

    def changeform_view(
        self,
        request: HttpRequest,
        object_id: str | None = None,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        view = super().changeform_view  # type: ignore[misc]
        if request.method in ("GET", "HEAD", "OPTIONS", "TRACE"):
            return view(request, object_id, form_url, extra_context)
        return writes.run(lambda: view(request, object_id, form_url, extra_context))

    def delete_view(
        self, request: HttpRequest, object_id: str, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        view = super().delete_view  # type: ignore[misc]
        if request.method in ("GET", "HEAD", "OPTIONS", "TRACE"):
            return view(request, object_id, extra_context)
        return writes.run(lambda: view(request, object_id, extra_context))


class HistoryValuesMixin:
    """Admin change messages with old -> new values, as the API and the CLI write them."""

    def construct_change_message(
        self, request: HttpRequest, form: Any, formsets: Any, add: bool = False
    ) -> Any:
        message = super().construct_change_message(request, form, formsets, add)  # type: ignore[misc]
        model = form._meta.model
        concrete = {f.name for f in model._meta.concrete_fields}
        names = [name for name in form.changed_data if name in concrete]
        if add or not names:
            return message
        after = field_values(form.instance)
        before = {name: form.initial.get(name) for name in names}
        values = change_message(model, before, after, names)[0]["changed"]["values"]
        for item in message:
            if "changed" in item and "object" not in item["changed"]:
                item["changed"]["values"] = values
        return message


class OriginInlineFormSet(BaseInlineFormSet):
    """The policy's origins judged with the policy as submitted (e.g. credentials just ticked)."""

    def clean(self) -> None:
        super().clean()
        self._refuse_deleting_exceptions()
        policy = self.instance
        if not policy.allow_credentials:
            return
        for form in self.forms:
            data = getattr(form, "cleaned_data", None) or {}
            if data.get("DELETE") or data.get("effect") == AllowedOrigin.DENY:
                continue
            origin = data.get("origin")
            if origin == NULL and not conf.get("ALLOW_NULL_WITH_CREDENTIALS"):
                form.add_error("origin", NULL_WITH_CREDENTIALS)
            elif isinstance(origin, str) and "*." in origin:
                for text, platform in shared_hosting_wildcards([origin]):
                    form.add_error("origin", shared_hosting_refusal(text, platform))

    def _refuse_deleting_exceptions(self) -> None:
        """An exception (deny entry) in force is not deleted here, where nothing could name what
        its going allows and ask first: the origins list's delete does both."""
        doomed = [form for form in self.forms if self._should_delete_form(form) and form.instance.pk]  # type: ignore[attr-defined]
        if not doomed:
            return
        in_force = (
            AllowedOrigin.objects.filter(pk__in=[form.instance.pk for form in doomed], enabled=True)
            .filter(effect=AllowedOrigin.DENY)
            .exclude(expires_at__lte=timezone.now())
            .order_by("origin")
            .values_list("origin", flat=True)
        )
        # A formset error: an error on a form marked for deletion would not stop the save.
        if in_force:
            raise ValidationError(
                [EXCEPTION_DELETED_INLINE % {"origin": origin} for origin in in_force], code="exception"
            )


EXCEPTION_DELETED_INLINE = _(
    "The exception (deny entry) %(origin)s is in force: deleting it allows what it refuses. Delete it "
    'from the list of allowed origins (select it, then "Delete selected"), which names the origins '
    "that become allowed and asks first; or untick Delete to keep it. Nothing was saved."
)


class AllowedOriginInline(admin.TabularInline):
    model = AllowedOrigin
    form = AllowedOriginForm
    formset = OriginInlineFormSet
    extra = 1
    fields = ("origin", "effect", "enabled", "expires_at", "csrf_trusted", "note")
    show_change_link = True


def settings_policy_rows() -> list[tuple[str, Any]]:
    if not conf.has_settings_policy():
        return []
    return [(name, conf.cors_setting(name)) for name in conf.CORS_SETTINGS]


@admin.register(Policy)
class PolicyAdmin(CorsadminMedia, OneLockOrderMixin, HistoryValuesMixin, admin.ModelAdmin):
    form = PolicyForm
    inlines = [AllowedOriginInline]
    # Fits 1280 px beside the navigation and the filters: the name, regex and hosts on one line
    # each (cut, whole on hover), enabled / mode / allow-all / credentials folded into "state".
    list_display = (
        "name_shown",
        "regex_shown",
        "hosts_shown",
        "priority",
        "state",
        "active_origins",
        "updated",
    )
    list_filter = ("enabled", "mode", "allow_credentials", "allow_all_origins")
    search_fields = ("name", "note", "url_regex")
    readonly_fields = ("created_at", "updated_at")
    fieldsets = (
        (None, {"fields": ("name", "url_regex", "hosts", "priority", "mode", "enabled", "note")}),
        (_("Origins"), {"fields": ("allow_all_origins", "allow_credentials")}),
        (
            _("Headers"),
            {
                "fields": (
                    "allow_methods",
                    "allow_headers",
                    "expose_headers",
                    "max_age",
                    "allow_private_network",
                )
            },
        ),
        (_("History"), {"fields": ("created_at", "updated_at")}),
    )

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        active = Q(origins__enabled=True) & (
            Q(origins__expires_at__isnull=True) | Q(origins__expires_at__gt=timezone.now())
        )
        return super().get_queryset(request).annotate(_active=Count("origins", filter=active))

    @admin.display(description=_("name"), ordering="name")
    def name_shown(self, obj: Policy) -> str:
        return _cut(obj.name)

    @admin.display(description=_("URL regex"), ordering="url_regex")
    def regex_shown(self, obj: Policy) -> str:
        return format_html('<code class="corsadmin-cut" title="{}">{}</code>', obj.url_regex, obj.url_regex)

    @admin.display(description=_("hosts"))
    def hosts_shown(self, obj: Policy) -> str:
        return _cut(", ".join(obj.hosts) if obj.hosts else gettext("every host"))

    @admin.display(description=_("state"), ordering="enabled")
    def state(self, obj: Policy) -> str:
        lines = [gettext("enabled") if obj.enabled else gettext("disabled")]
        if obj.mode == Policy.REPORT:
            lines.append(gettext("report-only"))
        if obj.allow_all_origins:
            lines.append(gettext("all origins"))
        if obj.allow_credentials:
            lines.append(gettext("credentials"))
        return _lines(lines)

    @admin.display(description=_("updated"), ordering="updated_at")
    def updated(self, obj: Policy) -> str:
        return _when(obj.updated_at)

    @admin.display(description=_("active origins"), ordering="_active")
    def active_origins(self, obj: Policy) -> int:
        return obj._active  # type: ignore[attr-defined]

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        extra_context = {**(extra_context or {}), "settings_policy": settings_policy_rows()}
        return super().changelist_view(request, extra_context)

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        """Saved, then warned as the API warns: the policy's plain http:// origins while it allows
        credentials, and each inline entry written: its own risks, what changing an exception
        opened, the exceptions that leave an allow entry allowing nothing."""
        from .widening import ChangeWatch, write_warnings

        inline = [formset for formset in formsets if formset.model is AllowedOrigin]
        edited = [f.instance.pk for formset in inline for f in formset.initial_forms if f.has_changed()]
        exceptions = AllowedOrigin.objects.select_related("policy").filter(
            pk__in=edited, effect=AllowedOrigin.DENY
        )
        watches = {entry.pk: ChangeWatch(entry) for entry in exceptions}  # as stored, before the save
        super().save_related(request, form, formsets, change)
        said = list(form.instance.warnings())
        for formset in inline:
            for entry in [*formset.new_objects, *(obj for obj, _fields in formset.changed_objects)]:
                said += [
                    w
                    for w in [*entry.warnings(), *write_warnings(entry, watches.get(entry.pk))]
                    if w not in said
                ]
        for warning in said:
            self.message_user(request, warning, messages.WARNING)

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: bool) -> None:
        if formset.model is AllowedOrigin:
            for instance in formset.save(commit=False):
                if instance.pk is None:
                    instance.created_by = request.user
        super().save_formset(request, form, formset, change)


@admin.register(AllowedOrigin)
class AllowedOriginAdmin(CorsadminMedia, OneLockOrderMixin, HistoryValuesMixin, admin.ModelAdmin):
    form = AllowedOriginForm
    # Fits a 1280 px screen beside the admin's navigation and the filters (a fixed table,
    # corsadmin/admin.css): the origin on one line, cut with an ellipsis (whole on hover), its
    # note on a quiet line below (cut too); "status" folds the effect, the expiry and CSRF
    # trust; usage is one narrow column (requests; when last seen on hover).
    list_display = ("origin_shown", "policy_shown", "status", "hits", "changed")
    list_filter = ("policy", "effect", "enabled", ExpiredFilter, UnusedFilter, "csrf_trusted")
    search_fields = ("origin", "note")
    list_select_related = ("policy",)
    readonly_fields = ("created_at", "updated_at", "created_by", "hits", "last_seen")
    actions = ("enable", "disable", "disable_unused", "move_to_policy", "set_expiry", "delete_selected")

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return with_usage(super().get_queryset(request))

    @admin.display(description=_("hits"), ordering="hits")
    def hits(self, obj: AllowedOrigin) -> str:
        hits, last_seen = hits_of(obj)
        if obj.is_deny:  # an exception's hits are the requests it refused
            seen = gettext("denied %(hits)s requests, last %(when)s") % {
                "hits": hits,
                "when": _when(last_seen) if last_seen else gettext("never"),
            }
        elif last_seen:
            seen = gettext("%(hits)s requests, last seen %(when)s") % {
                "hits": hits,
                "when": _when(last_seen),
            }
        else:
            seen = gettext("%(hits)s requests, never seen") % {"hits": hits}
        return format_html('<span title="{}">{}</span>', seen, _compact(hits))

    @admin.display(description=_("last seen"), ordering="last_seen")
    def last_seen(self, obj: AllowedOrigin) -> str:
        last_seen = hits_of(obj)[1]
        return _when(last_seen) if last_seen else gettext("never")

    @admin.display(description=_("origin"), ordering="origin")
    def origin_shown(self, obj: AllowedOrigin) -> str:
        if not obj.note:
            return one_line(obj.origin)
        note = format_html(
            '<span class="corsadmin-cut corsadmin-note" title="{}">{}</span>', obj.note, obj.note
        )
        return format_html("{}{}", one_line(obj.origin), note)

    @admin.display(description=_("policy"), ordering="policy__name")
    def policy_shown(self, obj: AllowedOrigin) -> str:
        return _cut(obj.policy.name)

    @admin.display(description=_("status"), ordering="enabled")
    def status(self, obj: AllowedOrigin) -> str:
        """The status (``corsadmin.wording``, as the API and the CLI say it), then the expiry
        and CSRF trust, one line each."""
        lines = [entry_status(obj)]
        if obj.expires_at is not None:
            expired = obj.expires_at <= timezone.now()
            template = gettext("expired %(when)s") if expired else gettext("until %(when)s")
            lines.append(template % {"when": _when(obj.expires_at)})
        if obj.csrf_trusted:
            lines.append(gettext("CSRF trusted"))
        return _lines(lines)

    @admin.display(description=_("changed"), ordering="updated_at")
    def changed(self, obj: AllowedOrigin) -> str:
        return _when(obj.updated_at)

    def get_urls(self) -> list[Any]:
        return [
            path("check/", self.admin_site.admin_view(self.check_view), name="corsadmin_check"),
            path("overview/", self.admin_site.admin_view(self.overview_view), name="corsadmin_overview"),
            path(
                "overview/allow/",
                self.admin_site.admin_view(self.overview_allow),
                name="corsadmin_overview_allow",
            ),
            *super().get_urls(),
        ]

    def check_view(self, request: HttpRequest) -> HttpResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        form = CheckForm(request.GET if "origin" in request.GET else None)
        result = allow_url = edit_url = None
        if form.is_bound and form.is_valid():
            data = form.cleaned_data
            result = explain(
                data["origin"],
                data["path"],
                data["method"].upper(),
                request_headers=data["request_headers"],
                host=data["host"],
            )
            if not result["allowed"]:
                allow_url, edit_url = self._fixes(request, result)
        context = {
            **self.admin_site.each_context(request),
            "title": gettext("Check an origin"),
            "form": form,
            "result": result,
            "allow_url": allow_url,
            "edit_url": edit_url,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/corsadmin/check.html", context)

    def overview_view(self, request: HttpRequest) -> HttpResponse:
        """Allowed vs refused requests per policy, the most refused origins, what expires or
        is unused, and recent changes: one page to look at."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        from . import overview, usage

        context = {
            **self.admin_site.each_context(request),
            **overview.context(usage.now()),
            "title": gettext("CORS overview"),
            "opts": self.model._meta,
            "can_allow": self.has_add_permission(request),
        }
        return TemplateResponse(request, "admin/corsadmin/overview.html", context)

    def overview_allow(self, request: HttpRequest) -> HttpResponse:
        """The overview's Allow button: add a refused origin to the policy covering its path."""
        from django.http import HttpResponseNotAllowed, HttpResponseRedirect

        from .overview import covering_policy

        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not self.has_add_permission(request):
            raise PermissionDenied
        origin = request.POST.get("origin", "")
        path_prefix = request.POST.get("path", "/") or "/"
        policy = covering_policy(path_prefix)
        back = HttpResponseRedirect(reverse("admin:corsadmin_overview"))
        if policy is None:
            self.message_user(
                request, gettext("Not allowed: there is no policy to add it to."), messages.ERROR
            )
            return back
        entry, reason = _allow(self, request, origin, policy, gettext("allowed from the overview"))
        if entry is None:
            refusal = html(gettext("Not allowed: %(origin)s: %(reason)s"), origin=origin, reason=reason)
            self.message_user(request, refusal, messages.ERROR)
            return back
        RefusedOrigin.objects.filter(origin=entry.origin).update(dismissed=True)
        message = gettext("Allowed %(origin)s in policy %(policy)s.") % {
            "origin": entry.origin,
            "policy": policy.name,
        }
        self.message_user(request, message, messages.SUCCESS)
        return back

    def _fixes(self, request: HttpRequest, result: dict[str, Any]) -> tuple[str | None, str | None]:
        """(Allow link, Edit-policy link) for a refusal: editing the policy when the origin is
        allowed but its preflight lists too few methods or headers; else allowing the origin
        in the policy that covers the path."""
        from .refresh import holder

        preflight = result["preflight"]
        policy_admin = self.admin_site._registry.get(Policy)
        if preflight and result["policy"] and preflight["headers"] and not preflight["allowed"]:
            policy = Policy.objects.filter(name=result["policy"]).first()
            if (
                policy is not None
                and policy_admin is not None
                and policy_admin.has_change_permission(request, policy)
            ):
                return None, reverse("admin:corsadmin_policy_change", args=[policy.pk])
            return None, None
        if not self.has_add_permission(request) or result.get("effect") == "deny":
            return None, None  # refused by an exception: allowing it means changing that entry
        query = {"origin": result["origin"]}
        covering = [p.name for p in holder.get().policies if p.match_path(result["path"])]
        policy_pk = Policy.objects.filter(name__in=covering[:1]).values_list("pk", flat=True).first()
        if policy_pk is not None:
            query["policy"] = str(policy_pk)
        return reverse("admin:corsadmin_allowedorigin_add") + "?" + urlencode(query), None

    def save_model(self, request: HttpRequest, obj: AllowedOrigin, form: Any, change: bool) -> None:
        from .widening import ChangeWatch, write_warnings

        if not change:
            obj.created_by = request.user  # type: ignore[assignment]
        # The row as stored, before this save: what changing an exception opens (as the API says).
        before = AllowedOrigin.objects.select_related("policy").filter(pk=obj.pk).first() if change else None
        watch = ChangeWatch(before) if before is not None else None
        super().save_model(request, obj, form, change)
        for warning in [*obj.warnings(), *write_warnings(obj, watch)]:
            self.message_user(request, warning, messages.WARNING)

    def _update_each(self, request: HttpRequest, queryset: QuerySet, **values: Any) -> int | None:
        """Change the selected origins one by one, validated as the form validates them.

        All or nothing: when any origin is refused, nothing changes and the reasons are
        shown (one message per origin); returns None then. Each save bumps
        ``updated_at`` and is announced like any other save, with one history entry.
        """

        from .widening import write_warnings

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
    def enable(self, request: HttpRequest, queryset: QuerySet) -> None:
        count = self._update_each(request, queryset, enabled=True)
        if count is not None:
            message = ngettext("Enabled %(count)d origin(s).", "Enabled %(count)d origin(s).", count)
            self.message_user(request, message % {"count": count}, messages.SUCCESS)

    def _confirm_widening(
        self, request: HttpRequest, queryset: QuerySet, action: str, confirm_label: str
    ) -> HttpResponse | None:
        """A page naming what disabling the selected exceptions (deny entries) would allow,
        until it is confirmed; None when confirmed or when no exception in force is selected."""
        if request.POST.get("confirm_widening") == "1":
            return None
        widening = _widening(queryset)
        if not widening["widening_denies"]:
            return None
        context = {
            **self.admin_site.each_context(request),
            **widening,
            "title": gettext("Allow what the exceptions refuse?"),
            "confirm_label": confirm_label,
            "queryset": queryset,
            "action": action,
            "opts": self.model._meta,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "admin/corsadmin/confirm_widening.html", context)

    @admin.action(description=_("Disable selected origins"), permissions=["change"])
    def disable(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse | None:
        page = self._confirm_widening(request, queryset, "disable", gettext("Yes, disable them"))
        if page is not None:
            return page
        count = self._update_each(request, queryset, enabled=False)
        if count is not None:
            message = ngettext("Disabled %(count)d origin(s).", "Disabled %(count)d origin(s).", count)
            self.message_user(request, message % {"count": count}, messages.SUCCESS)
        return None

    @admin.action(description=_("Delete selected %(verbose_name_plural)s"), permissions=["delete"])
    def delete_selected(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse | None:
        """Django's, whose confirmation page also names what deleting exceptions would allow."""
        response = django_delete_selected(self, request, queryset)
        if isinstance(response, TemplateResponse) and response.context_data is not None:
            response.context_data.update(_widening(queryset))
        return response

    def render_delete_form(self, request: HttpRequest, context: dict[str, Any]) -> HttpResponse:
        obj = context.get("object")
        if isinstance(obj, AllowedOrigin) and obj.is_deny:
            context.update(_widening(AllowedOrigin.objects.filter(pk=obj.pk)))
            context["widening_denies"] = [obj] if context["widening_denies"] else []  # with its hits
        return super().render_delete_form(request, context)

    @admin.action(
        description=format_lazy(_("Disable selected origins unused for {days} days"), days=UNUSED_DAYS),
        permissions=["change"],
    )
    def disable_unused(self, request: HttpRequest, queryset: QuerySet) -> None:
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
    def move_to_policy(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse | None:
        data, page = _ask_action_form(
            self,
            request,
            queryset,
            PolicyChoiceForm,
            gettext("Move to policy"),
            "move_to_policy",
            extra=lambda: _widening(queryset),  # an exception moved out of its policy stops refusing there
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
    def set_expiry(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse | None:
        data, page = _ask_action_form(
            self,
            request,
            queryset,
            ExpiryForm,
            gettext("Set expiry"),
            "set_expiry",
            # An exception that expires stops refusing: what it refuses becomes allowed then.
            extra=lambda: {**_widening(queryset), "widening_at_expiry": True},
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


class DismissedFilter(admin.SimpleListFilter):
    title = _("dismissed")
    parameter_name = "dismissed"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, StrOrPromise]]:
        return [("no", _("Not dismissed (default)")), ("yes", _("Dismissed")), ("all", ALL)]

    def choices(self, changelist: Any) -> Any:
        for choice in super().choices(changelist):
            if str(choice["display"]) == str(ALL) and choice["query_string"].endswith("?"):
                continue
            yield choice

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        value = self.value() or "no"
        if value == "all":
            return queryset
        return queryset.filter(dismissed=(value == "yes"))


def allowed_now(refused: RefusedOrigin) -> bool:
    """Whether the allow-list allows this origin on this path now (allowed since it was refused)."""
    from .refresh import holder

    snapshot = holder.get()
    if refused.report:  # would the report-only policy, on its own, allow it now?
        return bool(snapshot.policy_allows(refused.policy, refused.origin))
    return snapshot.decide(refused.origin, refused.path_prefix).allowed


class AllowedNowFilter(admin.SimpleListFilter):
    title = _("allowed since")
    parameter_name = "allowed_now"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, StrOrPromise]]:
        return [("no", _("Still refused")), ("yes", _("Allowed since"))]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
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

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, StrOrPromise]]:
        paths = (
            model_admin.get_queryset(request).order_by("path_prefix").values_list("path_prefix", flat=True)
        )
        return [(path, visible_text(path)) for path in paths.distinct()]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value() is None:
            return queryset
        return queryset.filter(path_prefix=self.value())


@admin.register(RefusedOrigin)
class RefusedOriginAdmin(CorsadminMedia, admin.ModelAdmin):
    # Fits 1280 px beside the navigation and the filters: origin and path on one line each
    # (cut, whole on hover, control and bidi characters shown as escapes); allowed now,
    # dismissed and report-only folded into "status"; first seen on the last seen's hover.
    list_display = ("origin_shown", "path_shown", "count", "seen", "status")
    list_filter = (DismissedFilter, AllowedNowFilter, "report", PathFilter)
    search_fields = ("origin", "path_prefix", "policy")
    actions = ("allow", "dismiss")
    fields = (
        "origin_shown",
        "path_shown",
        "report",
        "policy",
        "count",
        "first_seen",
        "last_seen",
        "dismissed",
        "allowed_now",
        "fix",
    )
    readonly_fields = ("origin_shown", "path_shown", "allowed_now", "fix")

    @admin.display(description=_("allowed now"), boolean=True)
    def allowed_now(self, obj: RefusedOrigin) -> bool:
        return allowed_now(obj)

    @admin.display(description=_("origin"), ordering="origin")
    def origin_shown(self, obj: RefusedOrigin) -> str:
        return one_line(obj.origin)

    @admin.display(description=_("path"), ordering="path_prefix")
    def path_shown(self, obj: RefusedOrigin) -> str:
        return one_line(obj.path_prefix, "corsadmin-path")

    @admin.display(description=_("last seen"), ordering="last_seen")
    def seen(self, obj: RefusedOrigin) -> str:
        first = gettext("first seen %(when)s") % {"when": _when(obj.first_seen)}
        return format_html('<span title="{}">{}</span>', first, _when(obj.last_seen))

    @admin.display(description=_("status"))
    def status(self, obj: RefusedOrigin) -> str:
        lines = [gettext("allowed now") if allowed_now(obj) else gettext("still refused")]
        if obj.dismissed:
            lines.append(gettext("dismissed"))
        if obj.report:
            lines.append(gettext("report-only: %(policy)s") % {"policy": obj.policy})
        return _lines(lines)

    @admin.display(description=_("fix"))
    def fix(self, obj: RefusedOrigin) -> str:
        check = (
            reverse("admin:corsadmin_check")
            + "?"
            + urlencode({"origin": obj.origin, "path": obj.path_prefix, "method": "GET"})
        )
        query = {"origin": obj.origin}
        if obj.report:  # allow it where it would be refused: in the report-only policy
            policy_pk = Policy.objects.filter(name=obj.policy).values_list("pk", flat=True).first()
            if policy_pk is not None:
                query["policy"] = str(policy_pk)
        allow = reverse("admin:corsadmin_allowedorigin_add") + "?" + urlencode(query)
        return format_html(
            '<a class="button" id="refused-check" href="{}">{}</a> '
            '<a class="button" id="refused-allow" href="{}">{}</a>',
            check,
            gettext("Check"),
            allow,
            gettext("Allow…"),
        )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_allow_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("corsadmin.add_allowedorigin")

    def has_dismiss_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("corsadmin.delete_refusedorigin")

    @admin.action(description=_("Allow selected origins…"), permissions=["allow"])
    def allow(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse | None:
        data, page = _ask_action_form(
            self, request, queryset, PolicyChoiceForm, gettext("Allow in policy"), "allow"
        )
        if page is not None:
            return page
        policy = data["policy"]  # type: ignore[index]
        origin_admin = self.admin_site._registry[AllowedOrigin]
        added, problems = [], []
        for refused in queryset:
            entry, reason = _allow(
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
    def dismiss(self, request: HttpRequest, queryset: QuerySet) -> None:
        count = queryset.update(dismissed=True)
        message = ngettext(
            "Dismissed %(count)d refused origin(s).", "Dismissed %(count)d refused origin(s).", count
        )
        self.message_user(request, message % {"count": count}, messages.SUCCESS)
