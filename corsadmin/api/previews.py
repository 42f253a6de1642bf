"""``?dry_run=true`` on the API's writes: the real write, rolled back, answering what it
would flip (``corsadmin.preview``); and how the schema documents it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from .. import preview
from .params import flag

DRY_RUN = OpenApiParameter(
    "dry_run",
    OpenApiTypes.BOOL,
    description="Validate and preview the write without making it: 200 with the traffic of the last "
    "7 days it would flip (would_allow, would_refuse). Nothing is written, not even history.",
)
PREVIEWED = frozenset({"POST", "PUT", "PATCH", "DELETE"})

_DECIDER = {
    "type": "object",
    "properties": {
        "allowed": {"type": "boolean"},
        "policy": {"type": "string", "nullable": True},
        "entry": {"type": "string", "nullable": True},
        "denied_by": {"type": "string", "nullable": True},
        "denied_policy": {"type": "string", "nullable": True},
    },
    "required": ["allowed", "policy", "entry", "denied_by", "denied_policy"],
}
_ITEM = {
    "type": "object",
    "properties": {
        "origin": {"type": "string"},
        "path_prefix": {"type": "string"},
        "host": {"type": "string", "description": "The request's host; empty: unknown or not allowed."},
        "requests": {"type": "integer", "description": "Requests in the last 7 days."},
        "last_seen": {"type": "string", "format": "date-time"},
        "before": _DECIDER,
        "after": _DECIDER,
    },
    "required": ["origin", "path_prefix", "host", "requests", "last_seen", "before", "after"],
}
PREVIEW_SCHEMA = {
    "type": "object",
    "properties": {
        "would_allow": {"type": "array", "items": _ITEM},
        "would_refuse": {"type": "array", "items": _ITEM},
    },
    "required": ["would_allow", "would_refuse"],
}


def dry_run(request: Request) -> bool:
    """Whether the write is a preview; a ``dry_run`` given empty or misspelt is a 400, never a write."""
    if "dry_run" not in request.query_params:
        return False
    answer = flag(request.query_params["dry_run"])
    if answer is None:
        raise serializers.ValidationError({"dry_run": [_("Give dry_run=true or dry_run=false.")]})
    return answer


def answer(write: Callable[[], object]) -> Response:
    return Response(preview.preview(write).as_dict())


def document(responses: dict[str, Any], method: str) -> dict[str, Any]:
    """Add the preview's 200 (beside the write's own 200, if any) and the 400 of a bad flag."""
    body = {"description": "A preview (dry_run=true): nothing was changed.", "content": {}}
    existing = responses.get("200")
    if existing is None:
        body["content"] = {"application/json": {"schema": PREVIEW_SCHEMA}}
        responses["200"] = body
    else:
        for content in existing.get("content", {}).values():
            content["schema"] = {"oneOf": [content["schema"], PREVIEW_SCHEMA]}
        existing["description"] += " Or, with dry_run=true, a preview: nothing was changed."
    return responses


class PreviewMixin:
    """``?dry_run=true`` on a viewset's create, update, partial update and destroy."""

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        if dry_run(request):
            return answer(lambda: super(PreviewMixin, self).create(request, *args, **kwargs))  # type: ignore[misc]
        return super().create(request, *args, **kwargs)  # type: ignore[misc,no-any-return]

    def update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        if dry_run(request):
            return answer(lambda: super(PreviewMixin, self).update(request, *args, **kwargs))  # type: ignore[misc]
        return super().update(request, *args, **kwargs)  # type: ignore[misc,no-any-return]

    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        if dry_run(request):
            return answer(lambda: super(PreviewMixin, self).destroy(request, *args, **kwargs))  # type: ignore[misc]
        return super().destroy(request, *args, **kwargs)  # type: ignore[misc,no-any-return]
