"""Refused-origin telemetry: counted in memory on the request path, written later.

The request path only touches a dictionary, under a lock held for the few operations of
one count. The process's flush thread (``corsadmin.flusher``, also at exit; or a call to
``flush``) swaps that dictionary for an empty one under the same lock and writes the one
it took (``corsadmin.refused``: one upsert for the batch, the budgets held in the same
transaction) at most once per ``TELEMETRY_INTERVAL``; rows not seen within
``REFUSED_RETENTION_DAYS`` are pruned at most every ``PRUNE_EVERY`` seconds per process.
Memory is bounded by ``TELEMETRY_MAX_ORIGINS`` distinct (origin, path prefix,
report-only policy) keys; what does not fit is counted in ``dropped``, and counts the
database refused are kept for the next flush within the same bound. Nothing here raises
into a request. Ordinary refusals have no policy (""); a report-only policy's would-be
refusals (the real decision allowed the origin) are counted under its name. After a
fork the child drops what the parent counted: the parent writes it. The middleware counts
its refusals in ``corsadmin.refusals`` (one count for telemetry and usage), which hands
them over here (``Recorder.add``) before this recorder is read or flushed.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from django.core.signals import setting_changed
from django.dispatch import receiver

from . import conf, refused
from .flusher import Job, flusher
from .origins import MAX_LENGTH

logger = logging.getLogger("corsadmin")

PRUNE_EVERY = 300.0  # seconds between two retention prunes by one process
clock = time.time  # tests replace it with a fake clock

# The request path's settings, read when the app is ready and when CORSADMIN changes
# (``configure``), never per request: ``TELEMETRY``, ``TELEMETRY_MAX_ORIGINS`` and
# whether ``TELEMETRY_FLUSH`` is "background".
ENABLED = True
_max_origins = 10000
_background = True
# This process's id, kept current across forks (``os.getpid`` is a system call).
_pid = os.getpid()
# path -> its path prefix, for the few paths that refusals repeat (bounded).
_prefixes: dict[str, str] = {}
PREFIX_MEMO_SIZE = 4096

# (origin, path prefix, report-only policy or "") -> [count, first seen, last seen] (UNIX timestamps)
Counts = dict[tuple[str, str, str], list[Any]]


def _nothing() -> None:
    return None


def _none_waiting() -> bool:
    return False


# (hand over what is counted elsewhere, whether something is): set by ``corsadmin.refusals``
# when it is imported (it imports this module, not the other way round).
upstream: tuple[Callable[[], None], Callable[[], bool]] = (_nothing, _none_waiting)


def path_prefix(path: str) -> str:
    """'/api/v1/users' -> '/api/'; '/' -> '/'. A NUL (from '%00') is escaped: PostgreSQL refuses it."""
    end = path.find("/", 1)
    prefix = (path[: end + 1] if end != -1 else path)[:100] or "/"
    return prefix.replace("\x00", "\\x00")[:100]


def printable(origin: str) -> str:
    text = (
        origin
        if origin.isascii() and origin.isprintable()
        else origin.encode("unicode_escape").decode("ascii")
    )
    return text[:MAX_LENGTH]


class Recorder:
    def __init__(self) -> None:
        self._counts: Counts = {}
        self._lock = threading.Lock()  # guards _counts: a count, or the flush's swap
        self._flush_lock = threading.Lock()  # one flush at a time (the thread, exit, a caller)
        self._pruned_at: float | None = None
        self.dropped = 0
        self.job = flusher.register(
            Job(
                "telemetry",
                self.flush,
                interval=lambda: float(conf.get("TELEMETRY_INTERVAL")),
                pending=lambda: bool(self._counts or self.dropped) or upstream[1](),
                what="refused-origin telemetry",
                event="telemetry_failed",
                forked=self._drop_inherited_counts,
            )
        )

    def record(self, origin: str, path: str, policy: str = "") -> None:
        try:
            prefix = _prefixes.get(path)
            if prefix is None:
                prefix = _remember_prefix(path)
            key = (origin, prefix, policy)
            now = clock()
            with self._lock:
                counts = self._counts
                entry = counts.get(key)
                if entry is not None:
                    entry[0] += 1
                    entry[2] = now
                elif len(counts) < _max_origins:
                    counts[key] = [1, now, now]
                else:
                    self.dropped += 1
            if self.job.pid != _pid and _background:
                flusher.ensure_started(self.job)
        except Exception:  # noqa: BLE001, S110  (never let telemetry reach a request)
            pass

    def add(self, origin: str, path: str, policy: str, count: int, first: float, last: float) -> None:
        """``count`` refusals counted elsewhere (``corsadmin.refusals``), the first and the
        last at those times: as ``count`` calls of ``record``."""
        prefix = _prefixes.get(path)
        if prefix is None:
            prefix = _remember_prefix(path)
        with self._lock:
            self._merge((origin, prefix, policy), count, first, last, _max_origins)

    def pending(self) -> Counts:
        upstream[0]()
        with self._lock:
            return {key: list(entry) for key, entry in self._counts.items()}

    def _take(self) -> Counts:
        upstream[0]()
        with self._lock:
            counts, self._counts = self._counts, {}
        return counts

    def _keep(self, counts: Counts) -> None:
        """Put back counts the database did not take (within ``TELEMETRY_MAX_ORIGINS``)."""
        limit = conf.get("TELEMETRY_MAX_ORIGINS")
        with self._lock:
            for key, (count, first, last) in counts.items():
                self._merge(key, count, first, last, limit)

    def _merge(self, key: tuple[str, str, str], count: int, first: float, last: float, limit: int) -> None:
        """Add ``count`` refusals seen from ``first`` to ``last`` (holding the lock); beyond
        ``limit`` keys they are only counted as dropped."""
        entry = self._counts.get(key)
        if entry is not None:
            entry[0] += count
            entry[1] = min(entry[1], first)
            entry[2] = max(entry[2], last)
        elif len(self._counts) < limit:
            self._counts[key] = [count, first, last]
        else:
            self.dropped += count

    def flush(self) -> int:
        """Write the counts gathered so far; returns how many rows were written."""
        with self._flush_lock:
            counts = self._take()
            if self.dropped:
                logger.warning(
                    "corsadmin: telemetry dropped %d refusals (cap of %s distinct origins)",
                    self.dropped,
                    conf.get("TELEMETRY_MAX_ORIGINS"),
                    extra={"event": "telemetry_dropped"},
                )
                self.dropped = 0
            rows = _rows(counts)
            now = clock()
            due = self._pruned_at is None or now - self._pruned_at >= PRUNE_EVERY
            if not rows and not due:
                return 0
            try:
                refused.write(rows, refused.expiry(datetime.fromtimestamp(now, UTC)) if due else None)
            except Exception:
                self._keep(counts)
                raise
            if due:
                self._pruned_at = now
            return len(rows)

    def _drop_inherited_counts(self) -> None:
        """In a forked child: what the parent counted is the parent's to write."""
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._counts = {}
        self.dropped = 0


