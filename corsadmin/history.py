"""The admin history of every write: admin, API, command line, import alike.

Rows are Django's ``LogEntry`` (written with ``LogEntry.objects.log_actions``), so
each change shows in the object's admin history. Each change's ``LogEntry.change_message``
is Django's JSON (``[{"changed": {"fields": [...]}}]``) with one more key,
``"values": {label: [old, new]}``, which Django's own
``get_change_message`` ignores; the history page shows it (``corsadmin_history`` filter).

A site without ``django.contrib.admin`` has no ``LogEntry``: each change is then one
INFO line on the ``corsadmin`` logger instead (``event`` ``history``), and nothing here
imports the admin's models (this module is imported by the API, the command line and
the template tags, which such a site uses too).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeAlias, cast

from django.apps import apps
from django.db import models
from django.utils import timezone
from django.utils.text import capfirst

if TYPE_CHECKING:
    from django.contrib.auth.base_user import AbstractBaseUser
    from django.contrib.auth.models import AnonymousUser

User: TypeAlias = "AbstractBaseUser | AnonymousUser | None"
logger = logging.getLogger("corsadmin")
# Django's LogEntry.action_flag values (django.contrib.admin.models), and their words.
ADDITION, CHANGE, DELETION = 1, 2, 3
ACTIONS = {ADDITION: "added", CHANGE: "changed", DELETION: "deleted"}


def label(model: type[models.Model], name: str) -> str:
    field = model._meta.get_field(name)
    return str(capfirst(field.verbose_name if isinstance(field, models.Field) else name))


def text(value: object) -> str:
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
    """ "Enabled: yes → no; Note: - → hello" from a LogEntry's change_message ('' if none)."""
    try:
        message = json.loads(change_message_text or "[]")
    except ValueError:
        return ""
    parts: list[str] = []
    for item in message if isinstance(message, list) else []:
        values = item.get("changed", {}).get("values", {}) if isinstance(item, dict) else {}
        parts.extend(f"{name}: {old} → {new}" for name, (old, new) in values.items())
    return "; ".join(parts)


# --- recording -------------------------------------------------------------------------


def user_id(user: User) -> int | None:
    """Whom to record a change under: None for nobody (the table requires a user)."""
    if user is None or not getattr(user, "is_authenticated", False):
        return None
    return cast("int | None", user.pk)


def field_values(obj: models.Model) -> dict[str, Any]:
    """The editable values of an object, to tell afterwards which ones changed."""
    values = {}
    for f in obj._meta.concrete_fields:
        if f.editable and not f.primary_key:
            values[f.name] = f.value_from_object(obj)
    return values


def changed_fields(before: Mapping[str, Any], obj: models.Model) -> list[str]:
    after = field_values(obj)
    return [name for name, value in after.items() if before.get(name) != value]


def _log(
    user: User, objects: Iterable[models.Model], action: int, message: str | list[dict[str, Any]] = ""
) -> None:
    uid = user_id(user)
    objects = list(objects)
    if uid is None or not objects:
        return
    if not apps.is_installed("django.contrib.admin"):
        _log_line(uid, objects, action, message)
        return
    from django.contrib.admin.models import LogEntry

    LogEntry.objects.log_actions(uid, objects, action, message or "")


def _log_line(
    uid: int, objects: list[models.Model], action: int, message: str | list[dict[str, Any]]
) -> None:
    """The history of a site without the admin: one log line per object."""
    change = values_of(json.dumps(message)) if action == CHANGE else ""
    rows = _rows_of(message)  # an import's summary: the origins it names
    change = "; ".join(part for part in (change, rows) if part)
    for obj in objects:
        logger.info(
            "corsadmin: %s %s %r (pk %s) by user %s%s",
            ACTIONS[action],
            obj._meta.verbose_name,
            str(obj),
            obj.pk,
            uid,
            f": {change}" if change else "",
            extra={"event": "history"},
        )


def _rows_of(message: str | list[dict[str, Any]]) -> str:
    """ "added allowed origin https://a.example.com; ..." from a summary's items that name a row."""
    if not isinstance(message, list):
        return ""
    return "; ".join(
        f"{kind} {item[kind]['name']} {item[kind]['object']}"
        for item in message
        for kind in ("added", "changed", "deleted")
        if isinstance(item.get(kind), dict) and "object" in item[kind]
    )


def log_addition(user: User, objects: Iterable[models.Model]) -> None:
    _log(user, objects, ADDITION, [{"added": {}}])


def log_change(user: User, obj: models.Model, before: Mapping[str, Any], fields: Iterable[str]) -> None:
    """One change of ``obj`` from ``before`` (``field_values`` taken before the change)."""
    _log(user, [obj], CHANGE, change_message(type(obj), before, field_values(obj), fields))


def log_deletion(user: User, objects: Iterable[models.Model]) -> None:
    """Before the delete: the rows still have their primary keys."""
    _log(user, objects, DELETION)


# An import's summary names this many origins of each kind, then counts the rest.
SUMMARY_NAMES = 20


def summary_message(
    own: list[dict[str, Any]],
    added: list[str],
    changed: list[tuple[str, list[str]]],
    deleted: list[str],
) -> list[dict[str, Any]]:
    """One policy's share of an import, as one change message: its own change (``own``, from
    ``change_message``), then its origins added, changed (with the fields' labels) and deleted,
    the first ``SUMMARY_NAMES`` of each by name and the rest counted ("Added allowed origins
    “and 99,980 more”.", in the words of Django's admin history)."""
    from .models import AllowedOrigin

    one, many = str(AllowedOrigin._meta.verbose_name), str(AllowedOrigin._meta.verbose_name_plural)
    message = list(own)
    for kind, objects in (("added", added), ("changed", changed), ("deleted", deleted)):
        for item in objects[:SUMMARY_NAMES]:
            if kind == "changed":
                origin, fields = cast("tuple[str, list[str]]", item)
                message.append({kind: {"name": one, "object": origin, "fields": fields}})
            else:
                message.append({kind: {"name": one, "object": item}})
        rest = objects[SUMMARY_NAMES:]
        if rest:
            more: dict[str, Any] = {"name": many, "object": f"and {len(rest):,} more"}
            if kind == "changed":  # Django's words need the fields: those of the rest, together
                fields_of_rest = (name for item in rest for name in cast("tuple[str, list[str]]", item)[1])
                more["fields"] = list(dict.fromkeys(fields_of_rest))
            message.append({kind: more})
    return message


def log_summary(user: User, obj: models.Model, action: int, message: list[dict[str, Any]]) -> None:
    """One entry for ``obj`` saying what a bulk write (an import) did to it and its rows; an
    unchanged ``obj`` whose rows are unchanged too has none."""
    if message or action != CHANGE:
        _log(user, [obj], action, message)
