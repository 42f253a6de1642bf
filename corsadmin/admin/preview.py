"""The admin's **Preview** button, and the question before a save that would refuse traffic.

Change forms, delete pages and the change list's bulk actions alike: a POST with ``_preview``
runs the admin's own view (its form, its validation, its save, its history) inside
``corsadmin.preview``, which rolls it back, and shows the recent traffic it would flip
(``admin/corsadmin/preview.html``), with a button that makes the change. Any other POST that
writes is previewed the same way first: when it would refuse traffic seen in the last 24 hours
the same page asks before anything is saved; the button posts the form again with
``_confirmed_traffic``. A form with errors shows its errors, as without a preview.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.utils.translation import gettext as _

from .. import preview

PREVIEW = "_preview"
CONFIRMED = "_confirmed_traffic"
# What the page posts again: the form as submitted, but the token (its own) and the button.
_NOT_REPOSTED = {"csrfmiddlewaretoken", PREVIEW, CONFIRMED}


class _Discard:
    """The request's messages, but those of a rolled-back save ("... was changed
    successfully"), which are never shown."""

    def __init__(self, storage: Any) -> None:
        self.storage = storage

    def add(self, level: int, message: Any, extra_tags: str = "") -> None:
        pass

    def __iter__(self) -> Any:
        return iter(self.storage if self.storage is not None else ())

    def __len__(self) -> int:
        return len(self.storage) if self.storage is not None else 0


def _run(request: HttpRequest, call: Callable[[], HttpResponse]) -> tuple[preview.Preview, HttpResponse]:
    """``call()`` previewed: its flips, and its response (rendered before the rollback)."""
    answer: list[HttpResponse] = []
    messages = getattr(request, "_messages", None)

    def write() -> None:
        response = call()
        if isinstance(response, TemplateResponse):
            response.render()
        answer.append(response)

    request._messages = _Discard(messages)  # type: ignore[attr-defined]
    try:
        flips = preview.preview(write)
    finally:
        if messages is None:
            del request._messages  # type: ignore[attr-defined]
        else:
            request._messages = messages  # type: ignore[attr-defined]
    return flips, answer[0]


def _saved(response: HttpResponse) -> bool:
    """The admin answers a save, a delete or an action done with a redirect."""
    return isinstance(response, HttpResponseRedirect)


def _page(
    model_admin: Any, request: HttpRequest, flips: preview.Preview, asked: bool, data: Any
) -> TemplateResponse:
    opts = model_admin.model._meta
    fields = [(name, value) for name, values in data.lists() if name not in _NOT_REPOSTED for value in values]
    context = {
        **model_admin.admin_site.each_context(request),
        "opts": opts,
        "title": _("Preview of the change") if not asked else _("Refuse recent traffic?"),
        "asked": asked,
        "would_refuse": flips.would_refuse,
        "would_allow": flips.would_allow,
        "recent": preview.origins(flips.recent_refusals()),
        "fields": fields,
        "confirmed": CONFIRMED,
        "days": preview.WINDOW_DAYS,
        "hours": preview.CONFIRM_HOURS,
    }
    return TemplateResponse(request, "admin/corsadmin/preview.html", context)


def guarded(
    model_admin: Any,
    request: HttpRequest,
    call: Callable[[], HttpResponse],
    preview_data: Callable[[], Any] | None = None,
) -> HttpResponse:
    """``call()`` (an admin view) for a POST: previewed with ``_preview``, asked about first
    when it would refuse traffic seen in the last 24 hours, else made."""
    if request.method != "POST" or CONFIRMED in request.POST:
        return call()
    if PREVIEW not in request.POST and not preview.may_refuse_recent():
        return call()  # (no recent traffic: nothing to ask about)
    if PREVIEW in request.POST:
        data = request.POST
        if preview_data is not None:  # e.g. a bulk delete: what its confirmation would do
            request.POST = preview_data()
        try:
            flips, response = _run(request, call)
        finally:
            request.POST = data
        return _page(model_admin, request, flips, False, _reposted(request)) if _saved(response) else response
    flips, response = _run(request, call)
    if _saved(response) and flips.recent_refusals():
        return _page(model_admin, request, flips, True, request.POST)
    return call()


def _reposted(request: HttpRequest) -> Any:
    """What the page's button posts: the form, and a bulk delete's confirmation (``post``)."""
    data = request.POST.copy()
    if data.get("action"):
        data["post"] = "yes"
    return data


def _confirming(request: HttpRequest) -> Any:
    data = request.POST.copy()
    data["post"] = "yes"  # a bulk delete's confirmation
    data["confirm_widening"] = "1"  # and an exception's: the preview says what it opens
    return data


class PreviewAdminMixin:
    """The Preview button and the question on a ModelAdmin's change form, delete page and
    bulk actions (before ``OneLockOrderMixin``: the write it previews is the whole write)."""

    def changeform_view(
        self,
        request: HttpRequest,
        object_id: str | None = None,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        view = super().changeform_view  # type: ignore[misc]
        return guarded(self, request, lambda: view(request, object_id, form_url, extra_context))

    def delete_view(
        self, request: HttpRequest, object_id: str, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        view = super().delete_view  # type: ignore[misc]
        return guarded(self, request, lambda: view(request, object_id, extra_context))

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        view = super().changelist_view  # type: ignore[misc]
        if request.method == "POST" and not request.POST.get("action"):
            response: HttpResponse = view(request, extra_context)  # (not an action: the list's forms)
            return response
        return guarded(self, request, lambda: view(request, extra_context), lambda: _confirming(request))
