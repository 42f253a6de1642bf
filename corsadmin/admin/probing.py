"""The admin's Probe page (``AllowedOriginAdmin.get_urls``): the real preflight and request sent to a
URL through the edge, each engine's verdict, corsadmin's decision beside it, the disagreements.

Behind ``corsadmin.probe_edge`` (and reading the allow-list); a POST, as it sends requests.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from .. import edge, probe
from ..fields import Refusal
from ..models import AllowedOrigin

PROBE_EDGE = "corsadmin.probe_edge"


class ProbeForm(forms.Form):
    url = forms.CharField(
        max_length=probe.MAX_URL_LENGTH,
        strip=False,
        label=_("URL"),
        help_text=_(
            "Absolute http:// or https:// URL of a host that may be probed (CORSADMIN['PROBE_HOSTS'])"
        ),
    )
    origin = forms.CharField(
        max_length=300,
        strip=False,
        label=_("Origin"),
        help_text=_("The page's origin, e.g. https://app.example.com"),
    )
    method = forms.CharField(max_length=32, initial="GET", label=_("Method"))
    headers = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        label=_("Request headers"),
        help_text=_("Headers the page sets, one a line: Name or Name: value"),
    )
    credentials = forms.ChoiceField(
        choices=[(mode, mode) for mode in probe.CREDENTIALS], initial="same-origin", label=_("Credentials")
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if self.errors:
            return data
        lines = [line for line in data.get("headers", "").splitlines() if line.strip()]
        try:
            data["question"] = probe.question(
                data["url"], data["origin"], data["method"], lines, data["credentials"]
            )
        except Refusal as exc:
            assert isinstance(exc.detail, dict)
            for name, messages in exc.detail.items():
                for message in messages:
                    self.add_error(name, message)
        return data


def probe_view(origin_admin: admin.ModelAdmin[AllowedOrigin], request: HttpRequest) -> HttpResponse:
    if not (origin_admin.has_view_permission(request) and request.user.has_perm(PROBE_EDGE)):
        raise PermissionDenied
    form = ProbeForm(request.POST if request.method == "POST" else None)
    result = None
    if form.is_bound and form.is_valid():
        result = edge.run(form.cleaned_data["question"])
        result["exchanges"] = [
            (label, result[key])
            for key, label in (("preflight", gettext("Preflight")), ("response", gettext("Request")))
            if result[key] is not None
        ]
    context = {
        **origin_admin.admin_site.each_context(request),
        "title": gettext("Probe the real edge"),
        "form": form,
        "result": result,
        "opts": origin_admin.model._meta,
    }
    return TemplateResponse(request, "admin/corsadmin/probe.html", context)