def _remember_prefix(path: str) -> str:
    prefix = path_prefix(path)
    memo = _prefixes
    if len(memo) >= PREFIX_MEMO_SIZE:
        memo.clear()
    memo[path] = prefix
    return prefix


def _rows(counts: Counts) -> list[refused.Row]:
    """The stored form of the counts; keys that become one (escaping, truncation) add up."""
    merged: dict[tuple[str, str, bool, str], list[Any]] = {}
    for (origin, prefix, policy), (count, first, last) in counts.items():
        key = (printable(origin), prefix, bool(policy), policy)
        slot = merged.get(key)
        if slot is None:
            merged[key] = [count, first, last]
        else:
            slot[0] += count
            slot[1] = min(slot[1], first)
            slot[2] = max(slot[2], last)
    return [
        (*key, count, datetime.fromtimestamp(first, UTC), datetime.fromtimestamp(last, UTC))
        for key, (count, first, last) in sorted(merged.items())
    ]


def prune() -> None:
    """Drop rows not seen within ``REFUSED_RETENTION_DAYS`` and keep the list within its
    budgets (``corsadmin.refused``), now."""
    refused.prune(refused.expiry(datetime.fromtimestamp(clock(), UTC)))


recorder = Recorder()


def record_refusal(origin: str, path: str) -> None:
    if ENABLED:
        recorder.record(origin, path)


def record_report(origin: str, path: str, policy: str) -> None:
    """A would-be refusal: the report-only ``policy`` would refuse what was allowed."""
    if ENABLED:
        recorder.record(origin, path, policy)


def configure() -> None:
    """Read the request path's settings (at start-up and when ``CORSADMIN`` changes)."""
    global ENABLED, _max_origins, _background
    ENABLED = bool(conf.get("TELEMETRY"))
    _max_origins = conf.get("TELEMETRY_MAX_ORIGINS")
    _background = conf.get("TELEMETRY_FLUSH") == "background"


def _forked() -> None:
    global _pid
    _pid = os.getpid()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forked)


@receiver(setting_changed)
def _setting_changed(setting: str, **kwargs: object) -> None:
    if setting == "CORSADMIN":
        configure()
