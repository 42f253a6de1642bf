"""Each live server process's heartbeat: the generation its snapshot serves, when the
database last confirmed that snapshot, and the refresher's last error.

The refresher sends ``cycle_done`` at the end of each cycle; the receiver here notes the
process's state (``holder.stats()``) and wakes the writer thread of this process (a job of
``corsadmin.flusher.heartbeats``, apart from the counts' thread), which writes it to the
store at once when something changed (generation, error) and otherwise every ``period()``
seconds. That thread, not the refresher, waits for the store: a store that fails or hangs
costs it a retry (logged once, and once when it answers again), never a refresh or a
request. Because it keeps writing while the process lives, a refresher that is stuck shows
as a confirmation growing old, and a process that is gone drops out after ``gone_after()``
seconds (or at once when it exits normally).

The store: a hash in Redis when corsadmin's cache is Django's ``RedisCache`` (through the
bus's own client with ``SERVICE_TIMEOUT`` timeouts, under the cache's key prefix, expiring
when nobody writes), else the ``ProcessHeartbeat`` table.

With ``HEARTBEAT_FLUSH = "manual"`` (tests) there is no thread: nothing is written until
``reporter.flush()``. Nor does the thread write while no refresher serves the process
(``REFRESH = "inline"``, or after a reset until the next refresher reports). Fork and exit
are ``corsadmin.flusher``'s: a child starts unconfirmed; a normal exit leaves the list.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from django.conf import settings
from django.core.signals import setting_changed
from django.db import connections, router
from django.dispatch import receiver
from django.utils import timezone

from . import conf
from .bus import RedisBus, cut_after, shared_bus
from .flusher import Job, heartbeats
from .signals import cycle_done, refreshed

if TYPE_CHECKING:
    from .refresh import SnapshotHolder

logger = logging.getLogger("corsadmin")

HASH_KEY = "corsadmin:v1:heartbeats"
WRITER = heartbeats.name  # the writer thread's name


def period() -> float:
    """Seconds between two writes of an unchanged heartbeat (between 1 and 5)."""
    return min(max(conf.refresh_interval(), 1.0), 5.0)


def gone_after() -> float:
    """A heartbeat not rewritten for this long is a gone process's (three missed writes)."""
    return 3 * period() + 2 * float(conf.get("SERVICE_TIMEOUT"))


def process_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass(frozen=True)
class Beat:
    process: str
    generation: int | None
    confirmed_at: float | None  # time.time() of the snapshot's last confirmation, None: never
    since: float | None  # when the process began serving this generation
    last_error: str | None
    written_at: float = 0.0

    def changed_from(self, other: Beat | None) -> bool:
        """What is written at once rather than at the next period."""
        if other is None:
            return True
        return (self.generation, self.last_error, self.confirmed_at is None) != (
            other.generation,
            other.last_error,
            other.confirmed_at is None,
        )


# --- the stores ------------------------------------------------------------------------


class Store(Protocol):
    def write(self, beat: Beat) -> None: ...

    def remove(self, process: str) -> None: ...

    def read(self) -> list[Beat]: ...


class RedisStore:
    """One hash: a field per process, its value the heartbeat as JSON."""

    def __init__(self, bus: RedisBus) -> None:
        self.client = bus.client
        self.key = bus.cache.make_and_validate_key(HASH_KEY)

    def write(self, beat: Beat) -> None:
        value = {
            "generation": beat.generation,
            "confirmed_at": beat.confirmed_at,
            "since": beat.since,
            "last_error": beat.last_error,
            "written_at": beat.written_at,
        }
        pipe = self.client.pipeline(transaction=False)
        pipe.hset(self.key, beat.process, json.dumps(value))
        pipe.expire(self.key, math.ceil(gone_after()))  # the hash goes when every process has gone
        pipe.execute()

    def remove(self, process: str) -> None:
        self.client.hdel(self.key, process)

    def read(self) -> list[Beat]:
        beats, gone = [], []
        cutoff = time.time() - gone_after()
        for field, raw in self.client.hgetall(self.key).items():
            process = field.decode() if isinstance(field, bytes) else str(field)
            try:
                value = json.loads(raw)
                beat = Beat(
                    process,
                    _int(value.get("generation")),
                    _float(value.get("confirmed_at")),
                    _float(value.get("since")),
                    value.get("last_error"),
                    float(value["written_at"]),
                )
            except (ValueError, TypeError, KeyError):
                gone.append(process)  # not ours to read: drop it
                continue
            if beat.written_at < cutoff:
                gone.append(process)
            else:
                beats.append(beat)
        if gone:
            self.client.hdel(self.key, *gone)
        return beats


