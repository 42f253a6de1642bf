"""The admin's ModelAdmins for policies, allowed origins and refused origins, with their inline and mixins."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import Count, Q, QuerySet
from django.forms.models import BaseInlineFormSet
from django.http import HttpRequest, HttpResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from .. import conf, writes
from ..history import change_message, field_values
from ..models import NULL_WITH_CREDENTIALS, AllowedOrigin, Policy, RefusedOrigin, shared_hosting_wildcards
from ..origins import NULL, shared_hosting_refusal
from ..usage import hits_of, with_usage
from ..visible import one_line
from ..wording import entry_status
from .actions import AllowedOriginActions, RefusedOriginActions, widening_context
from .display import compact, cut, folded, settings_policy_rows, when
from .filters import AllowedNowFilter, DismissedFilter, ExpiredFilter, PathFilter, UnusedFilter, allowed_now
from .forms import AllowedOriginForm, PolicyForm
from .preview import PreviewAdminMixin
from .views import check_view, overview_allow, overview_view, probe_view

if TYPE_CHECKING:
    _PolicyAdmin = admin.ModelAdmin[Policy]
    _OriginInline = admin.TabularInline[AllowedOrigin, Policy]
    _OriginInlineFormSet = BaseInlineFormSet[AllowedOrigin, Policy]
else:  # Django's admin and formset classes take type arguments in django-stubs only
    _PolicyAdmin = admin.ModelAdmin
    _OriginInline = admin.TabularInline
    _OriginInlineFormSet = BaseInlineFormSet


class CorsadminMedia:
    """The app's stylesheet on its admin pages: one-line origins, fixed-width lists, marked
    escapes of control and bidi characters (corsadmin/static/corsadmin/admin.css)."""

    class Media:
        css = {"all": ("corsadmin/admin.css",)}


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
        view: Callable[..., HttpResponse] = super().changeform_view  # type: ignore[misc]
        if request.method in ("GET", "HEAD", "OPTIONS", "TRACE"):
            return view(request, object_id, form_url, extra_context)
        return writes.run(lambda: view(request, object_id, form_url, extra_context))

    def delete_view(
        self, request: HttpRequest, object_id: str, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        view: Callable[..., HttpResponse] = super().delete_view  # type: ignore[misc]
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


class OriginInlineFormSet(_OriginInlineFormSet):
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


class AllowedOriginInline(_OriginInline):
    model = AllowedOrigin
    form = AllowedOriginForm
    formset = OriginInlineFormSet
    extra = 1
    fields = ("origin", "effect", "enabled", "expires_at", "cors", "csrf_trusted", "websocket", "note")
    show_change_link = True


class PolicyAdmin(CorsadminMedia, PreviewAdminMixin, OneLockOrderMixin, HistoryValuesMixin, _PolicyAdmin):
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

    def get_queryset(self, request: HttpRequest) -> QuerySet[Policy]:
        active = Q(origins__enabled=True) & (
            Q(origins__expires_at__isnull=True) | Q(origins__expires_at__gt=timezone.now())
        )
        return super().get_queryset(request).annotate(_active=Count("origins", filter=active))

    @admin.display(description=_("name"), ordering="name")
    def name_shown(self, obj: Policy) -> str:
        return cut(obj.name)

    @admin.display(description=_("URL regex"), ordering="url_regex")
    def regex_shown(self, obj: Policy) -> str:
        return format_html('<code class="corsadmin-cut" title="{}">{}</code>', obj.url_regex, obj.url_regex)

    @admin.display(description=_("hosts"))
    def hosts_shown(self, obj: Policy) -> str:
        return cut(", ".join(obj.hosts) if obj.hosts else gettext("every host"))

    @admin.display(description=_("state"), ordering="enabled")
    def state(self, obj: Policy) -> str:
        lines = [gettext("enabled") if obj.enabled else gettext("disabled")]
        if obj.mode == Policy.REPORT:
            lines.append(gettext("report-only"))
        if obj.allow_all_origins:
            lines.append(gettext("all origins"))
        if obj.allow_credentials:
            lines.append(gettext("credentials"))
        return folded(lines)

    @admin.display(description=_("updated"), ordering="updated_at")
    def updated(self, obj: Policy) -> str:
        return when(obj.updated_at)

    @admin.display(description=_("active origins"), ordering="_active")
    def active_origins(self, obj: Policy) -> int:
        active: int = obj._active  # type: ignore[attr-defined]  # get_queryset's annotation
        return active

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        extra_context = {**(extra_context or {}), "settings_policy": settings_policy_rows()}
        return super().changelist_view(request, extra_context)

    def save_related(self, request: HttpRequest, form: PolicyForm, formsets: Any, change: bool) -> None:
        """Saved, then warned as the API warns: the policy's plain http:// origins while it allows
        credentials, and each inline entry written: its own risks, what changing an exception
        opened, the exceptions that leave an allow entry allowing nothing."""
        from ..widening import ChangeWatch, write_warnings

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


class AllowedOriginAdmin(
    CorsadminMedia, PreviewAdminMixin, OneLockOrderMixin, HistoryValuesMixin, AllowedOriginActions
):
    form = AllowedOriginForm
    # Fits a 1280 px screen beside the admin's navigation and the filters (a fixed table,
    # corsadmin/admin.css): the origin on one line, cut with an ellipsis (whole on hover), its
    # note on a quiet line below (cut too); "status" folds the effect, the expiry and CSRF
    # trust; usage is one narrow column (requests; when last seen on hover).
    list_display = ("origin_shown", "policy_shown", "status", "hits", "changed")
    list_filter = ("policy", "effect", "enabled", ExpiredFilter, UnusedFilter, *AllowedOrigin.SCOPE_FLAGS)
    search_fields = ("origin", "note")
    list_select_related = ("policy",)
    readonly_fields = ("created_at", "updated_at", "created_by", "hits", "last_seen")
    actions = ("enable", "disable", "disable_unused", "move_to_policy", "set_expiry", "delete_selected")

    def get_queryset(self, request: HttpRequest) -> QuerySet[AllowedOrigin]:
        return with_usage(super().get_queryset(request))

    @admin.display(description=_("hits"), ordering="hits")
    def hits(self, obj: AllowedOrigin) -> str:
        hits, last_seen = hits_of(obj)
        if obj.is_deny:  # an exception's hits are the requests it refused
            seen = gettext("denied %(hits)s requests, last %(when)s") % {
                "hits": hits,
                "when": when(last_seen) if last_seen else gettext("never"),
            }
        elif last_seen:
            seen = gettext("%(hits)s requests, last seen %(when)s") % {
                "hits": hits,
                "when": when(last_seen),
            }
        else:
            seen = gettext("%(hits)s requests, never seen") % {"hits": hits}
        return format_html('<span title="{}">{}</span>', seen, compact(hits))

    @admin.display(description=_("last seen"), ordering="last_seen")
    def last_seen(self, obj: AllowedOrigin) -> str:
        last_seen = hits_of(obj)[1]
        return when(last_seen) if last_seen else gettext("never")

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
        return cut(obj.policy.name)

    @admin.display(description=_("status"), ordering="enabled")
    def status(self, obj: AllowedOrigin) -> str:
        """The status (``corsadmin.wording``, as the API and the CLI say it), then the expiry
        and CSRF trust, one line each."""
        lines = [entry_status(obj)]
        if obj.expires_at is not None:
            expired = obj.expires_at <= timezone.now()
            template = gettext("expired %(when)s") if expired else gettext("until %(when)s")
            lines.append(template % {"when": when(obj.expires_at)})
        if obj.csrf_trusted:
            lines.append(gettext("CSRF trusted"))
        if obj.websocket or not obj.cors:
            lines.append(gettext("scopes: %(scopes)s") % {"scopes": ", ".join(obj.scopes)})
        return folded(lines)

    @admin.display(description=_("changed"), ordering="updated_at")
    def changed(self, obj: AllowedOrigin) -> str:
        return when(obj.updated_at)

    def get_urls(self) -> list[URLPattern]:
        def mounted(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
            return self.admin_site.admin_view(partial(view, self))

        return [
            path("check/", mounted(check_view), name="corsadmin_check"),
            path("probe/", mounted(probe_view), name="corsadmin_probe"),
            path("overview/", mounted(overview_view), name="corsadmin_overview"),
            path("overview/allow/", mounted(overview_allow), name="corsadmin_overview_allow"),
            *super().get_urls(),
        ]

    def save_model(
        self, request: HttpRequest, obj: AllowedOrigin, form: AllowedOriginForm, change: bool
    ) -> None:
        from ..widening import ChangeWatch, write_warnings

        if not change:
            obj.created_by = request.user  # type: ignore[assignment]
        # The row as stored, before this save: what changing an exception opens (as the API says).
        before = AllowedOrigin.objects.select_related("policy").filter(pk=obj.pk).first() if change else None
        watch = ChangeWatch(before) if before is not None else None
        super().save_model(request, obj, form, change)
        for warning in [*obj.warnings(), *write_warnings(obj, watch)]:
            self.message_user(request, warning, messages.WARNING)

    def render_delete_form(self, request: HttpRequest, context: dict[str, Any]) -> HttpResponse:
        obj = context.get("object")
        if isinstance(obj, AllowedOrigin) and obj.is_deny:
            context.update(widening_context(AllowedOrigin.objects.filter(pk=obj.pk)))
            context["widening_denies"] = [obj] if context["widening_denies"] else []  # with its hits
        return super().render_delete_form(request, context)


class RefusedOriginAdmin(CorsadminMedia, RefusedOriginActions):
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
        first = gettext("first seen %(when)s") % {"when": when(obj.first_seen)}
        return format_html('<span title="{}">{}</span>', first, when(obj.last_seen))

    @admin.display(description=_("status"))
    def status(self, obj: RefusedOrigin) -> str:
        lines = [gettext("allowed now") if allowed_now(obj) else gettext("still refused")]
        if obj.dismissed:
            lines.append(gettext("dismissed"))
        if obj.report:
            lines.append(gettext("report-only: %(policy)s") % {"policy": obj.policy})
        return folded(lines)

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

    def has_change_permission(self, request: HttpRequest, obj: RefusedOrigin | None = None) -> bool:
        return False
