"""Usage per entry (``hits``, ``last_seen``: the requests an allow entry allowed, or a deny
entry refused) and allowed/refused requests per policy.

The request path adds one to plain dictionaries of this process: no lock, no I/O (a
rare increment lost between two threads is the price). The process's flush thread
(``corsadmin.flusher``, also at exit; or a call to ``flush()``) swaps them for empty ones at most once
per ``USAGE_INTERVAL`` and adds them to the database as increments, so every worker's
counts add up: one row per entry (``OriginUsage``), one per entry and hour
(``OriginHour``) and one per policy and hour (``PolicyHour``), upserted with
``INSERT ... ON CONFLICT DO UPDATE SET n = n + excluded.n`` on PostgreSQL and SQLite.
Hourly rows older than ``USAGE_RETENTION_DAYS`` are pruned by the flush. Usage is not
configuration: no generation moves, no snapshot is rebuilt, and exports leave it out.

Disabled (``CORSADMIN["USAGE"] = False``), the middleware pays one test of ``ENABLED``. The
middleware's refusals are counted in ``corsadmin.refusals`` (one count for usage and
telemetry) and added to the per-policy counts when they are flushed.
"""

from __future__ import annotations

import json
import logging
import math
import os
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.core.signals import setting_changed
from django.db import connection, transaction
from django.db.models import F, IntegerField, Q, QuerySet, Value
from django.db.models.functions import Coalesce
from django.dispatch import receiver

from . import conf
from .flusher import Job, flusher

if TYPE_CHECKING:
    from typing import TypedDict

    from django_stubs_ext import WithAnnotations

    from .models import AllowedOrigin
    from .snapshot import Snapshot

    class Usage(TypedDict):
        """What ``with_usage`` adds to each allowed origin."""

        hits: int
        last_seen: datetime | None

    OriginWithUsage = WithAnnotations[AllowedOrigin, Usage]

logger = logging.getLogger("corsadmin")

# The middleware's guard, set from CORSADMIN["USAGE"] when the app is ready and when the
# setting changes.
ENABLED = False
HOUR = 3600
BATCH = 500  # ids per IN (...) on databases other than PostgreSQL and SQLite
# Counts kept for the next flush when the database cannot take them (keys, not requests).
MAX_PENDING = 100_000
PRUNE_EVERY = 3600.0  # seconds between two prunes by one process

clock = time.time  # tests replace it with a fake clock

# hour number since the epoch -> {entry id: [count, last seen as a UNIX time]}
_entries: dict[int, dict[int, list[Any]]] = {}
# hour number -> {policy name: [allowed, refused]}
_policies: dict[int, dict[str, list[int]]] = {}
# The current hour's dictionaries, so a request builds no key: renewed when the clock passes
# _hour_end or the flush swaps the dictionaries above.
_hour_end = 0.0
_hour = 0
_cur_entries: dict[int, list[Any]] = {}
_cur_policies: dict[str, list[int]] = {}
# The covering policy of refused paths, for the snapshot it was computed with (a path
# regex may cost microseconds; refusals repeat the same few paths).
_covering: dict[tuple[str | None, str], str | None] = {}
_covering_for: tuple[int, float] = (0, 0.0)
MEMO_SIZE = 4096
_UNKNOWN = "\x00"  # never a policy's name (a slug)
_flush_lock = threading.Lock()
_pruned_at: float | None = None
# Set by ``corsadmin.refusals`` when it is imported (it imports this module): take the
# refusals counted there (hour -> {policy: count}), and whether some wait.
upstream: tuple[Callable[[], dict[int, dict[str, int]]], Callable[[], bool]] = (dict, bool)


def configure() -> None:
    """Read ``CORSADMIN["USAGE"]`` (at start-up and when the setting changes)."""
    global ENABLED
    ENABLED = bool(conf.get("USAGE"))


def now() -> datetime:
    """The usage clock's time (aware, UTC): the filters' "unused for N days" reads it."""
    return datetime.fromtimestamp(clock(), UTC)


# --- the request path ------------------------------------------------------------------


def _new_hour(at: float) -> None:
    global _hour, _hour_end, _cur_entries, _cur_policies
    hour = int(at) // HOUR
    _cur_entries = _entries.setdefault(hour, {})
    _cur_policies = _policies.setdefault(hour, {})
    _hour, _hour_end = hour, (hour + 1) * HOUR
    _ensure_flusher()


