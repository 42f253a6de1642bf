"""From stored rows to a snapshot: a policy row compiled, the CSRF-trusted entries gathered,
and the built-in ``CORS_*`` settings policy added (``loader.SnapshotBuilder`` calls these)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection
from typing import Any

from django.core.exceptions import ValidationError

from . import conf, settings_policy
from .entries import Entry, EntryTable
from .hosts import clean_hosts
from .models import Policy
from .snapshot import CompiledPolicy, Snapshot

# A policy's tables are keyed (policy id, deny?): its allow entries and its exceptions.
TableKey = tuple[int, bool]


def _stored_hosts(value: Any) -> list[str]:
    """A policy's hosts as stored; ValueError when written around validation (the policy is
    then ignored: never widened to every host)."""
    try:
        return clean_hosts(value)
    except ValidationError as exc:
        raise ValueError(f"invalid hosts: {exc.messages[0]}") from None


def compile_policy(
    row: dict[str, Any],
    table: EntryTable,
    denies: EntryTable | None,
    refuse_null: bool,
    ignored: tuple[Entry, ...] = (),
) -> CompiledPolicy:
    """A policy row (``loader.POLICY_FIELDS``) with its tables; raises for a row written around
    validation (the builder then leaves that policy out)."""
    return CompiledPolicy(
        name=row["name"],
        url_regex=row["url_regex"],
        priority=row["priority"],
        allow_all_origins=row["allow_all_origins"],
        allow_credentials=row["allow_credentials"],
        allow_methods=row["allow_methods"],
        allow_headers=row["allow_headers"],
        expose_headers=row["expose_headers"],
        max_age=row["max_age"],
        allow_private_network=row["allow_private_network"],
        table=table,
        refuse_null=refuse_null,
        mode=row["mode"],
        hosts=_stored_hosts(row["hosts"]),
        denies=denies,
        ignored=ignored,
    )


def csrf_tables(
    policies: dict[int, dict[str, Any]],
    tables: dict[TableKey, EntryTable],
    csrf_entries: dict[int, tuple[int, Entry]],
    ignored_ids: Collection[int | None] = (),
) -> tuple[CompiledPolicy, list[tuple[EntryTable, EntryTable]]]:
    """The CSRF-trusted entries of enabled, enforcing policies: one table for the policies
    without exceptions, and (trusted, exceptions) for each policy with some."""
    trusting = {pk for pk, row in policies.items() if row["enabled"] and row["mode"] != Policy.REPORT}
    plain: list[Entry] = []
    with_denies: dict[int, list[Entry]] = defaultdict(list)
    for policy_id, entry in csrf_entries.values():
        if policy_id not in trusting or entry[0] in ignored_ids:
            continue
        if tables.get((policy_id, True)):
            with_denies[policy_id].append(entry)
        else:
            plain.append(entry)
    csrf = CompiledPolicy(name="(csrf)", table=EntryTable.build(plain))
    pairs = [(EntryTable.build(entries), tables[pk, True]) for pk, entries in with_denies.items()]
    return csrf, pairs


def settings_snapshot(
    policies: list[CompiledPolicy] | None = None,
    generation: int | None = None,
    csrf: CompiledPolicy | None = None,
    csrf_denies: list[tuple[EntryTable, EntryTable]] | None = None,
) -> Snapshot:
    """A snapshot of the given database policies plus the built-in ``CORS_*`` settings policy
    (enforcing, for every host)."""
    fallback = settings_policy.build()
    policies = list(policies or ())
    if conf.has_settings_policy():
        policies.append(fallback)
    return Snapshot(
        policies, generation=generation, csrf=csrf, fallback=fallback, csrf_denies=csrf_denies or ()
    )
