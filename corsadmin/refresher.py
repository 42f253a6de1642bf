"""The refresher: the thread that keeps a holder's snapshot fresh, beside the request path.

One per process (``refresh.SnapshotHolder`` starts it with the first request of the
process, again after a fork). It loads the first snapshot, then waits for news of a
change: an announcement on the cache's channel (Redis pub/sub) or PostgreSQL's NOTIFY, a
commit in this process, or the end of ``REFRESH_INTERVAL``, whichever comes first. It then
asks the database for what changed since its snapshot's generation
(``loader.SnapshotBuilder``) and hands the new snapshot to the holder. Between
announcements it compares the shared cache's stamp with its own each interval, and reads
the database's stamp at least every ``DATABASE_CHECK_EVERY`` intervals, so a lost
announcement heals in seconds.

Every call to a service has a timeout (``SERVICE_TIMEOUT``); a failing or hanging
service costs the refresher a retry (logged once, and once when it recovers), never
a request. The database is read through the routers' choice for reading
(``loader.read_alias``); the refresher's connection has a connect timeout (the startup
handshake included), TCP keepalives, and every statement a deadline (``bus.cut_after``).
"""

from __future__ import annotations

import contextlib
import logging
import math
import threading
import time
from collections.abc import Callable, Iterator
from time import perf_counter  # the refresh duration metric (tests replace refresh's time)
from typing import TYPE_CHECKING, Any, Protocol

from django.db import connections, router

from . import conf, snapshot_file, snapshot_store
from .bus import CacheBus, cut_after, database_channel, shared_bus
from .loader import SnapshotBuilder, read_alias
from .models import StoredSnapshot
from .signals import refreshed, service_failed
from .snapshot import Snapshot

if TYPE_CHECKING:
    from .bus import PostgresChannel

logger = logging.getLogger("corsadmin")
REFRESHER = "corsadmin-refresher"  # the thread's name
# Seconds between tries of a first snapshot that failed (a database down at start): until one
# loads the process refuses every cross-origin request, so it tries more often than each interval.
FIRST_LOAD_RETRY = 0.25


class Holder(Protocol):
    """What a refresher needs of the holder it keeps fresh (``refresh.SnapshotHolder``)."""

    def peek(self) -> Snapshot: ...

    def has_snapshot(self) -> bool: ...

    def confirm(self, refresher: Refresher, snapshot: Snapshot | None) -> None: ...

    def replace(self, refresher: Refresher, snapshot: Snapshot) -> None: ...

    def cycle_ended(self) -> None: ...


class _Trouble:
    """A service's state: one log line when it starts failing, one when it recovers."""

    def __init__(self, what: str, service: str, generation: Callable[[], int | None]) -> None:
        self.what = what
        self.service = service  # the label of the failures metric and the logs' "service" field
        self.generation = generation  # the held snapshot's, for the logs
        self.failing = False
        self.error: str | None = None  # "Type: message" of the last failure, None once it answers

    def failed(self, exc: BaseException, consequence: str) -> None:
        service_failed.send(sender=_Trouble, service=self.service)
        self.error = f"{type(exc).__name__}: {str(exc).strip()[:200]}"
        if not self.failing:
            logger.warning(
                "corsadmin: %s failed (%s: %s); %s",
                self.what,
                type(exc).__name__,
                exc,
                consequence,
                extra=self._fields("refresh_failed"),
            )
        self.failing = True

    def ok(self) -> None:
        self.error = None
        if self.failing:
            logger.warning(
                "corsadmin: %s is available again", self.what, extra=self._fields("refresh_recovered")
            )
        self.failing = False

    def _fields(self, event: str) -> dict[str, object]:
        return {"event": event, "service": self.service, "generation": self.generation()}


