"""Old -> new values in the admin history, in the same words for admin, API and CLI changes.

Each change's ``LogEntry.change_message`` is Django's JSON (``[{"changed": {"fields":
[...]}}]``) with one more key, ``"values": {label: [old, new]}``, which Django's own
``get_change_message`` ignores; the history page shows it (``corsadmin_history`` filter).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from django.db import models
from django.utils import timezone
from django.utils.text import capfirst


def label(model: type[models.Model], name: str) -> str:
    field = model._meta.get_field(name)
    return str(capfirst(field.verbose_name if isinstance(field, models.Field) else name))


def text(value: Any) -> str:
    """A field's value in words: lists joined, booleans yes/no, times ISO 8601, none as '-'."""
    if value is None or value == "":
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value) or "-"
    if isinstance(value, datetime):
        return timezone.localtime(value).isoformat() if timezone.is_aware(value) else value.isoformat()
    if isinstance(value, models.Model):
        return str(value)
    return str(value)


def _policy_name(pk: Any) -> Any:
    from .models import Policy

    return Policy.objects.filter(pk=pk).values_list("name", flat=True).first() or pk


def change_message(
    model: type[models.Model], before: Mapping[str, Any], after: Mapping[str, Any], fields: Iterable[str]
) -> list[dict[str, Any]]:
    """Django's change message for these fields, with their old and new values."""
    names = list(fields)
    if not names:
        return []
    values = {}
    for name in names:
        old, new = before.get(name), after.get(name)
        if name == "policy":  # a foreign key's value is a pk: say the policy's name
            old, new = _policy_name(old), _policy_name(new)
        if text(old) != text(new):  # (a form may call a field changed that is not)
            values[label(model, name)] = [text(old), text(new)]
    return [{"changed": {"fields": [label(model, n) for n in names], "values": values}}]


def values_of(change_message_text: str) -> str:
    """"Enabled: yes → no; Note: - → hello" from a LogEntry's change_message ('' if none)."""
    try:
        message = json.loads(change_message_text or "[]")
    except ValueError:
        return ""
    parts: list[str] = []
    for item in message if isinstance(message, list) else []:
        values = item.get("changed", {}).get("values", {}) if isinstance(item, dict) else {}
        parts.extend(f"{name}: {old} → {new}" for name, (old, new) in values.items())
    return "; ".join(parts)
