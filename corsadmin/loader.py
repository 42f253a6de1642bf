"""Reading the allow-list from the database: all of it once, then only what changed.

A ``SnapshotBuilder`` belongs to one process's refresher. It remembers what its last
snapshot was built from (the policies, each one's ``EntryTable``, and the text of
every listed entry), so that the next snapshot reads only the rows stamped after
that snapshot's generation and the tombstones of what was deleted: O(changes), not
O(entries). It rebuilds from scratch when it has no snapshot yet, when the change
log no longer reaches back to its generation, or when a tombstone asks for it.

A build that fails changes nothing: the generation, the tables and the texts move only
together with a snapshot built from them (a full load builds in locals, an update keeps an
undo journal), so the next cycle tries the same change again. A row that cannot be
compiled (written around validation) is skipped, never the refresh: one log line naming
it and why, the ``row_skipped`` signal, and ``Snapshot.skipped`` for ``check`` to show.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, MutableMapping
from typing import Any, TypeVar, cast

from django.db import router
from django.utils import timezone

from . import conf, snapshot_file, snapshot_store
from .compiler import Scoped, TableKey, by_policy, compile_policy, scope_bits, settings_snapshot
from .entries import EMPTY_TABLE, Entry, EntryTable, entry_key
from .load_rows import Skipped, collector_paused, expiry, load_chunk, stored_platform, why
from .models import AllowedOrigin, Generation, Policy, Tombstone
from .origins import NULL
from .signals import row_skipped
from .snapshot import Snapshot

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
ORIGIN_FIELDS = (
    "id", "policy_id", "origin", "expires_at", "csrf_trusted", "enabled", "effect", "cors", "websocket"
)  # fmt: skip
DENY = AllowedOrigin.DENY


_MISSING = object()
_Key = TypeVar("_Key")
_Value = TypeVar("_Value")


class _Journal:
    """The old values of what an update changed in place, to put back if its build fails."""

    def __init__(self) -> None:
        # (table, key, old value or _MISSING): the tables hold keys and values of many types
        self._undo: list[tuple[MutableMapping[Any, Any], Any, Any]] = []

    def set(self, table: MutableMapping[_Key, _Value], key: _Key, value: _Value) -> None:
        self._undo.append((table, key, table.get(key, _MISSING)))
        table[key] = value

    def pop(self, table: MutableMapping[_Key, _Value], key: _Key) -> _Value | None:
        old = table.pop(key, _MISSING)
        if old is _MISSING:
            return None
        self._undo.append((table, key, old))
        return cast(_Value, old)

    def rollback(self) -> None:
        for table, key, old in reversed(self._undo):
            if old is _MISSING:
                table.pop(key, None)
            else:
                table[key] = old
        self._undo.clear()


def read_alias() -> str:
    """The database the allow-list is read from (the routers' choice for reading policies)."""
    return router.db_for_read(Policy) or "default"


def database_generation(using: str | None = None) -> int:
    value = Generation.objects.using(using).filter(pk=1).values_list("value", flat=True).first()
    return value or 0


class SnapshotBuilder:
    """What one process's snapshot was built from; see the module's docstring.

    ``using``: the database alias to read (default: ``read_alias()`` at each read).
    ``progress``: called while a long read advances (the refresher's deadline watches it).

    What it holds, as of ``generation`` (the database's generation the last snapshot was
    built at; None before the first load):

    - ``_policies``: policy id -> its row (``POLICY_FIELDS``), every stored policy, enabled
      or not.
    - ``_tables``: (policy id, deny?) -> ``EntryTable`` of the entries that were enabled,
      unexpired and valid when read (an expired one stays until a write touches it: the
      table's lookups ignore it). Every policy has an allow table (perhaps empty); a deny
      table exists once one of its deny entries was read. Tables are never changed in place
      (``EntryTable.changed`` makes the next): the snapshot shares them, not these dicts.
    - ``_texts``: entry id -> stored text, for exactly the entries in ``_tables``: where an
      entry sat, found again when it changes or its tombstone (an id only) comes.
    - ``_scoped``: entry id -> (policy id, entry, scope bits), the allow entries trusted by the
      CSRF check or allowed WebSockets (those not for CORS are in no table, and no ``_texts``);
      their tables are made from it at each build.
    - ``_bad``: entry id -> ``Skipped``, the rows that raised as they were read (in no table;
      an invalid text is only logged).
    - ``_reported``, ``_ignored_hosting``: what was logged already (one line per skip).

    ``load`` rebuilds them all in locals and assigns them with ``generation`` once its
    snapshot is built; ``update`` changes them in place through an undo journal, rolled back
    when its build fails, and moves ``generation`` only after it succeeded.
    """

    def __init__(self, using: str | None = None) -> None:
        self.using = using
        self.generation: int | None = None
        self.full_loads = 0
        self.file_loads = 0  # first snapshots read from a snapshot file (then caught up)
        self.updates = 0
        self.unsaved = False  # a full load not yet written to a snapshot file (``save``)
        self._epoch = ""  # the database's epoch at the last full load (or of the file read)
        self._file_due = 0.0  # monotonic: when ``keep_file_fresh`` looks again
        self.progress: Callable[[], None] = _nothing
        self.only: Callable[[Any], Iterator[tuple[Any, ...]]] | None = None  # the rows a preview needs
        self.skipped: tuple[Skipped, ...] = ()  # what the last snapshot left out
        self._policies: dict[int, dict[str, Any]] = {}
        self._tables: dict[TableKey, EntryTable] = {}
        self._texts: MutableMapping[int, str] = {}  # a ``TextIndex`` when read from a file
        self._scoped: Scoped = {}
        self._bad: dict[int, Skipped] = {}
        self._reported: set[tuple[str, int, str]] = set()  # (kind, row id, reason)
        self._ignored_hosting: set[tuple[str, str]] = set()  # (policy, wildcard)

    def load(self) -> Snapshot:
        """Everything, from scratch."""
        using = self.using or read_alias()
        epoch = snapshot_file.database_epoch(using)  # "" when snapshot files are off
        generation = database_generation(using)  # first, so the snapshot is never newer than its number
        now = timezone.now()
        policies = {row["id"]: row for row in Policy.objects.using(using).values(*POLICY_FIELDS)}
        tables: dict[TableKey, EntryTable] = {(pk, False): EntryTable() for pk in policies}
        texts: dict[int, str] = {}
        scoped: Scoped = {}
        bad: dict[int, Skipped] = {}
        # In any order: sorting a million rows costs the database seconds. ``only``: a preview's.
        live = AllowedOrigin.objects.using(using).filter(enabled=True).exclude(expires_at__lte=now).order_by()
        rows = self.only(live) if self.only else live.values_list(*ORIGIN_FIELDS).iterator(chunk_size=10000)
        progress = self.progress
        # Straight into the tables, a chunk at a time: no list of a million tuples on the way.
        with collector_paused():
            while chunk := tuple(itertools.islice(rows, 10000)):
                progress()
                load_chunk(chunk, policies, tables, texts, scoped, bad)
        for table in tables.values():
            table.seal()
        if epoch and snapshot_file.database_epoch(using) != epoch:
            epoch = ""  # a new generation row meanwhile (another history): write no file of this
        snapshot = self._build(policies, tables, scoped, bad, generation)
        # Build, then swap: nothing above touched this builder.
        self._policies, self._tables, self._texts = policies, tables, texts
        self._scoped, self._bad = scoped, bad
        self.generation, self._epoch = generation, epoch
        self.full_loads += 1
        self.unsaved = True
        return snapshot

    def _first(self) -> Snapshot:
        """The first snapshot: from this host's newest usable snapshot file (or one the database
        holds), then caught up as any update is (so what was revoked since is revoked); else
        the full load."""
        state = snapshot_store.first_state(self.using or read_alias(), self.progress)
        if state is None:
            return self.load()
        self._adopt(state)
        try:
            snapshot = self.update()
        except BaseException:
            self.generation = None  # not served: the next try starts from the top
            raise
        self.file_loads += 1
        return snapshot if snapshot is not None else self._snapshot()

    def save(self) -> Snapshot | None:
        """After a full load: write it to this host's snapshot file, and from then on hold the
        tables read back from it (mapped: their pages shared by every process mapping the
        file). The snapshot of those (the same generation and contents), or None (off, failed)."""
        self.unsaved = False
        if self.generation is None:
            return None
        saved = snapshot_file.save(self._state(self.generation), self._epoch, self.using or read_alias())
        if saved is None:
            return None
        self._adopt(saved)
        return self._snapshot()

    def keep_file_fresh(self) -> None:
        """Now and then (a minute apart, ten after a write): ``snapshot_file.refresh``."""
        if self.generation is not None and self._epoch and time.monotonic() >= self._file_due:
            wrote = snapshot_file.refresh(self._state(self.generation), self.using or read_alias())
            self._file_due = time.monotonic() + (600 if wrote else 60)

    def _state(self, generation: int) -> snapshot_file.State:
        bad = {pk: tuple(row) for pk, row in self._bad.items()}
        return snapshot_file.State(
            generation, self._policies, self._tables, self._texts, self._scoped, bad, self._epoch
        )

    def _adopt(self, state: snapshot_file.State) -> None:
        self._policies, self._tables, self._texts = state.policies, state.tables, state.texts
        self._scoped, self._bad = state.scoped, {pk: Skipped(*row) for pk, row in state.bad.items()}
        self.generation, self._epoch = state.generation, state.epoch

    def update(self) -> Snapshot | None:
        """What changed since the last snapshot (None: nothing did); a full load when needed."""
        if self.generation is None:
            return self._first()
        using = self.using or read_alias()
        stamp = Generation.objects.using(using).filter(pk=1).values_list("value", "pruned").first() or (0, 0)
        generation, pruned = stamp
        since = self.generation
        if generation == since:
            return None
        if generation < since or since < pruned:  # a restored database, or behind the change log
            return self.load()
        tombstones = list(
            Tombstone.objects.using(using)
            .filter(generation__gt=since, generation__lte=generation)
            .values_list("kind", "row_id")
        )
        if any(kind == Tombstone.RELOAD for kind, _ in tombstones):
            return self.load()
        window = {"version__gt": since, "version__lte": generation}
        policies = list(Policy.objects.using(using).filter(**window).values(*POLICY_FIELDS))
        origins = list(
            AllowedOrigin.objects.using(using).filter(**window).order_by().values_list(*ORIGIN_FIELDS)
        )
        journal = _Journal()
        try:
            self._apply(journal, tombstones, policies, origins)
            snapshot = self._build(self._policies, self._tables, self._scoped, self._bad, generation)
        except BaseException:
            journal.rollback()  # a build that fails changes nothing: the next cycle tries again
            raise
        self.generation = generation
        self.updates += 1
        return snapshot

    def _apply(
        self,
        journal: _Journal,
        tombstones: list[tuple[str, Any]],
        policies: list[dict[str, Any]],
        origins: list[tuple[Any, ...]],
    ) -> None:
        removed: dict[TableKey, list[tuple[str, Any]]] = defaultdict(list)
        added: dict[TableKey, list[tuple[tuple[str, Any], Entry]]] = defaultdict(list)
        for kind, row_id in tombstones:
            if kind == "policy" and row_id in self._policies:
                self._drop_policy(journal, row_id)
            elif kind == "allowedorigin":
                self._forget(journal, row_id, removed)
        for row in policies:
            journal.set(self._policies, row["id"], row)
            if (row["id"], False) not in self._tables:
                journal.set(self._tables, (row["id"], False), EMPTY_TABLE)
        now = timezone.now().timestamp()
        for entry_id, policy_id, text, expires_at, csrf_trusted, enabled, effect, cors, websocket in origins:
            self._forget(journal, entry_id, removed)
            try:
                expires = expiry(expires_at)
                if not enabled or expires <= now or policy_id not in self._policies:
                    continue
                found = entry_key(text)
            except Exception as exc:  # one bad row: skip it, keep the rest
                name = self._policies.get(policy_id, {}).get("name", "?")
                journal.set(self._bad, entry_id, Skipped("origin", entry_id, str(text), name, why(exc)))
                continue
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
            if deny or cors:
                added[policy_id, deny].append(((found[0], found[1]), entry))
                journal.set(self._texts, entry_id, text)
            bits = 0 if deny else scope_bits(csrf_trusted, websocket)
            if bits:
                journal.set(self._scoped, entry_id, (policy_id, entry, bits))
        for key in removed.keys() | added.keys():
            if key[0] in self._policies:
                table = self._tables.get(key, EMPTY_TABLE).changed(removed.get(key, ()), added.get(key, ()))
                journal.set(self._tables, key, table)

    def _forget(
        self, journal: _Journal, entry_id: int, removed: dict[TableKey, list[tuple[str, Any]]]
    ) -> None:
        """Note where an entry was, to remove it (it moved, changed or went)."""
        text = journal.pop(self._texts, entry_id)
        journal.pop(self._scoped, entry_id)
        journal.pop(self._bad, entry_id)
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

    def _drop_policy(self, journal: _Journal, policy_id: int) -> None:
        for deny in (False, True):
            table = journal.pop(self._tables, (policy_id, deny)) or EMPTY_TABLE
            for entry_id in list(table.ids()):
                journal.pop(self._texts, entry_id)
        for entry_id in [pk for pk, (owner, _entry, _bits) in self._scoped.items() if owner == policy_id]:
            journal.pop(self._scoped, entry_id)
        for entry_id in [
            pk for pk, bad in self._bad.items() if bad.policy == self._policies[policy_id]["name"]
        ]:
            journal.pop(self._bad, entry_id)
        journal.pop(self._policies, policy_id)

    def _snapshot(self) -> Snapshot:
        """The snapshot of what this builder holds now (tools and tests)."""
        return self._build(self._policies, self._tables, self._scoped, self._bad, self.generation)

    def _build(
        self,
        policies: dict[int, dict[str, Any]],
        tables: dict[TableKey, EntryTable],
        scoped: Scoped,
        bad: dict[int, Skipped],
        generation: int | None,
    ) -> Snapshot:
        compiled = []
        skipped = list(bad.values())
        null_with_credentials = conf.get("ALLOW_NULL_WITH_CREDENTIALS")
        trusted = by_policy(scoped)
        logged: set[tuple[str, str]] = set()
        for pk, row in policies.items():
            if not row["enabled"]:
                continue
            refuse_null = row["allow_credentials"] and not null_with_credentials
            table = tables.get((pk, False), EMPTY_TABLE)
            if refuse_null and table.exact_value(NULL) is not None:
                # Written around validation (QuerySet.update, raw SQL, loaddata): never honoured.
                logger.warning(
                    "corsadmin: ignoring null in policy %s, which allows credentials",
                    row["name"],
                    extra={"event": "ignored_origin", "origin": NULL, "policy": row["name"]},
                )
            ignored: tuple[Entry, ...] = ()
            if row["allow_credentials"]:
                ignored = table.hosting_wildcards()
            if ignored:
                # Written before the rule or around validation: never honoured, as null is not.
                table = table.without_hosting_wildcards()
                logged.update((row["name"], entry[1]) for entry in ignored)
            try:
                denies, (csrf, websocket) = tables.get((pk, True)), trusted.get(pk, ((), ()))
                compiled.append(compile_policy(row, table, denies, refuse_null, ignored, csrf, websocket))
            except Exception as exc:  # noqa: BLE001  (OverflowError, RecursionError...: skip it, keep the others)
                skipped.append(Skipped("policy", pk, row["name"], row["name"], why(exc)))
        self._report_hosting(logged)
        snapshot = settings_snapshot(compiled, generation)
        snapshot.skipped = tuple(skipped)
        self.skipped = snapshot.skipped
        self._report(snapshot.skipped)
        return snapshot

    def _report_hosting(self, ignored: set[tuple[str, str]]) -> None:
        """One log line per (policy, wildcard on shared hosting) newly ignored by this builder."""
        for policy, text in sorted(ignored - self._ignored_hosting):
            logger.warning(
                "corsadmin: ignoring %r in policy %s, which allows credentials: %s is a shared hosting "
                "platform where anyone can publish",
                text,
                policy,
                stored_platform(text),
                extra={"event": "ignored_origin", "origin": text, "policy": policy},
            )
        self._ignored_hosting = ignored

    def _report(self, skipped: tuple[Skipped, ...]) -> None:
        """One log line and one ``row_skipped`` signal per row newly left out (not at every build)."""
        keys = set()
        for row in skipped:
            key = (row.kind, row.row_id, row.reason)
            keys.add(key)
            if key in self._reported:
                continue
            logger.warning(
                "corsadmin: ignoring %s, it cannot be compiled (%s); fix or delete it",
                row.label,
                row.reason,
                extra={"event": f"ignored_{row.kind}", "policy": row.policy},
            )
            row_skipped.send(sender=SnapshotBuilder, kind=row.kind)
        self._reported = keys


def _nothing() -> None:
    pass


def load_snapshot() -> Snapshot:
    """A snapshot of everything, built from scratch (for tools and tests)."""
    return SnapshotBuilder().load()
