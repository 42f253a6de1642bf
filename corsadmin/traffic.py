"""Traffic per concrete origin: which origins each request came from, for previews.

Keyed by (origin, path prefix, host) per UTC day: ``requests`` and ``last_seen``, and one
path seen under that prefix (what a preview decides the key's requests by). The path
prefix is the path's first segment (``/api/v1/users`` -> ``/api/``), as refused-origin
telemetry has it: a few distinct values per site, however many URLs it has. The host is the
request's ``Host`` header, port-less and lower case, kept only when Django accepts it
(``ALLOWED_HOSTS``); else "".

Allowed requests are counted here by the middleware (one dictionary update, no lock, no
I/O: a rare increment lost between two threads is the price, as for usage); refused ones
are the count ``corsadmin.refusals`` already makes, handed over when it splits. The flush
thread (``corsadmin.flusher``, the same one as usage's) writes them at most once per
``USAGE_INTERVAL`` as increments (``OriginTraffic``), and prunes days older than
``USAGE_RETENTION_DAYS``.

Bounded: at most ``TRAFFIC_MAX_KEYS`` keys per day in memory (what does not fit is counted
in ``dropped``), and at most ``TRAFFIC_MAX_ROWS`` rows in the table (the least recently seen
go first). Disabled (``CORSADMIN["TRAFFIC"] = False``), the middleware pays one test.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.signals import setting_changed
from django.db import connection, transaction
from django.db.models import Max, Sum
from django.dispatch import receiver
from django.http.request import split_domain_port, validate_host

from . import conf, usage
from .flusher import Job, flusher
from .origins import MAX_LENGTH
from .telemetry import path_prefix  # its column's form: at most 100 characters, no NUL

logger = logging.getLogger("corsadmin")

DAY = 86400
PATH_LENGTH = 200  # of the path kept as the key's example
HOST_LENGTH = 253
CHUNK = 100  # rows per INSERT statement

ENABLED = False  # CORSADMIN["TRAFFIC"], read at start-up and when the setting changes
_max_keys = 10000
Key = tuple[str, str, str | None]  # (origin, path prefix as sent, Host header or None)
# day number since the epoch -> {key: [requests, last seen (UNIX time), a path]}
_days: dict[int, dict[Key, list[Any]]] = {}
_current: dict[Key, list[Any]] = {}
_day_end = 0.0
dropped = 0
_flush_lock = threading.Lock()
_pruned_at: float | None = None
# Set by ``corsadmin.refusals`` on import: hand over the refusals counted there, and
# whether some wait (it imports this module, not the other way round).
upstream: tuple[Callable[[], None], Callable[[], bool]] = (lambda: None, lambda: False)


def configure() -> None:
    global ENABLED, _max_keys
    ENABLED = bool(conf.get("TRAFFIC"))
    _max_keys = int(conf.get("TRAFFIC_MAX_KEYS"))


def prefix_of(path: str) -> str:
    end = path.find("/", 1)
    return path[: end + 1] if end != -1 else path


# --- the request path ------------------------------------------------------------------


def _new_day(at: float) -> None:
    global _current, _day_end
    day = int(at) // DAY
    _current = _days.setdefault(day, {})
    _day_end = (day + 1) * DAY
    if job.pid != os.getpid() and conf.get("USAGE_FLUSH") == "background":
        flusher.ensure_started(job)


def host_of(meta: dict[str, Any]) -> str | None:
    """The request's ``Host`` header as sent (the server's name without one)."""
    return meta.get("HTTP_HOST") or meta.get("SERVER_NAME")


def seen(origin: str, path: str, meta: dict[str, Any]) -> None:
    """One allowed request from ``origin`` to ``path`` (``meta``: the request's, for its host)."""
    global dropped
    at = usage.clock()
    if at >= _day_end or at < _day_end - DAY:
        _new_day(at)
    end = path.find("/", 1)
    key = (origin, path[: end + 1] if end != -1 else path, meta.get("HTTP_HOST") or meta.get("SERVER_NAME"))
    slot = _current.get(key)
    if slot is not None:
        slot[0] += 1
        slot[1] = at
    elif len(_current) < _max_keys:
        _current[key] = [1, at, path]
    else:
        dropped += 1


def add(origin: str, path: str, host: str | None, n: int, at: float) -> None:
    """Requests counted elsewhere (refusals, when ``corsadmin.refusals`` splits)."""
    global dropped
    with _flush_lock:
        counts = _days.setdefault(int(at) // DAY, {})
        key = (origin, prefix_of(path), host)
        slot = counts.get(key)
        if slot is not None:
            slot[0] += n
            slot[1] = max(slot[1], at)
        elif len(counts) < _max_keys:
            counts[key] = [n, at, path]
        else:
            dropped += n


def pending() -> bool:
    return any(_days.values()) or upstream[1]()


# --- the flush -------------------------------------------------------------------------


def _host(value: str | None) -> str:
    """The Host header as a policy's ``hosts`` are matched: port-less, lower case; "" when
    Django would refuse it."""
    if not value:
        return ""
    domain, _port = split_domain_port(value)
    allowed = settings.ALLOWED_HOSTS or ([".localhost", "127.0.0.1", "[::1]"] if settings.DEBUG else [])
    return domain[:HOST_LENGTH] if domain and validate_host(domain, allowed) else ""


def flush() -> int:
    """Write this process's counts; returns how many rows were written (or updated)."""
    global _days, _day_end
    upstream[0]()
    with _flush_lock:
        days, _days = _days, {}
        _day_end = 0.0  # the next request takes a new current day
    rows: dict[tuple[str, str, str, int], list[Any]] = {}
    for day, counts in days.items():
        for (origin, prefix, host), (n, last, path) in list(counts.items()):
            key = (origin[:MAX_LENGTH], path_prefix(prefix), _host(host), day)
            slot = rows.get(key)
            if slot is None:
                rows[key] = [n, last, path.replace("\x00", "\\x00")[:PATH_LENGTH]]
            else:
                slot[0] += n
                slot[1] = max(slot[1], last)
    written = 0
    if rows:
        try:
            written = _write(rows)
        except Exception:
            _keep(rows)
            raise
    if _pruned_at is None or usage.clock() - _pruned_at >= usage.PRUNE_EVERY:
        prune()
    return written


def _keep(rows: dict[tuple[str, str, str, int], list[Any]]) -> None:
    """Counts the database refused: back for the next flush (within the per-day bound)."""
    for (origin, prefix, host, day), (n, last, path) in rows.items():
        with _flush_lock:
            counts = _days.setdefault(day, {})
            key = (origin, prefix, host or None)
            slot = counts.get(key)
            if slot is not None:
                slot[0] += n
            elif len(counts) < _max_keys:
                counts[key] = [n, last, path]


def _day(number: int) -> date:
    return datetime.fromtimestamp(number * DAY, UTC).date()


def _write(rows: dict[tuple[str, str, str, int], list[Any]]) -> int:
    from .models import OriginTraffic

    items = [
        (origin, prefix, host, _day(day), n, datetime.fromtimestamp(last, UTC), path)
        for (origin, prefix, host, day), (n, last, path) in sorted(rows.items())  # one lock order
    ]
    with transaction.atomic():
        if connection.vendor in ("postgresql", "sqlite"):
            _upsert(OriginTraffic, items)
        else:
            for origin, prefix, host, day, n, last, path in items:
                key = {"origin": origin, "path_prefix": prefix, "host": host, "day": day}
                row, created = OriginTraffic.objects.get_or_create(
                    **key, defaults={"requests": n, "last_seen": last, "path": path}
                )
                if not created:
                    row.requests += n
                    row.last_seen = max(row.last_seen, last)
                    row.path = path
                    row.save()
        _cap(OriginTraffic)
    return len(items)


def _upsert(model: Any, items: list[tuple[Any, ...]]) -> None:
    qn = connection.ops.quote_name
    table = qn(model._meta.db_table)
    columns = ("origin", "path_prefix", "host", "day", "requests", "last_seen", "path")
    fields = {f.column: f for f in model._meta.concrete_fields}
    mine, theirs = f"{table}.{qn('last_seen')}", f"excluded.{qn('last_seen')}"
    sets = (
        f"{qn('requests')} = {table}.{qn('requests')} + excluded.{qn('requests')}, "
        f"{qn('last_seen')} = CASE WHEN {theirs} > {mine} THEN {theirs} ELSE {mine} END, "
        f"{qn('path')} = excluded.{qn('path')}"
    )
    placeholders = "(" + ", ".join(["%s"] * len(columns)) + ")"
    with connection.cursor() as cursor:
        for start in range(0, len(items), CHUNK):
            chunk = items[start : start + CHUNK]
            params = [
                fields[column].get_db_prep_value(value, connection)
                for row in chunk
                for column, value in zip(columns, row, strict=True)
            ]
            cursor.execute(
                f"INSERT INTO {table} ({', '.join(qn(c) for c in columns)}) VALUES "
                f"{', '.join([placeholders] * len(chunk))} ON CONFLICT "
                f"({qn('origin')}, {qn('path_prefix')}, {qn('host')}, {qn('day')}) DO UPDATE SET {sets}",
                params,
            )


def _cap(model: Any) -> int:
    """At most ``TRAFFIC_MAX_ROWS`` rows: the least recently seen go first."""
    cap = int(conf.get("TRAFFIC_MAX_ROWS"))
    if model.objects.count() <= cap:
        return 0
    keep = list(model.objects.order_by("-last_seen", "-pk").values_list("pk", flat=True)[:cap])
    return int(model.objects.exclude(pk__in=keep).delete()[0])


def prune() -> int:
    """Drop days older than ``USAGE_RETENTION_DAYS``."""
    from .models import OriginTraffic

    global _pruned_at
    _pruned_at = usage.clock()
    cutoff = usage.now() - timedelta(days=float(conf.get("USAGE_RETENTION_DAYS")))
    return int(OriginTraffic.objects.filter(day__lt=cutoff.date()).delete()[0])


# --- reading ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Seen:
    """Traffic of one key over a window: what a preview decides and reports."""

    origin: str
    path_prefix: str
    host: str
    path: str
    requests: int
    last_seen: datetime


def recent(days: float = 7, using: str | None = None) -> list[Seen]:
    """Every key seen within the last ``days`` days (by the usage clock), most requested first."""
    from .models import OriginTraffic

    since = usage.now() - timedelta(days=days)
    rows = (
        OriginTraffic.objects.using(using)
        .filter(day__gte=since.date(), last_seen__gte=since)
        .values("origin", "path_prefix", "host")
        .annotate(requests=Sum("requests"), last_seen=Max("last_seen"), path=Max("path"))
        .order_by("-requests", "origin", "path_prefix", "host")
    )
    return [Seen(**row) for row in rows]


def any_since(hours: float, using: str | None = None) -> bool:
    """Whether any traffic was seen within the last ``hours`` (one indexed query)."""
    from .models import OriginTraffic

    since = usage.now() - timedelta(hours=hours)
    return OriginTraffic.objects.using(using).filter(last_seen__gte=since).exists()


def _drop_inherited_counts() -> None:
    global _flush_lock, _day_end, dropped
    _flush_lock = threading.Lock()
    _days.clear()
    _day_end = 0.0
    dropped = 0


job = flusher.register(
    Job(
        "traffic",
        flush,
        interval=lambda: float(conf.get("USAGE_INTERVAL")),
        pending=pending,
        what="origin traffic",
        event="traffic_failed",
        forked=_drop_inherited_counts,
    )
)


@receiver(setting_changed)
def _setting_changed(setting: str, **kwargs: object) -> None:
    if setting == "CORSADMIN":
        configure()