class Refresher:
    """One holder's refresh state between two resets (the builder, the bus, the counters),
    and the work of its thread: ``run`` (the loop) and ``cycle`` (one refresh)."""

    def __init__(self, holder: Holder, builder: SnapshotBuilder | None = None) -> None:
        self.holder = holder
        self.builder = builder or SnapshotBuilder()
        self.stop = threading.Event()
        self.wake = threading.Event()
        self.loaded = threading.Event()  # the first attempt to load has ended
        self.news = 0  # the newest generation heard of (announced or committed here)
        self.unpublished = 0  # the newest generation committed here and not yet in the cache
        self.cycles = 0
        self.db_checks = 0
        self._bus: CacheBus | None = None
        self._bus_ready = False
        self._share_due = 0.0  # monotonic: when ``_share`` looks again
        generation = self._generation
        self.database = _Trouble("the database (refreshing the CORS allow-list)", "database", generation)
        self.cache = _Trouble("the cache (the CORS allow-list's generation stamp)", "cache", generation)

    def _generation(self) -> int | None:
        return self.holder.peek().generation

    # --- the thread ---------------------------------------------------------------

    def run(self) -> None:
        """The refresher thread: a cycle at each wake-up, or each interval, until stopped."""
        try:
            _prepare_connection(read_alias())
            channel = self.channel()
            if channel is not None:
                threading.Thread(
                    target=self._listen, args=(channel,), name="corsadmin-listener", daemon=True
                ).start()
            while not self.stop.is_set():
                try:
                    self.cycle()
                except Exception:  # a bug must not end the refresher: log it, try again
                    logger.exception(
                        "corsadmin: the refresher failed unexpectedly; retrying",
                        extra={"event": "refresh_error"},
                    )
                self.loaded.set()
                self.holder.cycle_ended()
                self._share()
                self.wake.wait(self.pause())
                self.wake.clear()
        finally:
            self.loaded.set()
            connections.close_all()  # this thread's

    def pause(self) -> float:
        """Seconds until the next cycle, unless woken: the interval, or ``FIRST_LOAD_RETRY`` when
        shorter while nothing has loaded yet."""
        interval = conf.refresh_interval()
        return interval if self.builder.generation is not None else min(interval, FIRST_LOAD_RETRY)

    def _share(self) -> None:
        """After the first snapshot, then a minute apart (ten after it stored one): the host's
        newest snapshot file into the database if it lacks one as new (``snapshot_store``)."""
        epoch = self.builder._epoch
        if self.builder.generation is None or not epoch or time.monotonic() < self._share_due:
            return
        self._share_due = time.monotonic() + 60
        alias = router.db_for_write(StoredSnapshot) or "default"
        try:
            with _deadline(alias) as progress:
                if snapshot_store.share(alias, epoch, progress):
                    self._share_due = time.monotonic() + 600
        except Exception as exc:  # noqa: BLE001  (the next process loads in full: tried again later)
            logger.warning(
                "corsadmin: could not store the snapshot file in the database: %s: %s",
                type(exc).__name__,
                exc,
                extra={"event": "snapshot_file_error"},
            )
            connections[alias].close()

    def _listen(self, channel: CacheBus | PostgresChannel) -> None:
        trouble = _Trouble("listening for CORS allow-list changes", "listener", self._generation)
        while not self.stop.is_set():
            try:
                channel.listen(self._heard, self.stop.is_set, lambda: self._listening(trouble, channel))
            except Exception as exc:
                trouble.failed(exc, "changes are found by polling until it answers")
                self.stop.wait(conf.refresh_interval())

    def _listening(self, trouble: _Trouble, channel: CacheBus | PostgresChannel) -> None:
        """Subscribed (again). A Redis that answers the listener answers the refresher too:
        use the cache again now rather than at the next periodic retry, and publish what
        this process committed meanwhile, so the others hear of it at once."""
        trouble.ok()
        if channel is self._bus and self.cache.failing:
            self.cache.ok()
            self.wake.set()

    def _heard(self, generation: int) -> None:
        self.news = max(self.news, generation)
        self.wake.set()

    def preload(self, lock: threading.Lock) -> None:
        """One cycle (under ``lock``) in a short-lived thread of the refresher's name (its
        deadlines, its own connections), joined; no connection nor bus is kept afterwards."""

        def run() -> None:
            try:
                _prepare_connection(read_alias())
                with lock:
                    self.cycle()
            finally:
                if self._bus is not None:
                    with contextlib.suppress(Exception):
                        self._bus.close()
                self._bus, self._bus_ready = None, False
                connections.close_all()  # this thread's

        thread = threading.Thread(target=run, name=REFRESHER, daemon=True)
        thread.start()
        thread.join()
        connections.close_all()  # and this thread's, should anything have opened them

    # --- one cycle ----------------------------------------------------------------

    def cycle(self, force: bool = False) -> None:
        """Bring the snapshot up to date if anything moved; publish what the cache lacks.
        ``force``: read the database whatever the cache says (a commit here, inline mode)."""
        self.cycles += 1
        bus = self.bus()
        periodic = self.cycles % int(conf.get("DATABASE_CHECK_EVERY")) == 0
        # A failing cache is tried again only now and then: it may hang for SERVICE_TIMEOUT.
        loaded = self.builder.generation is not None
        use_bus = bus is not None and loaded and (not self.cache.failing or periodic)
        stamp = self._read_stamp(bus) if use_bus and bus is not None else None
        if self._must_read_database(force, periodic, stamp):
            self._update()
        generation = self.builder.generation
        if use_bus and bus is not None and generation is not None and self._cache_lacks(stamp, generation):
            self._publish(bus, generation)

    def _must_read_database(self, force: bool, periodic: bool, stamp: int | None) -> bool:
        """Whether this cycle asks the database what changed. Only a cache that answers, with
        a stamp no newer than the builder's generation, can spare it the read."""
        known = self.builder.generation
        if known is None or not self.holder.has_snapshot():
            return True  # nothing loaded, or nothing confirmed in this process (a forked worker)
        if force or periodic:
            return True  # a commit here (inline mode), or every DATABASE_CHECK_EVERY cycles
        if self.news > known:
            return True  # an announcement, or a commit here
        return self.cache.failing or stamp is None or stamp > known  # no stamp, or a newer one

    def _cache_lacks(self, stamp: int | None, generation: int) -> bool:
        """Whether to publish ``generation``: the cache answers, and a commit here is not in it
        yet, or its stamp is missing or older."""
        if self.cache.failing:
            return False
        return bool(self.unpublished) or stamp is None or stamp < generation

    def _update(self) -> None:
        """One read of what changed (the first: a snapshot file or a full load, see
        ``snapshot_file.first_load_lock``), and the snapshot handed to the holder."""
        if self.builder.generation is None and snapshot_file.directory() is not None:
            with snapshot_file.first_load_lock():
                self._read()
        else:
            self._read()

    def _read(self) -> None:
        self.db_checks += 1
        started = perf_counter()
        alias = read_alias()
        sender = type(self.holder)
        try:
            with _deadline(alias) as progress:
                self.builder.progress = progress
                snapshot = self.builder.update()
        except Exception as exc:
            refreshed.send(sender=sender, seconds=perf_counter() - started, ok=False)
            self.database.failed(
                exc,
                "keeping the last good allow-list"
                if self.holder.has_snapshot()
                else "refusing CORS until it loads",
            )
            if threading.current_thread().name == REFRESHER:
                connections[alias].close()  # the next try reconnects
            return
        finally:
            self.builder.progress = _no_progress
        refreshed.send(sender=sender, seconds=perf_counter() - started, ok=True)
        self.database.ok()
        self.holder.confirm(self, snapshot)
        if self.builder.unsaved:  # a full load: written for the next process, then served from the file
            saved = self.builder.save()
            if saved is not None:
                self.holder.replace(self, saved)
        else:
            self.builder.keep_file_fresh()

    # --- the cache: the generation stamp and its channel -----------------------------

    def bus(self) -> CacheBus | None:
        if not self._bus_ready:
            try:
                self._bus = shared_bus()
            except Exception as exc:
                self.cache.failed(exc, "reading the generation from the database instead")
                return None
            self._bus_ready = True
        return self._bus

    def channel(self) -> CacheBus | PostgresChannel | None:
        """Where announcements arrive: the Redis channel, else PostgreSQL's NOTIFY, else nowhere."""
        bus = self.bus()
        if bus is not None:
            return bus if bus.can_listen else None
        try:
            from .models import Generation

            return database_channel(router.db_for_write(Generation) or "default")
        except Exception:
            return None

    def publish(self, generation: int) -> None:
        """Publish ``generation`` to the cache now (a commit here with no refresher thread)."""
        bus = self.bus()
        if bus is not None:
            self._publish(bus, generation)

    def _read_stamp(self, bus: CacheBus) -> int | None:
        try:
            stamp = bus.read()
        except Exception as exc:
            self.cache.failed(exc, "reading the generation from the database instead")
            return None
        self.cache.ok()
        return stamp

    def _publish(self, bus: CacheBus, generation: int) -> None:
        try:
            bus.publish(generation)
        except Exception as exc:
            self.cache.failed(exc, "reading the generation from the database instead")
            return
        self.cache.ok()
        if self.unpublished <= generation:
            self.unpublished = 0


