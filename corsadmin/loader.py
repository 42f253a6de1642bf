"""Reading the allow-list from the database: all of it once, then only what changed.

A ``SnapshotBuilder`` belongs to one process's refresher. It remembers what its last
snapshot was built from (the policies, each one's ``EntryTable``, and the text of
every listed entry), so that the next snapshot reads only the rows stamped after
that snapshot's generation and the tombstones of what was deleted: O(changes), not
O(entries). It rebuilds from scratch when it has no snapshot yet, when the change
log no longer reaches back to its generation, or when a tombstone asks for it.
"""

from __future__ import annotations

import logging
import math
import re
from collections import defaultdict
from typing import Any

from django.core.exceptions import ValidationError
from django.utils import timezone

from . import conf, settings_policy
from .hosts import clean_hosts
from .models import AllowedOrigin, Generation, Policy, Tombstone
from .origins import NULL
from .snapshot import EMPTY_TABLE, CompiledPolicy, Entry, EntryTable, Snapshot, entry_key

logger = logging.getLogger("corsadmin")

POLICY_FIELDS = (
    "id",
    "name",
    "url_regex",
    "priority",
    "enabled",
    "allow_all_origins",
    "allow_credentials",
    "allow_methods",
    "allow_headers",
    "expose_headers",
    "max_age",
    "allow_private_network",
    "mode",
    "hosts",
)
ORIGIN_FIELDS = ("id", "policy_id", "origin", "expires_at", "csrf_trusted", "enabled", "effect")
DENY = AllowedOrigin.DENY

# A policy's tables are keyed (policy id, deny?): its allow entries and its exceptions.
TableKey = tuple[int, bool]


def database_generation(using: str | None = None) -> int:
    value = Generation.objects.using(using).filter(pk=1).values_list("value", flat=True).first()
    return value or 0


def _stored_hosts(value: Any) -> list[str]:
    """A policy's hosts as stored; ValueError when written around validation (the policy is
    then ignored: never widened to every host)."""
    try:
        return clean_hosts(value)
    except ValidationError as exc:
        raise ValueError(f"invalid hosts: {exc.messages[0]}") from None


def _expiry(expires_at: Any) -> float:
    return expires_at.timestamp() if expires_at else math.inf