class DatabaseStore:
    """The ``ProcessHeartbeat`` table: a row per process, rows of gone processes pruned."""

    def __init__(self) -> None:
        self._pruned = 0.0

    def write(self, beat: Beat) -> None:
        from .models import ProcessHeartbeat

        using = router.db_for_write(ProcessHeartbeat)
        rows = ProcessHeartbeat.objects.using(using)
        values = {
            "generation": beat.generation,
            "confirmed_at": _datetime(beat.confirmed_at),
            "since": _datetime(beat.since),
            "last_error": beat.last_error or "",
            "written_at": _datetime(beat.written_at),
        }
        with _bounded(using):
            if not rows.filter(pk=beat.process).update(**values):
                rows.create(process=beat.process, **values)
            if beat.written_at - self._pruned >= gone_after():
                rows.filter(written_at__lt=_datetime(beat.written_at - gone_after())).delete()
                self._pruned = beat.written_at

    def remove(self, process: str) -> None:
        from .models import ProcessHeartbeat

        using = router.db_for_write(ProcessHeartbeat)
        with _bounded(using):
            ProcessHeartbeat.objects.using(using).filter(pk=process).delete()

    def read(self) -> list[Beat]:
        from .models import ProcessHeartbeat

        using = router.db_for_read(ProcessHeartbeat)
        rows = ProcessHeartbeat.objects.using(using).filter(
            written_at__gte=_datetime(time.time() - gone_after())
        )
        return [
            Beat(
                row.process,
                row.generation,
                _timestamp(row.confirmed_at),
                _timestamp(row.since),
                row.last_error or None,
                row.written_at.timestamp(),
            )
            for row in rows
        ]


def store() -> Store:
    """Where heartbeats live: Redis when corsadmin's cache is Redis, else the database."""
    bus = shared_bus()
    return RedisStore(bus) if isinstance(bus, RedisBus) else DatabaseStore()


@contextlib.contextmanager
def _bounded(using: str) -> Iterator[None]:
    """In the writer thread (and at exit) on PostgreSQL: a connect timeout, and the
    connection cut if the statements take longer than ``SERVICE_TIMEOUT``."""
    connection = connections[using]
    ours = threading.current_thread().name == WRITER or reporter.exiting
    if connection.vendor != "postgresql" or not ours:
        yield
        return
    timeout = float(conf.get("SERVICE_TIMEOUT"))
    options = dict(connection.settings_dict.get("OPTIONS") or {})
    if "connect_timeout" not in options:
        options["connect_timeout"] = max(1, round(timeout))
        connection.settings_dict = {**connection.settings_dict, "OPTIONS": options}
    try:
        connection.ensure_connection()
        with cut_after(timeout, connection.connection):
            yield
    except Exception:
        connection.close()  # the next write reconnects
        raise


# --- this process's reporter ---------------------------------------------------------


