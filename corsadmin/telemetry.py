"""Refused-origin telemetry: counted in memory on the request path, written later.

The request path only touches a dictionary. A daemon thread per process (or a
call to ``flush``) writes the counts at most once per ``TELEMETRY_INTERVAL``.
Memory is bounded by ``TELEMETRY_MAX_ORIGINS`` distinct (origin, path prefix,
report-only policy) keys; what does not fit is counted in ``dropped``. Nothing here
raises into a request. Ordinary refusals have no policy (""); a report-only policy's
would-be refusals (the real decision allowed the origin) are counted under its name.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import F, Q

from . import conf
from .flusher import Flusher
from .origins import MAX_LENGTH

logger = logging.getLogger("corsadmin")

# (origin, path prefix, report-only policy or "") -> [count, first seen, last seen] (UNIX timestamps)
Counts = dict[tuple[str, str, str], list[Any]]


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
        self._lock = threading.Lock()
        self.dropped = 0
        self.flusher = Flusher(
            "corsadmin-telemetry",
            self.flush,
            interval=lambda: float(conf.get("TELEMETRY_INTERVAL")),
            pending=lambda: bool(self._counts or self.dropped),
            what="refused-origin telemetry",
            event="telemetry_failed",
        )

    def record(self, origin: str, path: str, policy: str = "") -> None:
        try:
            key = (origin, path_prefix(path), policy)
            now = time.time()
            counts = self._counts
            entry = counts.get(key)
            if entry is not None:
                entry[0] += 1
                entry[2] = now
            elif len(counts) < conf.get("TELEMETRY_MAX_ORIGINS"):
                counts[key] = [1, now, now]
            else:
                self.dropped += 1
            if self.flusher._pid != os.getpid() and conf.get("TELEMETRY_FLUSH") == "background":
                self.flusher.ensure_started()
        except Exception:  # never let telemetry reach a request
            pass

    def pending(self) -> Counts:
        return dict(self._counts)

    def _take(self) -> Counts:
        with self._lock:
            counts, self._counts = self._counts, {}
        return counts

    def flush(self) -> int:
        """Write the counts gathered so far; returns how many rows were touched."""
        from .models import RefusedOrigin

        counts = self._take()
        if self.dropped:
            logger.warning(
                "corsadmin: telemetry dropped %d refusals (cap of %s distinct origins)",
                self.dropped,
                conf.get("TELEMETRY_MAX_ORIGINS"),
                extra={"event": "telemetry_dropped"},
            )
            self.dropped = 0
        for (origin, prefix, policy), (count, first, last) in counts.items():
            origin = printable(origin)
            first_seen = datetime.fromtimestamp(first, UTC)
            last_seen = datetime.fromtimestamp(last, UTC)
            key = {"origin": origin, "path_prefix": prefix, "report": bool(policy), "policy": policy}
            with transaction.atomic():
                # A dismissed origin refused again comes back to the list.
                updated = RefusedOrigin.objects.filter(**key).update(
                    count=F("count") + count, last_seen=last_seen, dismissed=False
                )
                if not updated:
                    _, created = RefusedOrigin.objects.get_or_create(
                        **key,
                        defaults={"count": count, "first_seen": first_seen, "last_seen": last_seen},
                    )
                    if not created:
                        RefusedOrigin.objects.filter(**key).update(
                            count=F("count") + count, last_seen=last_seen, dismissed=False
                        )
        if counts:
            prune()
        return len(counts)


def prune() -> int:
    """Keep the ``REFUSED_MAX_ROWS`` most recently seen rows, seen within
    ``REFUSED_RETENTION_DAYS``: the least recently seen go first, so new refusals are
    always counted. Returns how many rows went."""
    from .models import RefusedOrigin

    removed = 0
    days = conf.get("REFUSED_RETENTION_DAYS")
    if days:
        cutoff = datetime.now(UTC) - timedelta(days=float(days))
        removed += RefusedOrigin.objects.filter(last_seen__lt=cutoff).delete()[0]
    cap = int(conf.get("REFUSED_MAX_ROWS"))
    newest_first = RefusedOrigin.objects.order_by("-last_seen", "-pk")
    boundary = newest_first.values_list("last_seen", "pk")[cap : cap + 1].first() if cap >= 0 else None
    if boundary is not None:
        last_seen, pk = boundary
        older = Q(last_seen__lt=last_seen) | Q(last_seen=last_seen, pk__lte=pk)
        evicted = RefusedOrigin.objects.filter(older).delete()[0]
        removed += evicted
        logger.info(
            "corsadmin: evicted %d least recently seen refused origins (cap of %d rows)",
            evicted,
            cap,
            extra={"event": "telemetry_evicted"},
        )
    return removed


recorder = Recorder()


def record_refusal(origin: str, path: str) -> None:
    if conf.get("TELEMETRY"):
        recorder.record(origin, path)


def record_report(origin: str, path: str, policy: str) -> None:
    """A would-be refusal: the report-only ``policy`` would refuse what was allowed."""
    if conf.get("TELEMETRY"):
        recorder.record(origin, path, policy)
