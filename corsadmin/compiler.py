"""From stored rows to a snapshot: a policy row compiled (with its CSRF-trusted entries), and
the built-in ``CORS_*`` settings policy added (``loader.SnapshotBuilder`` calls these)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.core.exceptions import ValidationError

from . import conf, settings_policy
from .entries import Entry, EntryTable
from .hosts import clean_hosts
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
    csrf: Iterable[Entry] = (),
) -> CompiledPolicy:
    """A policy row (``loader.POLICY_FIELDS``) with its tables and CSRF-trusted entries (those
    ``ignored`` are never trusted either); raises for a row written around validation (the
    builder then leaves that policy out)."""
    ignored_ids = {entry[0] for entry in ignored}
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
        csrf=[entry for entry in csrf if entry[0] not in ignored_ids],
    )


def by_policy(entries: dict[int, tuple[int, Entry]]) -> dict[int, list[Entry]]:
    """Entry id -> (policy id, entry), as the builder keeps the CSRF-trusted entries, grouped by
    policy id."""
    grouped: dict[int, list[Entry]] = {}
    for policy_id, entry in entries.values():
        grouped.setdefault(policy_id, []).append(entry)
    return grouped


def settings_snapshot(
    policies: list[CompiledPolicy] | None = None,
    generation: int | None = None,
) -> Snapshot:
    """A snapshot of the given database policies plus the built-in ``CORS_*`` settings policy
    (enforcing, for every host)."""
    fallback = settings_policy.build()
    policies = list(policies or ())
    if conf.has_settings_policy():
        policies.append(fallback)
    return Snapshot(policies, generation=generation, fallback=fallback)