class SnapshotBuilder:
    """What one process's snapshot was built from; see the module's docstring."""

    def __init__(self) -> None:
        self.generation: int | None = None
        self.full_loads = 0
        self.updates = 0
        self._policies: dict[int, dict[str, Any]] = {}
        self._tables: dict[TableKey, EntryTable] = {}
        self._texts: dict[int, str] = {}  # entry id -> its text, for every entry in a table
        self._csrf: dict[int, tuple[int, Entry]] = {}  # entry id -> (policy id, entry)

    def load(self) -> Snapshot:
        """Everything, from scratch."""
        generation = database_generation()  # first, so the snapshot is never newer than its number
        now = timezone.now()
        policies = {row["id"]: row for row in Policy.objects.values(*POLICY_FIELDS)}
        tables: dict[TableKey, EntryTable] = {(pk, False): EntryTable() for pk in policies}
        texts: dict[int, str] = {}
        csrf: dict[int, tuple[int, Entry]] = {}
        rows = (
            AllowedOrigin.objects.filter(enabled=True)
            .exclude(expires_at__lte=now)
            .order_by()  # in any order: sorting a million rows costs the database seconds
            .values_list(*ORIGIN_FIELDS)
            .iterator(chunk_size=10000)
        )
        # Straight into the tables, row by row: no list of a million tuples on the way.
        for entry_id, policy_id, text, expires_at, csrf_trusted, _enabled, effect in rows:
            if policy_id not in policies:
                continue
            deny = effect == DENY
            table = tables.get((policy_id, deny))
            if table is None:
                table = tables[policy_id, deny] = EntryTable()
            expires = _expiry(expires_at)
            if table.add(entry_id, text, expires, policies[policy_id]["name"]) is None:
                continue
            texts[entry_id] = text
            if csrf_trusted and not deny:  # an exception is never CSRF-trusted
                csrf[entry_id] = (policy_id, (entry_id, text, expires))
        for table in tables.values():
            table.seal()
        self._policies, self._tables, self._texts, self._csrf = policies, tables, texts, csrf
        self.generation = generation
        self.full_loads += 1
        return self._snapshot()

    def update(self) -> Snapshot | None:
        """What changed since the last snapshot (None: nothing did); a full load when needed."""
        if self.generation is None:
            return self.load()
        stamp = Generation.objects.filter(pk=1).values_list("value", "pruned").first() or (0, 0)
        generation, pruned = stamp
        since = self.generation
        if generation == since:
            return None
        if generation < since or since < pruned:  # a restored database, or behind the change log
            return self.load()
        tombstones = list(
            Tombstone.objects.filter(generation__gt=since, generation__lte=generation).values_list(
                "kind", "row_id"
            )
        )
        if any(kind == Tombstone.RELOAD for kind, _ in tombstones):
            return self.load()
        window = {"version__gt": since, "version__lte": generation}
        policies = list(Policy.objects.filter(**window).values(*POLICY_FIELDS))
        origins = list(AllowedOrigin.objects.filter(**window).order_by().values_list(*ORIGIN_FIELDS))
        self._apply(tombstones, policies, origins)
        self.generation = generation
        self.updates += 1
        return self._snapshot()

    def _apply(
        self, tombstones: list[tuple[str, Any]], policies: list[dict[str, Any]], origins: list[tuple]
    ) -> None:
        removed: dict[TableKey, list[tuple[str, Any]]] = defaultdict(list)
        added: dict[TableKey, list[tuple[tuple[str, Any], Entry]]] = defaultdict(list)
        for kind, row_id in tombstones:
            if kind == "policy" and row_id in self._policies:
                self._drop_policy(row_id)
            elif kind == "allowedorigin":
                self._forget(row_id, removed)
        for row in policies:
            self._policies[row["id"]] = row
            self._tables.setdefault((row["id"], False), EMPTY_TABLE)
        now = timezone.now().timestamp()
        for entry_id, policy_id, text, expires_at, csrf_trusted, enabled, effect in origins:
            self._forget(entry_id, removed)
            expires = _expiry(expires_at)
            if not enabled or expires <= now or policy_id not in self._policies:
                continue
            found = entry_key(text)
            if found is None:
                logger.warning(
                    "corsadmin: ignoring invalid stored origin %r",
                    text,
                    extra={
                        "event": "ignored_origin",
                        "origin": text,
                        "policy": self._policies[policy_id]["name"],
                    },
                )
                continue
            entry = (entry_id, found[2], expires)
            deny = effect == DENY
            added[policy_id, deny].append(((found[0], found[1]), entry))
            self._texts[entry_id] = text
            if csrf_trusted and not deny:
                self._csrf[entry_id] = (policy_id, entry)
        for key in removed.keys() | added.keys():
            if key[0] in self._policies:
                self._tables[key] = self._tables.get(key, EMPTY_TABLE).changed(
                    removed.get(key, ()), added.get(key, ())
                )

    def _forget(self, entry_id: Any, removed: dict[TableKey, list[tuple[str, Any]]]) -> None:
        """Note where an entry was, to remove it (it moved, changed or went)."""
        text = self._texts.pop(entry_id, None)
        self._csrf.pop(entry_id, None)
        if text is None:
            return
        found = entry_key(text)
        if found is None:
            return
        where = found[:2]
        for key, table in self._tables.items():
            if where[0] == "exact":
                value = table.exact_value(where[1])
                owner = value if type(value) is not tuple else value[0]
            else:
                owner = table.patterns.get(where[1], (None,))[0]
            if owner == entry_id:
                removed[key].append(where)
                return

    def _drop_policy(self, policy_id: int) -> None:
        for deny in (False, True):
            for entry_id in list(self._tables.pop((policy_id, deny), EMPTY_TABLE).ids()):
                self._texts.pop(entry_id, None)
                self._csrf.pop(entry_id, None)
        del self._policies[policy_id]

    def _snapshot(self) -> Snapshot:
        compiled = []
        null_with_credentials = conf.get("ALLOW_NULL_WITH_CREDENTIALS")
        for pk, row in self._policies.items():
            if not row["enabled"]:
                continue
            refuse_null = row["allow_credentials"] and not null_with_credentials
            table = self._tables.get((pk, False), EMPTY_TABLE)
            if refuse_null and table.exact_value(NULL) is not None:
                # Written around validation (QuerySet.update, raw SQL, loaddata): never honoured.
                logger.warning(
                    "corsadmin: ignoring null in policy %s, which allows credentials",
                    row["name"],
                    extra={"event": "ignored_origin", "origin": NULL, "policy": row["name"]},
                )
            try:
                compiled.append(
                    CompiledPolicy(
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
                        denies=self._tables.get((pk, True)),
                    )
                )
            except (re.error, TypeError, ValueError) as exc:
                # Written around validation (raw SQL): skip this policy, keep the others.
                logger.warning(
                    "corsadmin: ignoring policy %s, it cannot be compiled: %s",
                    row["name"],
                    exc,
                    extra={"event": "ignored_policy", "policy": row["name"]},
                )
        return settings_snapshot(compiled, self.generation, *self._csrf_tables())

    def _csrf_tables(self) -> tuple[CompiledPolicy, list[tuple[EntryTable, EntryTable]]]:
        """The CSRF-trusted entries of enabled, enforcing policies: one table for the policies
        without exceptions, and (trusted, exceptions) for each policy with some."""
        trusting = {
            pk for pk, row in self._policies.items() if row["enabled"] and row["mode"] != Policy.REPORT
        }
        plain: list[Entry] = []
        with_denies: dict[int, list[Entry]] = defaultdict(list)
        for policy_id, entry in self._csrf.values():
            if policy_id not in trusting:
                continue
            if self._tables.get((policy_id, True)):
                with_denies[policy_id].append(entry)
            else:
                plain.append(entry)
        csrf = CompiledPolicy(name="(csrf)", table=EntryTable.build(plain))
        pairs = [(EntryTable.build(entries), self._tables[pk, True]) for pk, entries in with_denies.items()]
        return csrf, pairs


def settings_snapshot(
    policies: list[CompiledPolicy] | None = None,
    generation: Any = None,
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


def load_snapshot() -> Snapshot:
    """A snapshot of everything, built from scratch (for tools and tests)."""
    return SnapshotBuilder().load()
