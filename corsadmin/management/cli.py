"""What the parts of ``manage.py cors`` share: exit statuses, bad input, recorded writes.

A write is the model's own validation (``full_clean``, the one origin validator) and a
save, in one transaction with its admin history entry (``corsadmin.history``), as the
admin, the API and the import record theirs.
"""

from __future__ import annotations

import getpass
import os
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

from django.core.exceptions import ValidationError
from django.core.management.base import CommandError
from django.db import IntegrityError, models

from .. import history, writes
from ..errors import DUPLICATE_ORIGIN, DUPLICATE_POLICY, model_errors, one_line
from ..models import SCOPES, AllowedOrigin
from ..records import with_scope_flags

BAD_INPUT = 2
REFUSED = 1

Model = TypeVar("Model", bound=models.Model)


def bad_input(message: str) -> CommandError:
    return CommandError(message.replace("\n", " "), returncode=BAD_INPUT)


def os_user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001  (no such user in the password database: KeyError or OSError)
        return os.environ.get("USER") or os.environ.get("USERNAME") or "unknown"


def _refused(write: Callable[[], Model], obj: models.Model, non_field: str | None) -> Model:
    try:
        return write()
    except ValidationError as exc:
        raise bad_input(one_line(model_errors(exc, non_field))) from None
    except IntegrityError:  # a concurrent write got there first
        duplicate = DUPLICATE_ORIGIN if isinstance(obj, AllowedOrigin) else DUPLICATE_POLICY
        field = "origin" if isinstance(obj, AllowedOrigin) else "name"
        raise bad_input(f"{field}: {duplicate}") from None


def non_field_of(obj: models.Model) -> str | None:
    """Where a constraint's error goes: an origin's one constraint is about the origin."""
    return "origin" if isinstance(obj, AllowedOrigin) else None


def add(obj: Model, user: Any, exclude: Iterable[str] = ()) -> Model:
    """Validate and save a new object, recorded as an addition."""

    def write() -> Model:
        obj.full_clean(exclude=list(exclude) or None)

        def save() -> None:
            obj.save()
            history.log_addition(user, [obj])

        writes.run(save)
        return obj

    return _refused(write, obj, non_field_of(obj))


def change(obj: Model, values: Mapping[str, Any], user: Any) -> Model:
    """Set ``values``, validate and save, recorded as a change with old -> new values."""
    before = history.field_values(obj)

    def write() -> Model:
        for name, value in values.items():
            setattr(obj, name, value)
        obj.full_clean()

        def save() -> None:
            obj.save()
            history.log_change(user, obj, before, history.changed_fields(before, obj))

        writes.run(save)
        return obj

    return _refused(write, obj, non_field_of(obj))


def remove(obj: models.Model, user: Any) -> None:
    """Delete, recorded first (the history row needs the primary key); ``obj.pk`` is kept."""
    pk = obj.pk

    def delete() -> None:
        obj.pk = pk  # a retried attempt: the failed one may have cleared it
        history.log_deletion(user, [obj])
        obj.delete()

    writes.run(delete)
    obj.pk = pk


def scope_flags(scopes: list[str] | None, csrf_trusted: bool) -> dict[str, bool]:
    """The model's flags from ``--scope`` (repeated) and ``--csrf-trusted``."""
    attrs: dict[str, Any] = {"csrf_trusted": True} if csrf_trusted else {}
    if scopes:
        unknown = sorted(set(scopes) - set(SCOPES))
        if unknown:
            raise bad_input(f"scope: '{unknown[0]}' is not a scope: use cors, csrf or websocket.")
        attrs["scopes"] = [*scopes, "csrf"] if csrf_trusted else scopes
    try:
        return with_scope_flags(attrs)
    except ValidationError as exc:
        raise bad_input(one_line(exc)) from None