# --- the refresher's connection ----------------------------------------------------------


def _prepare_connection(alias: str) -> None:
    """The refresher thread's own connection to ``alias`` (PostgreSQL): a connect timeout,
    which in psycopg covers the whole startup handshake, and TCP keepalives and
    ``tcp_user_timeout`` (a peer that is gone); each statement has a deadline
    (``_deadline``). No ``statement_timeout`` startup option: poolers such as PgBouncer
    refuse it, and a server that hangs never starts it anyway."""
    connection = connections[alias]
    if connection.vendor != "postgresql":
        return
    timeout = service_timeout()
    seconds = max(1, math.ceil(timeout))
    options = dict(connection.settings_dict.get("OPTIONS") or {})
    options.setdefault("connect_timeout", seconds)
    options.setdefault("keepalives", 1)
    options.setdefault("keepalives_idle", seconds)
    options.setdefault("keepalives_interval", max(1, math.ceil(timeout / 3)))
    options.setdefault("keepalives_count", 3)
    options.setdefault("tcp_user_timeout", max(1000, int(timeout * 1000)))
    connection.settings_dict = {**connection.settings_dict, "OPTIONS": options}


@contextlib.contextmanager
def _deadline(alias: str) -> Iterator[Callable[[], None]]:
    """In the refresher thread: cut the connection to ``alias`` when a statement (or a chunk
    of a long read: the function yielded is its progress) takes longer than SERVICE_TIMEOUT
    (``bus.cut_after``). Armed before the connection opens, so the first read after a
    (re)connect has its deadline too; the connect has its own timeout."""
    connection = connections[alias]
    if threading.current_thread().name != REFRESHER or connection.vendor != "postgresql":
        yield _no_progress
        return

    with cut_after(service_timeout(), lambda: connection.connection) as progress:

        def ticking(execute: Any, sql: Any, params: Any, many: bool, context: Any) -> Any:
            progress()
            try:
                return execute(sql, params, many, context)
            finally:
                progress()

        with connection.execute_wrapper(ticking):
            connection.ensure_connection()
            yield progress


def _no_progress() -> None:
    pass


def service_timeout() -> float:
    return float(conf.get("SERVICE_TIMEOUT"))
