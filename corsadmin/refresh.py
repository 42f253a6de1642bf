"""Each process's current snapshot: what a request reads, and when it may be served.

Requests read ``holder.get()`` (or ``aget()``): the current snapshot, and nothing else; no
lock, no I/O. The refresher thread (``corsadmin.refresher``) keeps it fresh beside the
request path, and hands each snapshot it builds or confirms to ``SnapshotHolder.confirm``.

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
import logging
import math
import os
import threading
import time
from typing import Any

from asgiref.sync import sync_to_async
from django.core.signals import setting_changed
from django.dispatch import receiver

from . import conf
from .compiler import settings_snapshot
from .refresher import REFRESHER, Refresher, service_timeout
from .signals import config_committed, cycle_done
from .snapshot import EMPTY, Snapshot

logger = logging.getLogger("corsadmin")


def _settings_only() -> Snapshot:
    try:
        return settings_snapshot()
    except Exception:
        return EMPTY


class SnapshotHolder:
    """This process's current snapshot, and its refresher.

    ``_snapshot``: the snapshot confirmed in this process (None before that), swapped in
    whole under ``_lock``; ``_fresh_until`` (monotonic): served until then, ``MAX_STALENESS``
    after its last confirmation; ``_running``: a refresher thread serves this process;
    ``_override``: served instead while set (``corsadmin.testutils``). The rest is for the
    slow path: the settings-only ``_fallback``, a forked worker's ``_inherited`` snapshot,
    inline mode's ``_next_check`` and ``_dirty``.
    """

    def __init__(self) -> None:
        self._snapshot: Snapshot | None = None
        self._fallback: Snapshot | None = None
        self._running = False
        self._mode: str | None = None
        self._lock = threading.Lock()  # swaps and resets
        self._installed = threading.Condition(self._lock)  # notified at each swap (``wait_for``)
        self._refresh_lock = threading.Lock()  # one refresh at a time
        self._refresher = Refresher(self)
        self._next_check = 0.0
        self._dirty = False
        self._override: Snapshot | None = None
        self._inherited: Snapshot | None = None  # served only once the database confirms it
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
        return await self._aget_slow()

    def peek(self) -> Snapshot:
        """The current snapshot, never refreshing it (what the last decision used)."""
        return self._snapshot or EMPTY

    # --- when that cannot answer: inline mode, a cold start, a stale snapshot ---------

    def _get_slow(self) -> Snapshot:
        if self._inline():
            if self._due():
                self.refresh()
            return self._inline_current()
        if not self._running:
            self._start()
        if self._snapshot is None and not self._refresher.loaded.is_set():
            self._refresher.loaded.wait(float(conf.get("FIRST_LOAD_TIMEOUT")))
            self._refresher.loaded.set()  # waited once: later requests refuse at once until it loads
        return self._current()

    async def _aget_slow(self) -> Snapshot:
        if self._inline():
            if self._due():
                await sync_to_async(self.refresh)()
            return self._inline_current()
        if not self._running:
            self._start()
        if self._snapshot is None and not self._refresher.loaded.is_set():
            await asyncio.to_thread(self._refresher.loaded.wait, float(conf.get("FIRST_LOAD_TIMEOUT")))
            self._refresher.loaded.set()  # waited once: later requests refuse at once until it loads
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

    def start(self) -> None:
        """Start refreshing now, not at the process's first request (a server's worker once it
        is initialised: its first snapshot loads while the rest of its start-up runs)."""
        if not self._inline():
            self._start()

    def _start(self) -> None:
        with self._lock:
            if self._running:
                return
            self._running = True
            refresher = self._refresher
        threading.Thread(target=refresher.run, name=REFRESHER, daemon=True).start()

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
            self._refresher.cycle(force)
            self.cycle_ended()
        finally:
            self._refresh_lock.release()

    # --- what the refresher reports -------------------------------------------------

    def has_snapshot(self) -> bool:
        """Whether a snapshot confirmed in this process is held (an inherited one is not)."""
        return self._snapshot is not None

    def confirm(self, refresher: Refresher, snapshot: Snapshot | None) -> None:
        """The database has just confirmed ``refresher``'s generation: serve ``snapshot``, the
        new one (None: nothing changed), for ``MAX_STALENESS`` more. Ignored from a refresher
        that a reset replaced."""
        with self._lock:
            if refresher is not self._refresher:
                return
            if snapshot is None and self._snapshot is None:
                snapshot = self._inherited  # a forked worker's: nothing changed since, now confirmed
            self._confirmed_at = time.time()
            limit = conf.max_staleness()
            self._fresh_until = math.inf if limit is None else time.monotonic() + limit
            if self._stale:
                logger.warning(
                    "corsadmin: the CORS allow-list is confirmed against the database again",
                    extra={"event": "snapshot_fresh", "generation": self.peek().generation},
                )
                self._stale = False
            if snapshot is not None:
                self._snapshot = snapshot
                self._inherited = None
                self._installed.notify_all()

    def replace(self, refresher: Refresher, snapshot: Snapshot) -> None:
        """Serve ``snapshot`` instead of the current one of the same generation (the same
        allow-list, held otherwise: read back from the snapshot file just written). Confirms
        nothing; ignored from a refresher that a reset replaced, or for another generation."""
        with self._lock:
            current = self._snapshot
            if (
                refresher is self._refresher
                and current is not None
                and current.generation == snapshot.generation
            ):
                self._snapshot = snapshot

    def cycle_ended(self) -> None:
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

    # --- news of a change committed in this process -------------------------------

    def committed(self, generation: int) -> None:
        refresher = self._refresher
        refresher.news = max(refresher.news, generation)
        refresher.unpublished = max(refresher.unpublished, generation)
        if self._running:
            # The refresher applies and publishes it; this process honours it at once.
            refresher.wake.set()
            if threading.current_thread().name != REFRESHER:
                self.wait_for(generation, service_timeout())
            return
        self._dirty = True
        refresher.publish(generation)

    def wait_for(self, generation: int, timeout: float) -> bool:
        """Wait (bounded) until this process's snapshot has reached ``generation``: woken by
        ``confirm`` at each swap, never polling."""
        with self._installed:
            return self._installed.wait_for(lambda: (self.peek().generation or 0) >= generation, timeout)

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
            self._refresher.stop.set()
            self._refresher.wake.set()
            self._refresher = Refresher(self)
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
        self._refresher.preload(self._refresh_lock)

    def _forked(self) -> None:
        """In a child process: no thread survived the fork. What it inherited is not served
        until the database confirms it (the builder catches up from it: incrementally)."""
        self._lock = threading.Lock()
        self._installed = threading.Condition(self._lock)
        self._refresh_lock = threading.Lock()
        self._refresher = Refresher(self, self._refresher.builder)
        self._running = False
        self._inherited = self._snapshot or self._inherited
        self._snapshot = None
        self._fresh_until = math.inf
        self._confirmed_at = None

    def stats(self) -> dict[str, Any]:
        refresher = self._refresher
        builder = refresher.builder
        return {
            "generation": self.peek().generation,
            "rebuilds": builder.full_loads + builder.updates,
            "full_loads": builder.full_loads,
            "file_loads": builder.file_loads,
            "updates": builder.updates,
            "db_checks": refresher.db_checks,
            "cycles": refresher.cycles,
            "background": self._running,
            "confirmed_at": self._confirmed_at,
            "last_error": refresher.database.error or refresher.cache.error,
        }


holder = SnapshotHolder()


def _on_commit(generation: int, **kwargs: object) -> None:
    holder.committed(generation)


config_committed.connect(_on_commit, dispatch_uid="corsadmin_refresh")
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=holder._forked)


@receiver(setting_changed)
def _setting_changed(setting: str, **kwargs: object) -> None:
    if setting in ("CORSADMIN", "CACHES", "DATABASES") or setting.startswith("CORS_"):
        holder.reset()