def allowed(policy: str | None, entry_id: int | None) -> None:
    """One request allowed by ``policy`` through the entry ``entry_id`` (None: allow-all,
    the settings policy or a receiver)."""
    at = clock()
    if at >= _hour_end or at < _hour_end - HOUR:
        _new_hour(at)
    if entry_id is not None:
        slot = _cur_entries.get(entry_id)
        if slot is None:
            _cur_entries[entry_id] = [1, at]
        else:
            slot[0] += 1
            slot[1] = at
    counts = _cur_policies.get(policy or "")
    if counts is None:
        _cur_policies[policy or ""] = [1, 0]
    else:
        counts[0] += 1


def denied(entry_id: int) -> None:
    """One request refused by the deny entry ``entry_id`` in its policy: a hit of that entry
    (the request is counted for its policy by ``allowed`` or ``refused``)."""
    at = clock()
    if at >= _hour_end or at < _hour_end - HOUR:
        _new_hour(at)
    slot = _cur_entries.get(entry_id)
    if slot is None:
        _cur_entries[entry_id] = [1, at]
    else:
        slot[0] += 1
        slot[1] = at


def refused(snapshot: Snapshot, path: str, host: str | None = None) -> None:
    """One cross-origin request refused on ``path`` (at ``host``): counted for the first
    enforcing policy of the snapshot (by priority) that covers it."""
    at = clock()
    if at >= _hour_end or at < _hour_end - HOUR:
        _new_hour(at)
    name = covering(snapshot, path, host)
    if name is None:
        return
    counts = _cur_policies.get(name)
    if counts is None:
        _cur_policies[name] = [0, 1]
    else:
        counts[1] += 1


def covering(snapshot: Snapshot, path: str, host: str | None = None) -> str | None:
    """The policy a refusal on ``path`` (at ``host``) counts for: the snapshot's first
    enforcing policy (by priority) covering it; None: no policy."""
    global _covering, _covering_for
    if snapshot.built_at != _covering_for[1] or id(snapshot) != _covering_for[0]:
        _covering, _covering_for = {}, (id(snapshot), snapshot.built_at)
    key = (host, path)
    name = _covering.get(key, _UNKNOWN)  # one get: another thread may clear the memo meanwhile
    if name == _UNKNOWN:
        # (report-only policies never decide; per-host policies only for their hosts; a policy
        # that can allow nothing covers nothing)
        applying = snapshot.hosts.get(host)
        now = time.time()
        policy = next((p for p in applying if not p.report and p.covers(path, now)), None)
        name = None if policy is None else policy.name
        if policy is None or policy.live_until == math.inf:  # else it may cover nothing later
            memo = _covering
            if len(memo) >= MEMO_SIZE:
                memo.clear()
            memo[key] = name
    return name


def _ensure_flusher() -> None:
    if job.pid != os.getpid() and conf.get("USAGE_FLUSH") == "background":
        flusher.ensure_started(job)


def pending() -> bool:
    return any(_entries.values()) or any(_policies.values()) or upstream[1]()


# --- the flush -------------------------------------------------------------------------


def flush() -> int:
    """Add this process's counts to the database; returns how many rows were written."""
    global _entries, _policies, _hour_end
    with _flush_lock:
        entries, _entries = _entries, {}
        policies, _policies = _policies, {}
        _hour_end = 0.0  # the next request takes new current-hour dictionaries
        for hour, per_policy in upstream[0]().items():  # refusals counted in corsadmin.refusals
            for name, n in per_policy.items():
                policies.setdefault(hour, {}).setdefault(name, [0, 0])[1] += n
        written = 0
        if any(entries.values()) or any(policies.values()):
            try:
                written = _write(entries, policies)
            except Exception:
                _keep(entries, policies)
                raise
        if _pruned_at is None or clock() - _pruned_at >= PRUNE_EVERY:
            prune()
        return written


def _keep(entries: dict[int, dict[int, list[Any]]], policies: dict[int, dict[str, list[int]]]) -> None:
    """Put counts the database refused back for the next flush (up to MAX_PENDING hours)."""
    for hour, counts in entries.items():
        mine = _entries.setdefault(hour, {}) if len(_entries) < MAX_PENDING else {}
        for entry_id, (count, last) in counts.items():
            slot = mine.setdefault(entry_id, [0, last])
            slot[0] += count
            slot[1] = max(slot[1], last)
    for hour, per_policy in policies.items():
        mine_p = _policies.setdefault(hour, {}) if len(_policies) < MAX_PENDING else {}
        for name, (allowed_count, refused_count) in per_policy.items():
            slot = mine_p.setdefault(name, [0, 0])
            slot[0] += allowed_count
            slot[1] += refused_count


