"""The refused list in the database: written in batches, bounded at every moment.

A flush writes its rows in one transaction: a lock that serializes the writers of every
process (``pg_advisory_xact_lock`` on PostgreSQL; SQLite's one writer, taken by the
transaction's first statement), one upsert statement for the whole batch, then the trim
to the budgets. Readers only ever see committed states, so the table never holds more
than ``REFUSED_MAX_ROWS`` rows, even while several workers flush at once.

Budgets: ``REFUSED_REPORT_ROWS`` of the ``REFUSED_MAX_ROWS`` are kept for report-only
policies' would-be refusals (``report`` rows), the rest for ordinary refusals; either
kind may use the space the other leaves unused, and gives it back when the other needs
it. Within its budget a kind keeps its most requested rows (count, then last seen), and
a tenth of the budget for the most recently seen of the others, so a new refusal is
counted even when the list is full of busier ones. Dismissed rows go first.

One flush inserts at most ``REFUSED_MAX_ROWS`` new rows (the most counted first); rows
already stored always count.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from django.db import connection, transaction
from django.db.models import Count, F

from . import conf

# origin, path prefix, report, policy, count, first seen, last seen
Row = tuple[str, str, bool, str, int, datetime, datetime]

LOCK_KEY = 0x636F7273  # the PostgreSQL advisory lock of the refused list's writers ("cors")
FRESH_SHARE = 10  # one row in ten of a budget is kept for the most recently seen


def budgets() -> tuple[int, int]:
    """(rows in all, rows kept for report-only would-be refusals)."""
    total = max(0, int(conf.get("REFUSED_MAX_ROWS")))
    report = min(total, max(0, int(conf.get("REFUSED_REPORT_ROWS"))))
    return total, report


def limits(ordinary: int, report: int) -> dict[bool, int]:
    """Rows each kind may keep, given how many each holds: its budget and what the other leaves."""
    total, report_budget = budgets()
    ordinary_budget = total - report_budget
    return {
        False: ordinary_budget + max(0, report_budget - report),
        True: report_budget + max(0, ordinary_budget - ordinary),
    }


def write(rows: Sequence[Row], expire_before: datetime | None = None) -> None:
    """Add the rows' counts to the list, keep it within its budgets and, with
    ``expire_before``, drop rows last seen before then; all in one locked transaction."""
    with transaction.atomic():
        _lock()
        if rows:
            if _bulk():
                _upsert(rows)
            else:
                _upsert_orm(rows)
        if expire_before is not None:
            _expire(expire_before)
        trim()


def prune(expire_before: datetime | None) -> None:
    write((), expire_before)


def _bulk() -> bool:
    return connection.vendor == "postgresql" or (
        connection.vendor == "sqlite" and connection.features.supports_json_field
    )


def _table() -> str:
    from .models import RefusedOrigin

    return connection.ops.quote_name(RefusedOrigin._meta.db_table)


def _lock() -> None:
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [LOCK_KEY])
        elif connection.vendor == "sqlite":
            # A write first: the transaction holds SQLite's write lock before it reads anything
            # (a deferred transaction upgrading from a read would fail instead of waiting).
            count = connection.ops.quote_name("count")
            cursor.execute(f"UPDATE {_table()} SET {count} = {count} WHERE 1 = 0")


def _upsert(rows: Sequence[Row]) -> None:
    """One statement: the batch arrives as one JSON parameter; rows not stored yet are
    inserted (at most ``REFUSED_MAX_ROWS``, most counted first), stored ones add up."""
    qn = connection.ops.quote_name
    table = _table()
    stamp: Callable[[datetime], Any]
    if connection.vendor == "postgresql":
        source = (
            "SELECT e->>0 AS origin, e->>1 AS path_prefix, (e->>2)::boolean AS report, e->>3 AS policy,"
            " (e->>4)::bigint AS n, (e->>5)::timestamptz AS first_seen, (e->>6)::timestamptz AS last_seen"
            " FROM jsonb_array_elements(%s::jsonb) AS e"
        )
        stamp = datetime.isoformat
    else:
        source = (
            "SELECT json_extract(value, '$[0]') AS origin, json_extract(value, '$[1]') AS path_prefix,"
            " json_extract(value, '$[2]') AS report, json_extract(value, '$[3]') AS policy,"
            " json_extract(value, '$[4]') AS n, json_extract(value, '$[5]') AS first_seen,"
            " json_extract(value, '$[6]') AS last_seen FROM json_each(%s)"
        )
        stamp = connection.ops.adapt_datetimefield_value  # the text Django stores
    batch = json.dumps(
        [
            [o, p, bool(r) if connection.vendor == "postgresql" else int(r), y, n, stamp(f), stamp(s)]
            for o, p, r, y, n, f, s in rows
        ]
    )
    key = ", ".join(qn(c) for c in ("origin", "path_prefix", "report", "policy"))
    count, last_seen = f"{table}.{qn('count')}", f"{table}.{qn('last_seen')}"
    sql = (
        f"WITH batch AS ({source}),"
        " marked AS (SELECT b.*, EXISTS (SELECT 1 FROM "
        f"{table} r WHERE r.origin = b.origin AND r.path_prefix = b.path_prefix"
        " AND r.report = b.report AND r.policy = b.policy) AS known FROM batch b),"
        " ranked AS (SELECT m.*, ROW_NUMBER() OVER (PARTITION BY m.known"
        " ORDER BY m.n DESC, m.last_seen DESC, m.origin, m.path_prefix, m.policy) AS pos FROM marked m)"
        f" INSERT INTO {table} ({key}, {qn('count')}, first_seen, last_seen, dismissed)"
        " SELECT origin, path_prefix, report, policy, n, first_seen, last_seen, %s FROM ranked"
        " WHERE known OR pos <= %s"
        " ORDER BY origin, path_prefix, report, policy"  # one lock order for every writer
        f" ON CONFLICT ({key}) DO UPDATE SET {qn('count')} = {count} + excluded.{qn('count')},"
        f" last_seen = CASE WHEN excluded.last_seen > {last_seen} THEN excluded.last_seen"
        f" ELSE {last_seen} END, dismissed = %s"  # a dismissed origin refused again comes back
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [batch, False, budgets()[0], False])


def _upsert_orm(rows: Sequence[Row]) -> None:
    """Other databases: a statement or two per row (the budgets still hold for one writer)."""
    from .models import RefusedOrigin

    inserted = 0
    for origin, prefix, report, policy, count, first, last in sorted(rows, key=lambda r: -r[4]):
        key: dict[str, Any] = {"origin": origin, "path_prefix": prefix, "report": report, "policy": policy}
        updated = RefusedOrigin.objects.filter(**key).update(
            count=F("count") + count, last_seen=last, dismissed=False
        )
        if not updated and inserted < budgets()[0]:
            RefusedOrigin.objects.create(**key, count=count, first_seen=first, last_seen=last)
            inserted += 1


def _expire(before: datetime) -> int:
    from .models import RefusedOrigin

    return RefusedOrigin.objects.filter(last_seen__lt=before).delete()[0]


def trim() -> int:
    """Delete what exceeds each kind's budget: the least requested first (dismissed rows
    before all), keeping a tenth of the budget for the most recently seen. Returns how many went."""
    from .models import RefusedOrigin

    held = dict(RefusedOrigin.objects.values_list("report").annotate(n=Count("id")).order_by())
    held = {bool(k): v for k, v in held.items()}
    keep = limits(held.get(False, 0), held.get(True, 0))
    removed = 0
    table = _table()
    count = connection.ops.quote_name("count")
    for report, limit in keep.items():
        if held.get(report, 0) <= limit:
            continue
        fresh = limit // FRESH_SHARE
        with connection.cursor() as cursor:
            cursor.execute(
                f"DELETE FROM {table} WHERE id IN (SELECT id FROM ("
                " SELECT id, ROW_NUMBER() OVER (ORDER BY last_seen DESC, id DESC) AS by_time FROM ("
                f" SELECT id, last_seen, ROW_NUMBER() OVER (ORDER BY dismissed, {count} DESC,"
                f" last_seen DESC, id DESC) AS by_count FROM {table} WHERE report = %s"
                " ) ranked WHERE by_count > %s) rest WHERE by_time > %s)",
                [report, limit - fresh, fresh],
            )
            removed += cursor.rowcount
    return removed


def expiry(now: datetime) -> datetime | None:
    """Rows last seen before this go (``REFUSED_RETENTION_DAYS``; 0: none)."""
    days = conf.get("REFUSED_RETENTION_DAYS")
    return now - timedelta(days=float(days)) if days else None
