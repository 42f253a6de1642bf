"""The admin's own pages, mounted by ``AllowedOriginAdmin.get_urls``: check an origin, and the overview."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.translation import gettext

from ..browser_check import check
from ..models import AllowedOrigin, Policy, RefusedOrigin
from .actions import allow_origin
from .forms import CheckForm, html
from .probing import probe_view as probe_view  # mounted with the others

ENGINE_LABELS = {"chromium": "Chromium", "firefox": "Firefox", "webkit": "WebKit (Safari)"}


def check_view(origin_admin: admin.ModelAdmin[AllowedOrigin], request: HttpRequest) -> HttpResponse:
    """Why an origin is allowed or refused on a path, with the headers, and the fix for a refusal."""
    if not origin_admin.has_view_permission(request):
        raise PermissionDenied
    form = CheckForm(request.GET if "origin" in request.GET else None)
    result = allow_url = edit_url = None
    if form.is_bound and form.is_valid():
        data = form.cleaned_data
        result = check(
            data["origin"],
            data["path"],
            data["method"],
            request_headers=data.get("request_headers") or None,
            host=data.get("host"),
            credentials=data["credentials"],
            url=data.get("url") or None,
            console=data.get("console"),
        )
        if not result["allowed"]:
            allow_url, edit_url = fixes(origin_admin, request, result)
    context = {
        **origin_admin.admin_site.each_context(request),
        "title": gettext("Check an origin"),
        "form": form,
        "result": result,
        # Proper names, not translated: (id, name, verdict) per engine.
        "engines": [(name, ENGINE_LABELS[name], verdict) for name, verdict in result["engines"].items()]
        if result
        else [],
        "allow_url": allow_url,
        "edit_url": edit_url,
        "opts": origin_admin.model._meta,
    }
    return TemplateResponse(request, "admin/corsadmin/check.html", context)


def fixes(
    origin_admin: admin.ModelAdmin[AllowedOrigin], request: HttpRequest, result: dict[str, Any]
) -> tuple[str | None, str | None]:
    """(Allow link, Edit-policy link) for the fix ``check`` offers: the add form with the origin
    and its policy chosen, and the change form of the policy to change."""
    allow_url = edit_url = None
    policy_admin = origin_admin.admin_site._registry.get(Policy)
    for step in result["fix"]:
        if step["action"] == "add_origin" and origin_admin.has_add_permission(request):
            query = {"origin": step["origin"]}
            policy_pk = Policy.objects.filter(name=step["policy"]).values_list("pk", flat=True).first()
            if policy_pk is not None:
                query["policy"] = str(policy_pk)
            allow_url = reverse("admin:corsadmin_allowedorigin_add") + "?" + urlencode(query)
        elif step["action"] == "change_policy" and policy_admin is not None:
            policy = Policy.objects.filter(name=step["policy"]).first()
            if policy is not None and policy_admin.has_change_permission(request, policy):
                edit_url = reverse("admin:corsadmin_policy_change", args=[policy.pk])
    return allow_url, edit_url


def overview_view(origin_admin: admin.ModelAdmin[AllowedOrigin], request: HttpRequest) -> HttpResponse:
    """Allowed vs refused requests per policy, the most refused origins, what expires or
    is unused, and recent changes: one page to look at."""
    if not origin_admin.has_view_permission(request):
        raise PermissionDenied
    from .. import overview, usage

    context = {
        **origin_admin.admin_site.each_context(request),
        **overview.context(usage.now()),
        "title": gettext("CORS overview"),
        "opts": origin_admin.model._meta,
        "can_allow": origin_admin.has_add_permission(request),
    }
    return TemplateResponse(request, "admin/corsadmin/overview.html", context)


def overview_allow(origin_admin: admin.ModelAdmin[AllowedOrigin], request: HttpRequest) -> HttpResponse:
    """The overview's Allow button: add a refused origin to the policy covering its path."""
    from ..overview import covering_policy

    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    if not origin_admin.has_add_permission(request):
        raise PermissionDenied
    origin = request.POST.get("origin", "")
    path_prefix = request.POST.get("path", "/") or "/"
    policy = covering_policy(path_prefix)
    back = HttpResponseRedirect(reverse("admin:corsadmin_overview"))
    if policy is None:
        origin_admin.message_user(
            request, gettext("Not allowed: there is no policy to add it to."), messages.ERROR
        )
        return back
    entry, reason = allow_origin(origin_admin, request, origin, policy, gettext("allowed from the overview"))
    if entry is None:
        refusal = html(gettext("Not allowed: %(origin)s: %(reason)s"), origin=origin, reason=reason)
        origin_admin.message_user(request, refusal, messages.ERROR)
        return back
    RefusedOrigin.objects.filter(origin=entry.origin).update(dismissed=True)
    message = gettext("Allowed %(origin)s in policy %(policy)s.") % {
        "origin": entry.origin,
        "policy": policy.name,
    }
    origin_admin.message_user(request, message, messages.SUCCESS)
    return back
