"""Keeping each process's snapshot fresh without a query per request.

Every committed change moves a generation number: in the database, in the same
transaction as the change, and then (after commit) in the shared cache. Each
process looks at that number at most once per ``REFRESH_INTERVAL`` and rebuilds
its snapshot only when it moved. The process that made a change rebuilds on its
next request. On any error the last good snapshot stays; with none, CORS is
refused until a refresh succeeds.
"""

from __future__ import annotations

import logging
import math
import re
import threading
import time
from typing import Any

from asgiref.sync import sync_to_async
from django.core.cache import caches
from django.core.cache.backends.dummy import DummyCache
from django.core.cache.backends.locmem import LocMemCache
from django.db import transaction
from django.db.models import F

from . import conf, settings_policy
from .snapshot import EMPTY, CompiledPolicy, Snapshot

logger = logging.getLogger("corsadmin")

CACHE_KEY = "corsadmin:v1:generation"
CACHE_TIMEOUT = 300


def _shared_cache() -> Any:
    """The configured cache, or None when it is private to this process."""
    cache = caches[conf.cache_alias()]
    if isinstance(cache, (LocMemCache, DummyCache)):
        return None
    return cache


def database_generation(using: str | None = None) -> int:
    from .models import Generation

    value = Generation.objects.using(using).filter(pk=1).values_list("value", flat=True).first()
    return value or 0


def current_generation() -> tuple[int, bool]:
    """The newest committed generation, and whether the shared cache gave it."""
    cache = value = None
    try:
        cache = _shared_cache()
        if cache is not None:
            value = cache.get(CACHE_KEY)
            if value is not None and not holder.cache_failing:
                return int(value), True
    except Exception:
        _cache_failed("cache unavailable, reading the generation from the database")
        cache = None
    generation = database_generation()
    if cache is not None:
        if holder.cache_failing:
            # The cache answers again, but a change published meanwhile may be missing from it.
            logger.warning("corsadmin: cache available again")
            holder.cache_failing = False
            if value is None or int(value) < generation:
                _store_generation(cache, generation)
        else:
            _cache_quietly(cache.add, generation)
    return generation, False


def _cache_failed(message: str) -> None:
    """Note a cache failure (logged once until the cache answers again)."""
    if not holder.cache_failing:
        logger.warning("corsadmin: %s", message)
    holder.cache_failing = True


def _cache_quietly(method: Any, value: int) -> None:
    try:
        method(CACHE_KEY, value, CACHE_TIMEOUT)
    except Exception:
        _cache_failed("could not write the generation to the cache")


def _store_generation(cache: Any, value: int, using: str | None = None) -> None:
    """Set the cached generation, then make sure it is not behind the database.

    Two writers can publish out of order (the older number last): whoever writes
    last reads the database once more and corrects the cache.
    """
    for _ in range(5):
        try:
            cache.set(CACHE_KEY, value, CACHE_TIMEOUT)
        except Exception:
            _cache_failed("could not write the generation to the cache")
            return
        newest = database_generation(using)
        if newest <= value:
            return
        value = newest


def _publish(using: str | None) -> None:
    holder.mark_dirty()
    try:
        cache = _shared_cache()
        if cache is not None:
            _store_generation(cache, database_generation(using), using)
    except Exception:
        _cache_failed("could not publish the new generation to the cache")


def config_changed(using: str | None = None) -> None:
    """Record a change: bump the number with the write, publish it after commit."""
    from .models import Generation

    if not Generation.objects.using(using).filter(pk=1).update(value=F("value") + 1):
        Generation.objects.using(using).get_or_create(pk=1, defaults={"value": 1})
    transaction.on_commit(lambda: _publish(using), using=using)