class Reporter:
    """This process's heartbeat: noted by the refresher, written by the heartbeat thread."""

    def __init__(self) -> None:
        self._reset()
        self.job = heartbeats.register(
            Job(
                "heartbeat",
                lambda: self.write_due(time.time()),
                interval=period,
                pending=self._served,
                what="this process's heartbeat",
                event="heartbeat_failed",
                forked=self.forked,
                exit=self.exited,
            )
        )

    def _reset(self) -> None:
        self.pid = os.getpid()
        self.latest: Beat | None = None
        self.written: Beat | None = None
        self.generation: int | None = None
        self.since: float | None = None
        # Until the refresher reports them itself (holder.stats()): from its ``refreshed`` signal.
        self.confirmed_at: float | None = None
        self.database_error: str | None = None
        self.failing = False
        self.exiting = False
        self.holder: SnapshotHolder | None = None  # whose refresher reports here
        self._store: Store | None = None

    def refreshed(self, ok: bool) -> None:
        if ok:
            self.confirmed_at, self.database_error = time.time(), None
        else:
            self.database_error = "the database did not answer the refresher"

    def observe(self, stats: dict[str, Any], holder: SnapshotHolder | None = None) -> None:
        """The end of a refresher cycle (its thread, or the inline refresh's)."""
        self.holder = holder
        now = time.time()
        generation = stats.get("generation")
        if generation != self.generation or self.since is None:
            self.generation, self.since = generation, now
        beat = Beat(
            process_id(),
            generation,
            stats.get("confirmed_at", self.confirmed_at),
            self.since,
            stats.get("last_error", self.database_error),
        )
        self.latest = beat
        if conf.get("HEARTBEAT_FLUSH") != "background":
            return  # tests: reporter.flush()
        if self.job.pid != os.getpid():
            heartbeats.ensure_started(self.job)
        if beat.changed_from(self.written):
            heartbeats.wake(self.job)

    def write_due(self, now: float) -> None:
        """Write the latest heartbeat if it changed or ``period()`` has passed since the last."""
        beat = self.latest
        if beat is None or self.exiting:
            return
        if not beat.changed_from(self.written) and self.written and now - self.written.written_at < period():
            return
        beat = replace(beat, written_at=now)
        try:
            if self._store is None:
                self._store = store()
            self._store.write(beat)
        except Exception as exc:  # noqa: BLE001  (logged once; retried at the next period)
            if not self.failing:
                logger.warning(
                    "corsadmin: could not write this process's heartbeat (%s: %s); "
                    "`cors status` will not list it until it can",
                    type(exc).__name__,
                    exc,
                    extra={"event": "heartbeat_failed"},
                )
            self.failing = True
            return
        if self.failing:
            logger.warning(
                "corsadmin: this process's heartbeat is written again", extra={"event": "heartbeat_recovered"}
            )
        self.failing = False
        self.written = beat

    def flush(self) -> None:
        """Write the latest heartbeat now (``HEARTBEAT_FLUSH = "manual"``)."""
        if self.latest is not None:
            self.written = None
            self.write_due(time.time())

    def _served(self) -> bool:
        """Whether the thread writes: only while a refresher serves the process (a stuck one
        included), not after a reset (settings changed, tests) until the next one reports."""
        return not self.exiting and (self.holder is None or bool(self.holder.stats().get("background")))

    def exited(self) -> None:
        """At a normal exit: leave the list now rather than after ``gone_after()`` (once:
        gunicorn's ``worker_exit`` and ``atexit`` both end a worker)."""
        if self.exiting:
            return
        self.exiting = True
        if self.written is None or self.failing or self.pid != os.getpid():
            return  # nothing written, or a store that fails: it drops out by itself
        with contextlib.suppress(Exception):
            (self._store or store()).remove(self.written.process)

    def forked(self) -> None:
        """In a child process: a new process, whose inherited snapshot is unconfirmed."""
        self._reset()


reporter = Reporter()


@receiver(cycle_done, dispatch_uid="corsadmin_heartbeat")
def _cycle_done(holder: SnapshotHolder, **kwargs: object) -> None:
    try:
        reporter.observe(holder.stats(), holder)
    except Exception:  # noqa: BLE001  (never into the refresher)
        logger.exception("corsadmin: the heartbeat failed unexpectedly", extra={"event": "heartbeat_failed"})


@receiver(refreshed, dispatch_uid="corsadmin_heartbeat")
def _refreshed(ok: bool, **kwargs: object) -> None:
    reporter.refreshed(ok)


@receiver(setting_changed)
def _setting_changed(setting: str, **kwargs: object) -> None:
    if setting in ("CORSADMIN", "CACHES", "DATABASES"):
        reporter._store = None
        reporter.written = None


# --- conversions -----------------------------------------------------------------------


def _datetime(value: float | None) -> datetime | None:
    if value is None:
        return None
    moment = datetime.fromtimestamp(value, tz=UTC)
    return moment if settings.USE_TZ else timezone.make_naive(moment)


def _timestamp(value: datetime | None) -> float | None:
    if value is None:
        return None
    return (value if timezone.is_aware(value) else timezone.make_aware(value)).timestamp()


def _int(value: Any) -> int | None:
    return None if value is None else int(value)


def _float(value: Any) -> float | None:
    return None if value is None else float(value)
