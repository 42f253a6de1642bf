"""Keeping each process's snapshot fresh beside the request path, never in it.

Requests read ``holder.get()``: the current snapshot, and nothing else. A refresher
thread per process (started by the first request of the process, again after a
fork) loads the first snapshot, then waits for news of a change: an announcement on
the cache's channel (Redis pub/sub) or PostgreSQL's NOTIFY, a commit in this process,
or the end of ``REFRESH_INTERVAL``, whichever comes first. It then asks the database
for what changed since its snapshot's generation (``loader.SnapshotBuilder``) and
swaps the new snapshot in. Between announcements it compares the shared cache's stamp
with its own each interval, and reads the database's stamp at least every
``DATABASE_CHECK_EVERY`` intervals, so a lost announcement heals in seconds.

Every call to a service has a timeout (``SERVICE_TIMEOUT``); a failing or hanging
service costs the refresher a retry (logged once, and once when it recovers), never
a request. The database is read through the routers' choice for reading
(``loader.read_alias``); the refresher's connection has a connect timeout (the startup
handshake included), TCP keepalives, and every statement a deadline (``bus.cut_after``).

The invariant: a process answers CORS only from a snapshot whose generation it has
confirmed against the database since the process started. Until then (a cold start,
and a forked worker, which treats what it inherited as unconfirmed and catches up from
it incrementally) requests wait at most ``FIRST_LOAD_TIMEOUT`` once and then refuse CORS
(only the ``CORS_*`` settings policy applies) until it is confirmed. With
``MAX_STALENESS``, a snapshot not confirmed for longer is refused the same way.

With ``REFRESH = "inline"`` (tests) there is no thread: the request that finds the
snapshot due refreshes it, as the same code would in the thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import threading
import time
from collections.abc import Callable, Iterator
from time import perf_counter  # the refresh duration metric (tests replace this module's time)
from typing import Any

from asgiref.sync import sync_to_async
from django.core.signals import setting_changed
from django.db import connections, router
from django.dispatch import receiver

from . import conf
from .bus import CacheBus, cut_after, database_channel, shared_bus
from .loader import SnapshotBuilder, read_alias, settings_snapshot
from .signals import config_committed, cycle_done, refreshed, service_failed
from .snapshot import EMPTY, Snapshot

logger = logging.getLogger("corsadmin")
REFRESHER = "corsadmin-refresher"


def _settings_only() -> Snapshot:
    try:
        return settings_snapshot()
    except Exception:
        return EMPTY


class _Trouble:
    """A service's state: one log line when it starts failing, one when it recovers."""

    def __init__(self, what: str, service: str) -> None:
        self.what = what
        self.service = service  # the label of the failures metric and the logs' "service" field
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

    def _fields(self, event: str) -> dict[str, Any]:
        return {"event": event, "service": self.service, "generation": holder.peek().generation}


class _Refresh:
    """One holder's refresh state between two resets: the builder, the bus, the counters."""

    def __init__(self, builder: SnapshotBuilder | None = None) -> None:
        self.builder = builder or SnapshotBuilder()
        self.stop = threading.Event()
        self.wake = threading.Event()
        self.loaded = threading.Event()  # the first attempt to load has ended
        self.news = 0  # the newest generation heard of (announced or committed here)
        self.unpublished = 0  # the newest generation committed here and not yet in the cache
        self.cycles = 0
        self.db_checks = 0
        self.bus: CacheBus | None = None
        self.bus_ready = False
        self.database = _Trouble("the database (refreshing the CORS allow-list)", "database")
        self.cache = _Trouble("the cache (the CORS allow-list's generation stamp)", "cache")