def _hour_start(hour: int) -> datetime:
    return datetime.fromtimestamp(hour * HOUR, UTC)


def _write(entries: dict[int, dict[int, list[Any]]], policies: dict[int, dict[str, list[int]]]) -> int:
    from .models import AllowedOrigin, OriginHour, OriginUsage, PolicyHour

    flat = {(entry_id, hour): slot for hour, counts in entries.items() for entry_id, slot in counts.items()}
    per_name = {(name, hour): slot for hour, counts in policies.items() for name, slot in counts.items()}
    existing = _existing(AllowedOrigin, sorted({entry_id for entry_id, _ in flat}))
    totals: dict[int, list[Any]] = {}
    hours: list[tuple[int, datetime, int]] = []
    for (entry_id, hour), (count, last) in sorted(flat.items()):  # one lock order for every writer
        if entry_id not in existing:
            continue
        hours.append((entry_id, _hour_start(hour), count))
        total = totals.setdefault(entry_id, [0, last])
        total[0] += count
        total[1] = max(total[1], last)
    usage = [
        (entry_id, hits, datetime.fromtimestamp(last, UTC))
        for entry_id, (hits, last) in sorted(totals.items())
    ]
    per_policy = [
        (name, _hour_start(hour), a, r) for (name, hour), (a, r) in sorted(per_name.items()) if a or r
    ]
    with transaction.atomic():
        _upsert(OriginUsage, ("origin_id", "hits", "last_seen"), ("origin_id",), usage)
        _upsert(OriginHour, ("origin_id", "hour", "count"), ("origin_id", "hour"), hours)
        _upsert(PolicyHour, ("policy", "hour", "allowed", "refused"), ("policy", "hour"), per_policy)
    return len(usage) + len(hours) + len(per_policy)


def _bulk() -> bool:
    """One statement per table whatever the number of rows: the rows travel as one JSON value."""
    return connection.vendor == "postgresql" or (
        connection.vendor == "sqlite" and connection.features.supports_json_field
    )


# ``model``: one of the counting tables (OriginUsage, OriginHour, PolicyHour; AllowedOrigin for
# ``_existing``), used through ``objects``, which django-stubs does not declare on ``type[Model]``.
def _existing(model: Any, ids: list[int]) -> set[int]:
    """The ids still in ``model``'s table (an entry may be deleted since the snapshot was built)."""
    if not ids:
        return set()
    if _bulk():
        table = connection.ops.quote_name(model._meta.db_table)
        pk = connection.ops.quote_name(model._meta.pk.column)
        where = "= ANY(%s)" if connection.vendor == "postgresql" else "IN (SELECT value FROM json_each(%s))"
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT {pk} FROM {table} WHERE {pk} {where}",
                [ids if connection.vendor == "postgresql" else json.dumps(ids)],
            )
            return {row[0] for row in cursor.fetchall()}
    existing: set[int] = set()
    for start in range(0, len(ids), BATCH):
        existing.update(model.objects.filter(pk__in=ids[start : start + BATCH]).values_list("pk", flat=True))
    return existing


def _upsert(
    model: Any, columns: Sequence[str], keys: Sequence[str], rows: Sequence[tuple[object, ...]]
) -> None:
    """Insert the rows; where one exists, add the counts to it (``last_seen``: the later)."""
    if not rows:
        return
    if not _bulk():
        _upsert_orm(model, columns, keys, rows)
        return
    qn = connection.ops.quote_name
    table = qn(model._meta.db_table)
    sets = []
    for column in columns:
        if column in keys:
            continue
        mine, theirs = f"{table}.{qn(column)}", f"excluded.{qn(column)}"
        if column == "last_seen":
            sets.append(
                f"{qn(column)} = CASE WHEN {mine} IS NULL OR {theirs} > {mine} THEN {theirs} ELSE {mine} END"
            )
        else:
            sets.append(f"{qn(column)} = {mine} + {theirs}")
    fields = {f.column: f for f in model._meta.concrete_fields}
    if connection.vendor == "postgresql":
        parts = [f"(e->>{i})::{fields[c].cast_db_type(connection)}" for i, c in enumerate(columns)]
        source = "jsonb_array_elements(%s::jsonb) AS e"
    else:
        parts = [f"json_extract(value, '$[{i}]')" for i, _ in enumerate(columns)]
        source = "json_each(%s)"
    batch = json.dumps(
        [
            [_json(fields[c].get_db_prep_value(v, connection)) for c, v in zip(columns, row, strict=True)]
            for row in rows
        ]
    )
    names = ", ".join(qn(c) for c in columns)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} ({names}) SELECT {', '.join(parts)} FROM {source} WHERE 1 = 1"
            f" ON CONFLICT ({', '.join(qn(k) for k in keys)}) DO UPDATE SET {', '.join(sets)}",
            [batch],
        )


