"""The allow-list as one JSON document: export, and import all or nothing.

``{"version": 1, "exported_at": ..., "policies": [{..., "origins": [...]}]}`` with the
API's field names. Used by the REST API (``/export/``, ``/import/``) and the ``cors``
command alike; every write is recorded in the admin history (``corsadmin.history``).
The document is checked first, as a whole (``corsadmin.document_plan``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, connection, models, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from . import budget, history, progress, writes
from .document_plan import DOCUMENT_VERSION, Clock, ImportRefused
from .document_plan import plan as check_document
from .fields import non_field_key
from .history import User, changed_fields, field_values, log_addition, log_change, log_deletion, user_id
from .models import AllowedOrigin, Policy
from .records import DOCUMENT_ORIGIN_FIELDS, DOCUMENT_POLICY_FIELDS, origin_record, policy_record

__all__ = ["DOCUMENT_VERSION", "ImportRefused", "ImportResult", "export_document", "import_document"]

logger = logging.getLogger("corsadmin")


# --- export --------------------------------------------------------------------------


def export_document() -> dict[str, Any]:
    """Every policy with its origins: ``{"version": 1, "policies": [...]}``."""
    policies = Policy.objects.prefetch_related("origins__created_by").order_by("-priority", "name")
    if progress.active():  # the command line on a terminal: count the origins as they are written
        progress.stage("exporting", total=AllowedOrigin.objects.count())
    counted = progress.active() or budget.remaining() is not None
    document = {
        "version": DOCUMENT_VERSION,
        "exported_at": timezone.now().isoformat(),
        "policies": [_policy_document(policy, counted) for policy in policies],
    }
    progress.done()
    return document


def _policy_document(policy: Policy, counted: bool) -> dict[str, Any]:
    """A policy with its origins; ``counted``: each origin advances the progress bar and checks the clock."""
    origins = []
    for entry in policy.origins.all():
        if counted:
            progress.advance()
            budget.check(_export_out_of_time)
        origins.append(origin_record(entry, DOCUMENT_ORIGIN_FIELDS))
    return {**policy_record(policy, DOCUMENT_POLICY_FIELDS), "origins": origins}


@dataclass
class ImportResult:
    created: dict[str, int] = field(default_factory=lambda: {"policies": 0, "origins": 0})
    changed: dict[str, int] = field(default_factory=lambda: {"policies": 0, "origins": 0})
    unchanged: dict[str, int] = field(default_factory=lambda: {"policies": 0, "origins": 0})
    deleted: dict[str, int] = field(default_factory=lambda: {"policies": 0, "origins": 0})
    # What is allowed but risky in the result (``AllowedOrigin.warnings()``).
    warnings: list[str] = field(default_factory=list)
    # Of a dry run only: each row it would write, ("add" | "change" | "remove", the row in
    # words, what changes: "Enabled: yes → no; ..." or "").
    rows: list[tuple[str, str, str]] = field(default_factory=list)

    def as_dict(self) -> dict[str, dict[str, int]]:
        return {
            "created": self.created,
            "changed": self.changed,
            "unchanged": self.unchanged,
            "deleted": self.deleted,
        }

    def summary(self) -> str:
        parts = []
        for what, counts in self.as_dict().items():
            parts.append(f"{what} {counts['policies']} policies, {counts['origins']} origins")
        return "; ".join(parts)


def _export_out_of_time() -> str:
    return _(
        "The export was stopped before the server's time limit for a request. Export with the "
        "command line instead (python manage.py cors export), which has no time limit, or raise "
        "the server's timeout."
    )


def _origin_words(origin: AllowedOrigin, policy: Policy) -> str:
    return f"origin {origin.origin} in policy '{policy.name}'"


def _values(
    model: type[models.Model], before: Mapping[str, Any], obj: models.Model, fields: list[str]
) -> str:
    """ "Enabled: yes → no; Note: - → hi", as the admin history words a change."""
    after = field_values(obj)
    return "; ".join(
        f"{history.label(model, name)}: {history.text(before.get(name))} → {history.text(after.get(name))}"
        for name in fields
        if name != "policy"
    )


def import_document(
    document: Any, *, replace: bool = False, user: User = None, dry_run: bool = False
) -> ImportResult:
    """Apply an exported document: everything or nothing, recorded in the admin history.

    Merge (the default): policies are matched by name and origins by policy and
    canonical origin; fields a document leaves out keep their value. Replace:
    the database ends up holding exactly the document (left-out fields take
    their defaults; policies and origins it does not name are deleted).
    ``dry_run``: the same counts and the rows it would write (``rows``), and nothing changed.
    """
    result = ImportResult()
    clock = Clock()  # with a time limit (``budget``, the API's), stops in time: all rolled back
    try:
        # A write: planned and applied with the generation row locked first (``writes``).
        with transaction.atomic() if dry_run else writes.writing():
            plan = check_document(document, replace, clock)
            writing = sum(len(planned.origins) for planned in plan)
            progress.stage("writing", total=writing)
            clock.start("writing", writing)
            created_origins: list[AllowedOrigin] = []
            kept_policies: list[int] = []
            kept_origins: list[int] = []
            creator = user if user_id(user) is not None else None
            for planned in plan:
                policy = planned.obj
                if planned.before is None:
                    policy.save()
                    log_addition(user, [policy])
                    result.created["policies"] += 1
                    if dry_run:
                        result.rows.append(("add", f"policy '{policy.name}'", ""))
                else:
                    fields = changed_fields(planned.before, policy)
                    if fields:
                        policy.save()
                        log_change(user, policy, planned.before, fields)
                        result.changed["policies"] += 1
                        if dry_run:
                            values = _values(Policy, planned.before, policy, fields)
                            result.rows.append(("change", f"policy '{policy.name}'", values))
                    else:
                        result.unchanged["policies"] += 1
                kept_policies.append(policy.pk)
                for planned_origin in planned.origins:
                    obj = planned_origin.obj
                    obj.policy = policy
                    if planned_origin.before is None:
                        obj.created_by = creator  # type: ignore[assignment]  # AbstractBaseUser: the AUTH_USER_MODEL
                        created_origins.append(obj)
                        continue
                    progress.advance()
                    clock.check(1)
                    kept_origins.append(obj.pk)
                    fields = changed_fields(planned_origin.before, obj)
                    if fields:
                        obj.save()
                        log_change(user, obj, planned_origin.before, fields)
                        result.changed["origins"] += 1
                        if dry_run:
                            values = _values(AllowedOrigin, planned_origin.before, obj, fields)
                            result.rows.append(("change", _origin_words(obj, policy), values))
                    else:
                        result.unchanged["origins"] += 1
            clock.check()
            if replace:
                gone_origins = list(
                    AllowedOrigin.objects.filter(policy_id__in=kept_policies).exclude(pk__in=kept_origins)
                )
                gone_policies = list(Policy.objects.exclude(pk__in=kept_policies).prefetch_related("origins"))
                log_deletion(user, gone_origins)
                log_deletion(user, [o for p in gone_policies for o in p.origins.all()])
                log_deletion(user, gone_policies)
                result.deleted["origins"] = len(gone_origins) + sum(
                    len(p.origins.all()) for p in gone_policies
                )
                result.deleted["policies"] = len(gone_policies)
                if dry_run:
                    names: dict[Any, Policy] = {p.obj.pk: p.obj for p in plan}
                    result.rows += [
                        ("remove", _origin_words(o, names[o.policy_id]), "") for o in gone_origins
                    ]
                    for gone in gone_policies:
                        result.rows.append(("remove", f"policy '{gone.name}'", ""))
                        result.rows += [("remove", _origin_words(o, gone), "") for o in gone.origins.all()]
                AllowedOrigin.objects.filter(pk__in=[o.pk for o in gone_origins]).delete()
                Policy.objects.filter(pk__in=[p.pk for p in gone_policies]).delete()
            if created_origins:
                clock.check()
                # One statement (one generation): on PostgreSQL the API's query deadline, set to
                # the time left, cuts it when it would run past (``deadlines``).
                if connection.features.can_return_rows_from_bulk_insert:
                    created_origins = AllowedOrigin.objects.bulk_create(created_origins)
                else:
                    for obj in created_origins:
                        clock.check(1)
                        obj.save()
                clock.check()
                log_addition(user, created_origins)
                result.created["origins"] = len(created_origins)
                if dry_run:
                    result.rows += [("add", _origin_words(o, o.policy), "") for o in created_origins]
                progress.advance(len(created_origins))
            progress.done()
            result.warnings = origin_warnings(
                (p.obj.pk for p in plan if p.obj.allow_credentials), (p.obj.pk for p in plan)
            )
            clock.check()  # the last moment to stop: the commit and the answer are left
            if dry_run:  # everything above, then undone: nothing written, nothing announced
                transaction.set_rollback(True)
    except DjangoValidationError as exc:
        # A rule the plan did not foresee, raised by a save: refused all the same.
        raise ImportRefused({non_field_key(): exc.messages}) from None
    except IntegrityError as exc:
        # The database's words name tables and constraints: for the log, not the client.
        logger.warning("corsadmin: the database refused an import: %s", str(exc).strip())
        raise ImportRefused(
            {
                non_field_key(): [
                    _(
                        "The database refused the import (a concurrent change?); nothing was changed. "
                        "Try again."
                    )
                ]
            }
        ) from None
    return result


def origin_warnings(policy_ids: Iterable[int], all_policy_ids: Iterable[int] = ()) -> list[str]:
    """The warnings of the origins of these policies: plain http:// with credentials (policies
    ``policy_ids``), wildcards on shared hosting (``all_policy_ids``)."""
    ids, every = list(policy_ids), list(all_policy_ids)
    if not ids and not every:
        return []
    risky = AllowedOrigin.objects.filter(
        models.Q(policy_id__in=ids, origin__startswith="http://")
        | models.Q(policy_id__in=every, origin__contains="*.")
    ).select_related("policy")
    return [warning for entry in risky.order_by("policy__name", "origin") for warning in entry.warnings()]