class SnapshotHolder:
    """This process's current snapshot, and its refresher."""

    def __init__(self) -> None:
        self._snapshot: Snapshot | None = None
        self._fallback: Snapshot | None = None
        self._running = False  # a refresher thread serves this process
        self._mode: str | None = None
        self._lock = threading.Lock()  # swaps and resets
        self._refresh_lock = threading.Lock()  # one refresh at a time
        self._state = _Refresh()
        self._next_check = 0.0
        self._dirty = False
        self._override: Snapshot | None = None  # corsadmin.testutils: served instead, while set
        # A forked worker's inherited snapshot: served only once the database confirms it.
        self._inherited: Snapshot | None = None
        # The snapshot is served until then (monotonic): MAX_STALENESS after its confirmation.
        self._fresh_until = math.inf
        self._confirmed_at: float | None = None  # time.time() of the last confirmation
        self._stale = False  # said so in the log

    # --- the request path -------------------------------------------------------

    def get(self) -> Snapshot:
        if self._override is not None:
            return self._override
        snapshot = self._snapshot
        if snapshot is not None and self._running and time.monotonic() < self._fresh_until:
            return snapshot
        return self._get_slow()

    async def aget(self) -> Snapshot:
        if self._override is not None:
            return self._override
        snapshot = self._snapshot
        if snapshot is not None and self._running and time.monotonic() < self._fresh_until:
            return snapshot
        if self._inline():
            if self._due():
                await sync_to_async(self.refresh)()
            return self._inline_current()
        if not self._running:
            self._start()
        if self._snapshot is None and not self._state.loaded.is_set():
            await asyncio.to_thread(self._state.loaded.wait, float(conf.get("FIRST_LOAD_TIMEOUT")))
            self._state.loaded.set()  # waited once: later requests refuse at once until it loads
        return self._current()

    def peek(self) -> Snapshot:
        """The current snapshot, never refreshing it (what the last decision used)."""
        return self._snapshot or EMPTY

    def _get_slow(self) -> Snapshot:
        if self._inline():
            if self._due():
                self.refresh()
            return self._inline_current()
        if not self._running:
            self._start()
        if self._snapshot is None and not self._state.loaded.is_set():
            self._state.loaded.wait(float(conf.get("FIRST_LOAD_TIMEOUT")))
            self._state.loaded.set()  # waited once: later requests refuse at once until it loads
        return self._current()

    def _current(self) -> Snapshot:
        snapshot = self._snapshot
        if snapshot is not None and time.monotonic() < self._fresh_until:
            return snapshot
        if self._fallback is None:  # fail closed until a snapshot is confirmed
            self._fallback = _settings_only()
        return self._fallback

    def _due(self) -> bool:
        now = time.monotonic()
        return self._snapshot is None or self._dirty or now >= self._next_check or now >= self._fresh_until

    def _inline_current(self) -> Snapshot:
        return EMPTY if self._snapshot is None else self._current()

    def _inline(self) -> bool:
        if self._mode is None:
            self._mode = str(conf.get("REFRESH"))
        return self._mode == "inline"

    def _start(self) -> None:
        with self._lock:
            if self._running:
                return
            self._running = True
            state = self._state
        threading.Thread(target=self._run, args=(state,), name=REFRESHER, daemon=True).start()

    # --- the refresher ------------------------------------------------------------

    def _run(self, state: _Refresh) -> None:
        try:
            _prepare_connection(read_alias())
            channel = _channel(state)
            if channel is not None:
                threading.Thread(
                    target=self._listen, args=(state, channel), name="corsadmin-listener", daemon=True
                ).start()
            while not state.stop.is_set():
                try:
                    self._cycle(state)
                except Exception:  # a bug must not end the refresher: log it, try again
                    logger.exception(
                        "corsadmin: the refresher failed unexpectedly; retrying",
                        extra={"event": "refresh_error"},
                    )
                state.loaded.set()
                self._done(state)
                state.wake.wait(conf.refresh_interval())
                state.wake.clear()
        finally:
            state.loaded.set()
            connections.close_all()  # this thread's

    def _listen(self, state: _Refresh, channel: Any) -> None:
        trouble = _Trouble("listening for CORS allow-list changes", "listener")
        while not state.stop.is_set():
            try:
                channel.listen(
                    lambda generation: self._heard(state, generation),
                    state.stop.is_set,
                    lambda: self._listening(state, trouble, channel),
                )
            except Exception as exc:
                trouble.failed(exc, "changes are found by polling until it answers")
                state.stop.wait(conf.refresh_interval())

    def _listening(self, state: _Refresh, trouble: _Trouble, channel: Any) -> None:
        """Subscribed (again). A Redis that answers the listener answers the refresher too:
        use the cache again now rather than at the next periodic retry, and publish what
        this process committed meanwhile, so the others hear of it at once."""
        trouble.ok()
        if channel is state.bus and state.cache.failing:
            state.cache.ok()
            state.wake.set()

    def _heard(self, state: _Refresh, generation: int) -> None:
        state.news = max(state.news, generation)
        state.wake.set()

    def refresh(self) -> None:
        """One refresh, in this thread (inline mode, tools and tests)."""
        first = self._snapshot is None
        if not self._refresh_lock.acquire(blocking=first):
            return
        try:
            if first and self._snapshot is not None:
                return  # another thread loaded it while this one waited
            self._next_check = time.monotonic() + conf.refresh_interval()
            force, self._dirty = self._dirty, False
            self._cycle(self._state, force)
            self._done(self._state)
        finally:
            self._refresh_lock.release()

    def _done(self, state: _Refresh) -> None:
        """The end of a cycle: say when the snapshot went stale, and tell the listeners."""
        stale = self._snapshot is not None and time.monotonic() >= self._fresh_until
        if stale and not self._stale:
            logger.warning(
                "corsadmin: the CORS allow-list has not been confirmed against the database for "
                "more than MAX_STALENESS (%s s); refusing CORS (only the CORS_* settings policy "
                "applies) until it is",
                conf.get("MAX_STALENESS"),
                extra={"event": "snapshot_stale", "generation": self.peek().generation},
            )
            self._stale = True
        try:
            cycle_done.send(sender=SnapshotHolder, holder=self)
        except Exception:  # a listener's bug must not end the refresher
            logger.exception("corsadmin: a cycle_done receiver failed", extra={"event": "refresh_error"})

    def _cycle(self, state: _Refresh, force: bool = False) -> None:
        """Bring the snapshot up to date if anything moved; publish what the cache lacks."""
        state.cycles += 1
        builder = state.builder
        bus = _bus(state)
        periodic = state.cycles % int(conf.get("DATABASE_CHECK_EVERY")) == 0
        # A failing cache is tried again only now and then: it may hang for SERVICE_TIMEOUT.
        use_bus = bus is not None and builder.generation is not None and (not state.cache.failing or periodic)
        stamp = self._read_stamp(state, bus) if use_bus and bus is not None else None
        known = builder.generation
        if (
            known is None
            or self._snapshot is None  # never confirmed in this process (a forked worker)
            or force
            or state.news > known
            or periodic
            or state.cache.failing
            or stamp is None
            or stamp > known
        ):
            self._update(state)
        if use_bus and bus is not None and not state.cache.failing and builder.generation is not None:
            if state.unpublished or stamp is None or stamp < builder.generation:
                self._publish(state, bus, builder.generation)

    def _update(self, state: _Refresh) -> None:
        state.db_checks += 1
        started = perf_counter()
        alias = read_alias()
        try:
            with _deadline(alias) as progress:
                state.builder.progress = progress
                snapshot = state.builder.update()
        except Exception as exc:
            refreshed.send(sender=SnapshotHolder, seconds=perf_counter() - started, ok=False)
            state.database.failed(
                exc, "keeping the last good allow-list" if self._snapshot else "refusing CORS until it loads"
            )
            if threading.current_thread().name == REFRESHER:
                connections[alias].close()  # the next try reconnects
            return
        finally:
            state.builder.progress = _no_progress
        refreshed.send(sender=SnapshotHolder, seconds=perf_counter() - started, ok=True)
        state.database.ok()
        with self._lock:
            if state is not self._state:
                return
            if snapshot is None and self._snapshot is None:
                snapshot = self._inherited  # a forked worker's: nothing changed since, now confirmed
            self._confirm()
            if snapshot is not None:
                self._snapshot = snapshot
                self._inherited = None

    def _confirm(self) -> None:
        """The database has just confirmed the snapshot's generation (under ``_lock``)."""
        self._confirmed_at = time.time()
        limit = conf.max_staleness()
        self._fresh_until = math.inf if limit is None else time.monotonic() + limit
        if self._stale:
            logger.warning(
                "corsadmin: the CORS allow-list is confirmed against the database again",
                extra={"event": "snapshot_fresh", "generation": self.peek().generation},
            )
            self._stale = False

    def _read_stamp(self, state: _Refresh, bus: CacheBus) -> int | None:
        try:
            stamp = bus.read()
        except Exception as exc:
            state.cache.failed(exc, "reading the generation from the database instead")
            return None
        state.cache.ok()
        return stamp

    def _publish(self, state: _Refresh, bus: CacheBus, generation: int) -> None:
        try:
            bus.publish(generation)
        except Exception as exc:
            state.cache.failed(exc, "reading the generation from the database instead")
            return
        state.cache.ok()
        if state.unpublished <= generation:
            state.unpublished = 0

    # --- news of a change committed in this process -------------------------------

    def committed(self, generation: int) -> None:
        state = self._state
        state.news = max(state.news, generation)
        state.unpublished = max(state.unpublished, generation)
        if self._running:
            # The refresher applies and publishes it; this process honours it at once.
            state.wake.set()
            if threading.current_thread().name != REFRESHER:
                self.wait_for(generation, _timeout())
            return
        self._dirty = True
        bus = _bus(state)
        if bus is not None:
            self._publish(state, bus, generation)

    def wait_for(self, generation: int, timeout: float) -> bool:
        """Wait (bounded) until this process's snapshot has reached ``generation``."""
        deadline = time.monotonic() + timeout
        while (self.peek().generation or 0) < generation:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.002)
        return True

    # --- tests, settings changes, forks ----------------------------------------------

    def override(self, snapshot: Snapshot | None) -> Snapshot | None:
        """Serve ``snapshot`` to every request (``get``/``aget``) until overridden again;
        None goes back to the refreshed snapshot. Returns the override it replaces, so
        that overrides nest. The refresh state underneath is left alone (``reset`` keeps
        the override). The hook of ``corsadmin.testutils``; not for production code."""
        previous, self._override = self._override, snapshot
        return previous

    def mark_dirty(self) -> None:
        self._dirty = True

    def reset(self) -> None:
        """Forget the snapshot and stop the refresher (a new one starts on the next request)."""
        with self._lock:
            self._state.stop.set()
            self._state.wake.set()
            self._state = _Refresh()
            self._snapshot = self._fallback = self._mode = self._inherited = None
            self._running = self._dirty = self._stale = False
            self._next_check = 0.0
            self._fresh_until = math.inf
            self._confirmed_at = None

    def preload(self) -> None:
        """Load (or bring up to date) the snapshot now, in this process, and keep no
        connection nor thread afterwards.

        For a server that forks its workers from a loaded application (gunicorn
        ``--preload``, whose hooks call this before each fork): each worker starts from
        this snapshot, shared copy-on-write, and before serving it confirms it against
        the database, applying only what changed since, instead of every worker loading
        the whole list at once. Runs in a short-lived refresher thread (the deadlines of
        the refresher, its own connections), joined before returning.
        """
        state = self._state

        def run() -> None:
            try:
                _prepare_connection(read_alias())
                with self._refresh_lock:
                    self._cycle(state)
            finally:
                if state.bus is not None:
                    with contextlib.suppress(Exception):
                        state.bus.close()
                state.bus, state.bus_ready = None, False
                connections.close_all()  # this thread's

        thread = threading.Thread(target=run, name=REFRESHER, daemon=True)
        thread.start()
        thread.join()
        connections.close_all()  # and this thread's, should anything have opened them

    def _forked(self) -> None:
        """In a child process: no thread survived the fork. What it inherited is not served
        until the database confirms it (the builder catches up from it: incrementally)."""
        self._lock = threading.Lock()
        self._refresh_lock = threading.Lock()
        self._state = _Refresh(self._state.builder)
        self._running = False
        self._inherited = self._snapshot or self._inherited
        self._snapshot = None
        self._fresh_until = math.inf
        self._confirmed_at = None

    def stats(self) -> dict[str, Any]:
        state = self._state
        return {
            "generation": self.peek().generation,
            "rebuilds": state.builder.full_loads + state.builder.updates,
            "full_loads": state.builder.full_loads,
            "updates": state.builder.updates,
            "db_checks": state.db_checks,
            "cycles": state.cycles,
            "background": self._running,
            "confirmed_at": self._confirmed_at,
            "last_error": state.database.error or state.cache.error,
        }