def load_snapshot() -> Snapshot:
    """Build a snapshot from the database (the generation first, so it is never newer than the data)."""
    from django.utils import timezone

    from .models import AllowedOrigin, Policy

    generation = database_generation()
    entries: dict[int, list[tuple[Any, str, float]]] = {}
    csrf_trusted = []
    rows = (
        AllowedOrigin.objects.filter(enabled=True, policy__enabled=True)
        .exclude(expires_at__lte=timezone.now())
        .values_list("policy_id", "id", "origin", "expires_at", "csrf_trusted")
    )
    for policy_id, entry_id, origin, expires_at, csrf in rows.iterator(chunk_size=10000):
        entry = (entry_id, origin, expires_at.timestamp() if expires_at else math.inf)
        entries.setdefault(policy_id, []).append(entry)
        if csrf:
            csrf_trusted.append(entry)
    policies = []
    null_with_credentials = conf.get("ALLOW_NULL_WITH_CREDENTIALS")
    for p in Policy.objects.filter(enabled=True):
        listed = entries.get(p.pk, ())
        if p.allow_credentials and not null_with_credentials and any(e[1].lower() == "null" for e in listed):
            # Written around validation (QuerySet.update, raw SQL, loaddata): never honoured.
            logger.warning("corsadmin: ignoring null in policy %s, which allows credentials", p.name)
            listed = [e for e in listed if e[1].lower() != "null"]
        try:
            policies.append(
                CompiledPolicy(
                    name=p.name,
                    url_regex=p.url_regex,
                    priority=p.priority,
                    allow_all_origins=p.allow_all_origins,
                    allow_credentials=p.allow_credentials,
                    allow_methods=p.allow_methods,
                    allow_headers=p.allow_headers,
                    expose_headers=p.expose_headers,
                    max_age=p.max_age,
                    allow_private_network=p.allow_private_network,
                    entries=listed,
                )
            )
        except (re.error, TypeError, ValueError) as exc:
            # Written around validation (raw SQL): skip this policy, keep the others.
            logger.warning("corsadmin: ignoring policy %s, it cannot be compiled: %s", p.name, exc)
    return settings_snapshot(policies, generation, CompiledPolicy(name="(csrf)", entries=csrf_trusted))


def settings_snapshot(
    policies: list[CompiledPolicy] | None = None, generation: Any = None, csrf: CompiledPolicy | None = None
) -> Snapshot:
    """A snapshot of the given database policies plus the built-in ``CORS_*`` settings policy."""
    fallback = settings_policy.build()
    policies = list(policies or ())
    if conf.has_settings_policy():
        policies.append(fallback)
    return Snapshot(policies, generation=generation, csrf=csrf, fallback=fallback)


def _settings_only() -> Snapshot:
    try:
        return settings_snapshot()
    except Exception:
        return EMPTY


class SnapshotHolder:
    """This process's current snapshot, refreshed at most once per interval."""

    def __init__(self) -> None:
        self._snapshot: Snapshot | None = None
        self._next_check = 0.0
        self._dirty = False
        self._retry = False
        self._failing = False
        self._lock = threading.Lock()
        self.rebuilds = 0
        # The shared cache failed: it may lag the database until this process checks it.
        self.cache_failing = False

    def reset(self) -> None:
        with self._lock:
            self._snapshot = None
            self._next_check = 0.0
            self._dirty = self._retry = self._failing = self.cache_failing = False

    def mark_dirty(self) -> None:
        self._dirty = True

    def due(self) -> bool:
        return self._dirty or time.monotonic() >= self._next_check

    def peek(self) -> Snapshot:
        """The current snapshot, never refreshing it (what the last decision used)."""
        return self._snapshot or EMPTY

    def get(self) -> Snapshot:
        if self._snapshot is None or self._dirty or time.monotonic() >= self._next_check:
            self.refresh()
        return self._snapshot or EMPTY

    async def aget(self) -> Snapshot:
        if self._snapshot is None or self._dirty or time.monotonic() >= self._next_check:
            await sync_to_async(self.refresh)()
        return self._snapshot or EMPTY

    def refresh(self) -> None:
        # One refresher per process; other threads keep answering from the current snapshot,
        # or, before the first one exists, wait for it rather than refuse every origin.
        first = self._snapshot is None
        if not self._lock.acquire(blocking=first):
            return
        try:
            if first and self._snapshot is not None and not self.due():
                return  # another thread loaded it while this one waited
            self._next_check = time.monotonic() + conf.refresh_interval()
            forced = self._dirty or self._retry or self._snapshot is None
            self._dirty = False
            try:
                self._refresh(forced)
            except Exception as exc:
                if not self._failing:
                    logger.error(
                        "corsadmin: could not refresh the allow-list (%s: %s); %s",
                        type(exc).__name__,
                        exc,
                        "keeping the last good one" if self._snapshot else "refusing CORS until it loads",
                    )
                if self._snapshot is None:
                    self._snapshot = _settings_only()
                self._failing = self._retry = True
                return
            if self._failing:
                logger.warning("corsadmin: allow-list refreshed again")
            self._failing = self._retry = False
        finally:
            self._lock.release()

    def _refresh(self, forced: bool) -> None:
        seen, from_cache = (None, False) if forced else current_generation()
        if not forced and self._snapshot is not None and seen == self._snapshot.generation:
            return
        self._snapshot = snapshot = load_snapshot()
        self.rebuilds += 1
        if from_cache and seen is not None and snapshot.generation > seen:
            # The cache lags the database (a publish was lost): mend it for everyone.
            cache = _shared_cache()
            if cache is not None:
                _store_generation(cache, snapshot.generation)


holder = SnapshotHolder()


def get_snapshot() -> Snapshot:
    return holder.get()
