"""The allow-list as one JSON document: export, and import all or nothing.

``{"version": 1, "exported_at": ..., "policies": [{..., "origins": [...]}]}`` with the
API's field names. Used by the REST API (``/export/``, ``/import/``) and the ``cors``
command alike; every write is recorded in the admin history (``corsadmin.history``).
The document is checked first, as a whole (``corsadmin.document_plan``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, models, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from . import budget, history, progress, writes
from .document_plan import DOCUMENT_VERSION, Clock, ImportRefused, PlannedPolicy
from .document_plan import plan as check_document
from .fields import non_field_key
from .history import User, changed_fields, field_values, log_summary, user_id
from .models import AllowedOrigin, Policy
from .records import DOCUMENT_ORIGIN_FIELDS, DOCUMENT_POLICY_FIELDS, origin_record, policy_record

__all__ = ["DOCUMENT_VERSION", "ImportRefused", "ImportResult", "export_document", "import_document"]

logger = logging.getLogger("corsadmin")

_Row = TypeVar("_Row")


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
            shares = [_apply_policy(planned, user, result, dry_run, clock) for planned in plan]
            clock.check()
            if replace:
                _delete_unnamed(shares, result, dry_run)
            _write_origins(shares, result, dry_run, clock)
            for share in shares:
                share.log(user)
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


# Rows a bulk statement writes at once (each row ~15 parameters; SQLite allows 32,766).
BATCH = 1000


@dataclass
class _PolicyShare:
    """What an import does to one policy and its origins, recorded as one history entry."""

    policy: Policy
    action: int = history.CHANGE
    own: list[dict[str, Any]] = field(default_factory=list)  # the policy's own change message
    added: list[AllowedOrigin] = field(default_factory=list)
    changed: list[tuple[AllowedOrigin, list[str]]] = field(default_factory=list)
    kept: list[int] = field(default_factory=list)  # the pks of its origins the document names
    deleted: list[str] = field(default_factory=list)

    def log(self, user: User) -> None:
        changed = [
            (o.origin, [history.label(AllowedOrigin, f) for f in fields]) for o, fields in self.changed
        ]
        added = [o.origin for o in self.added]
        message = history.summary_message(self.own, added, changed, self.deleted)
        log_summary(user, self.policy, self.action, message)


def _apply_policy(
    planned: PlannedPolicy, user: User, result: ImportResult, dry_run: bool, clock: Clock
) -> _PolicyShare:
    """The policy saved if new or changed; its origins sorted into new, changed and unchanged."""
    policy = planned.obj
    share = _PolicyShare(policy)
    if planned.before is None:
        policy.save()
        share.action, share.own = history.ADDITION, [{"added": {}}]
        result.created["policies"] += 1
        if dry_run:
            result.rows.append(("add", f"policy '{policy.name}'", ""))
    else:
        fields = changed_fields(planned.before, policy)
        if fields:
            policy.save()
            share.own = history.change_message(Policy, planned.before, field_values(policy), fields)
            result.changed["policies"] += 1
            if dry_run:
                result.rows.append(
                    ("change", f"policy '{policy.name}'", _values(Policy, planned.before, policy, fields))
                )
        else:
            result.unchanged["policies"] += 1
    creator = user if user_id(user) is not None else None
    for planned_origin in planned.origins:
        obj = planned_origin.obj
        if obj is not None:
            obj.policy = policy
        if planned_origin.before is None and obj is not None:
            obj.created_by = creator  # type: ignore[assignment]  # AbstractBaseUser: the AUTH_USER_MODEL
            share.added.append(obj)
            continue
        progress.advance()
        clock.check(1)
        share.kept.append(cast(int, planned_origin.pk))
        if planned_origin.fields and obj is not None and planned_origin.before is not None:
            share.changed.append((obj, planned_origin.fields))
            result.changed["origins"] += 1
            if dry_run:
                values = _values(AllowedOrigin, planned_origin.before, obj, planned_origin.fields)
                result.rows.append(("change", _origin_words(obj, policy), values))
        else:
            result.unchanged["origins"] += 1
    return share


def _delete_unnamed(shares: list[_PolicyShare], result: ImportResult, dry_run: bool) -> None:
    """Replace: the origins and policies the document does not name, deleted (and counted)."""
    kept = {pk for share in shares for pk in share.kept}
    by_policy: dict[int | None, _PolicyShare] = {share.policy.pk: share for share in shares}
    # Compared here rather than in the query: a NOT IN of 100,000 pks is past SQLite's limit.
    present = AllowedOrigin.objects.filter(policy_id__in=list(by_policy)).values_list("pk", flat=True)
    gone_ids = [pk for pk in present.iterator(chunk_size=10_000) if pk not in kept]
    gone_origins = [
        entry
        for start in range(0, len(gone_ids), BATCH)
        for entry in AllowedOrigin.objects.filter(pk__in=gone_ids[start : start + BATCH])
    ]
    gone_policies = list(Policy.objects.exclude(pk__in=list(by_policy)).prefetch_related("origins"))
    for entry in gone_origins:
        by_policy[entry.policy_id].deleted.append(entry.origin)
    for gone in gone_policies:
        shares.append(_PolicyShare(gone, history.DELETION, deleted=[o.origin for o in gone.origins.all()]))
    result.deleted["origins"] = len(gone_origins) + sum(len(p.origins.all()) for p in gone_policies)
    result.deleted["policies"] = len(gone_policies)
    if dry_run:
        result.rows += [("remove", _origin_words(o, by_policy[o.policy_id].policy), "") for o in gone_origins]
        for gone in gone_policies:
            result.rows.append(("remove", f"policy '{gone.name}'", ""))
            result.rows += [("remove", _origin_words(o, gone), "") for o in gone.origins.all()]
    for start in range(0, len(gone_ids), BATCH * 10):
        AllowedOrigin.objects.filter(pk__in=gone_ids[start : start + BATCH * 10]).delete()
    Policy.objects.filter(pk__in=[p.pk for p in gone_policies]).delete()


def _write_origins(shares: list[_PolicyShare], result: ImportResult, dry_run: bool, clock: Clock) -> None:
    """The changed origins updated and the new ones inserted, a batch a statement."""
    changed = [obj for share in shares for obj, _fields in share.changed]
    if changed:
        names = {name for share in shares for _obj, fields in share.changed for name in fields}
        now = timezone.now()
        for obj in changed:
            obj.updated_at = now  # a bulk update does not stamp it (``auto_now``)
        for batch in _batches(changed, clock):
            AllowedOrigin.objects.bulk_update(batch, sorted(names | {"updated_at"}))
    created = [obj for share in shares for obj in share.added]
    if created:
        for batch in _batches(created, clock):
            AllowedOrigin.objects.bulk_create(batch)
        clock.check()
        result.created["origins"] = len(created)
        if dry_run:
            result.rows += [("add", _origin_words(o, o.policy), "") for o in created]
        progress.advance(len(created))


def _batches(rows: list[_Row], clock: Clock) -> Iterator[list[_Row]]:
    """``rows`` a statement's worth at a time, the clock checked before each: a time limit
    (``budget``) stops a long bulk write between two statements, not after the last."""
    for start in range(0, len(rows), BATCH):
        clock.check()
        batch = rows[start : start + BATCH]
        yield batch
        clock.done += len(batch)


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