def _json(value: object) -> object:
    return value.isoformat() if isinstance(value, datetime) else value


def _upsert_orm(
    model: Any, columns: Sequence[str], keys: Sequence[str], rows: Sequence[tuple[Any, ...]]
) -> None:
    """Other databases: update by increments, else create (a concurrent create: update again)."""
    from django.db import IntegrityError

    for row in rows:
        values = dict(zip(columns, row, strict=True))
        lookup = {k: values[k] for k in keys}
        changes = {c: F(c) + values[c] for c in columns if c not in keys and c != "last_seen"}
        if "last_seen" in values:
            changes["last_seen"] = values["last_seen"]  # a flush carries the latest it saw
        for _ in range(2):
            if model.objects.filter(**lookup).update(**changes):
                break
            try:
                with transaction.atomic():
                    model.objects.create(**values)
                break
            except IntegrityError:
                continue


def prune() -> int:
    """Drop hourly rows older than ``USAGE_RETENTION_DAYS``, the usage of deleted entries, and
    the entries origin leases added once they expired."""
    from .models import AllowedOrigin, OriginHour, OriginUsage, PolicyHour

    global _pruned_at
    _pruned_at = clock()
    cutoff = now() - timedelta(days=float(conf.get("USAGE_RETENTION_DAYS")))
    removed = OriginHour.objects.filter(hour__lt=cutoff).delete()[0]
    removed += PolicyHour.objects.filter(hour__lt=cutoff).delete()[0]
    alive = AllowedOrigin.objects.values("pk")
    removed += OriginUsage.objects.exclude(origin_id__in=alive).delete()[0]
    removed += OriginHour.objects.exclude(origin_id__in=alive).delete()[0]
    from .leases import prune_expired  # the entries leases added, once expired

    return removed + prune_expired(now())


# --- reading ---------------------------------------------------------------------------


def with_usage(queryset: QuerySet[AllowedOrigin]) -> QuerySet[OriginWithUsage]:
    """Allowed origins annotated with ``hits`` and ``last_seen`` (one join, no query per row)."""
    return queryset.annotate(
        hits=Coalesce(F("usage__hits"), Value(0), output_field=IntegerField()),
        last_seen=F("usage__last_seen"),
    )


def unused(days: float) -> Q:
    """Allow entries never seen, or not seen for ``days`` days (by the usage clock).

    Never a deny entry: whatever picks "unused" entries picks them to disable or delete, and
    removing an exception widens what is allowed (a deny entry's hits count what it refused)."""
    cutoff = now() - timedelta(days=days)
    return Q(effect="allow") & (Q(usage__last_seen__isnull=True) | Q(usage__last_seen__lt=cutoff))


def hits_of(obj: Any) -> tuple[int, datetime | None]:
    """(hits, last_seen) of one origin: annotated by ``with_usage``, else read."""
    if hasattr(obj, "hits"):
        return obj.hits, obj.last_seen
    from .models import OriginUsage

    row = (
        OriginUsage.objects.filter(origin_id=obj.pk).values_list("hits", "last_seen").first()
        if obj.pk
        else None
    )
    return row if row is not None else (0, None)


def _drop_inherited_counts() -> None:
    """In a forked child: what the parent counted is the parent's to write."""
    global _flush_lock, _hour_end
    _flush_lock = threading.Lock()
    _entries.clear()
    _policies.clear()
    _hour_end = 0.0


job = flusher.register(
    Job(
        "usage",
        flush,
        interval=lambda: float(conf.get("USAGE_INTERVAL")),
        pending=pending,
        what="usage counts",
        event="usage_failed",
        forked=_drop_inherited_counts,
    )
)


@receiver(setting_changed)
def _setting_changed(setting: str, **kwargs: object) -> None:
    if setting == "CORSADMIN":
        configure()