def _bus(state: _Refresh) -> CacheBus | None:
    if not state.bus_ready:
        try:
            state.bus = shared_bus()
        except Exception as exc:
            state.cache.failed(exc, "reading the generation from the database instead")
            return None
        state.bus_ready = True
    return state.bus


def _channel(state: _Refresh) -> Any:
    """Where announcements arrive: the Redis channel, else PostgreSQL's NOTIFY, else nowhere."""
    bus = _bus(state)
    if bus is not None:
        return bus if bus.can_listen else None
    try:
        from .models import Generation

        return database_channel(router.db_for_write(Generation) or "default")
    except Exception:
        return None


def _prepare_connection(alias: str) -> None:
    """The refresher thread's own connection to ``alias`` (PostgreSQL): a connect timeout,
    which in psycopg covers the whole startup handshake, and TCP keepalives and
    ``tcp_user_timeout`` (a peer that is gone); each statement has a deadline
    (``_deadline``). No ``statement_timeout`` startup option: poolers such as PgBouncer
    refuse it, and a server that hangs never starts it anyway."""
    connection = connections[alias]
    if connection.vendor != "postgresql":
        return
    timeout = _timeout()
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

    with cut_after(_timeout(), lambda: connection.connection) as progress:

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


def _timeout() -> float:
    return float(conf.get("SERVICE_TIMEOUT"))


holder = SnapshotHolder()


def _on_commit(generation: int, **kwargs: Any) -> None:
    holder.committed(generation)


config_committed.connect(_on_commit, dispatch_uid="corsadmin_refresh")
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=holder._forked)


@receiver(setting_changed)
def _setting_changed(setting: str, **kwargs: Any) -> None:
    if setting in ("CORSADMIN", "CACHES", "DATABASES") or setting.startswith("CORS_"):
        holder.reset()
