"""Prometheus metrics (``CORSADMIN["METRICS"] = True``; needs ``corsadmin[metrics]``).

The request path only adds one to a plain dictionary of this process (no lock, no
``prometheus_client`` call). The process's flush thread (``corsadmin.flusher``, also at
exit; or ``flush()``, which the metrics view also calls before each scrape) moves the
counts into ``prometheus_client`` metrics at most once per ``METRICS_INTERVAL``, and sets
the gauges from this process's snapshot. With ``PROMETHEUS_MULTIPROC_DIR`` set (gunicorn's
workers), prometheus_client writes each process's values to that directory and the view
adds them up; otherwise the metrics live in prometheus_client's default registry.

Disabled (the default), nothing here imports ``prometheus_client`` and the middleware
pays one test of ``ENABLED``.

Series:
    corsadmin_decisions_total{policy, outcome}  outcome: allowed, refused, preflight, not_covered
    corsadmin_refresh_duration_seconds           histogram of the refresher's database reads
    corsadmin_refresh_failures_total{service}    service: database, cache, listener
    corsadmin_rows_skipped_total{kind}           stored rows a snapshot left out (kind: policy, origin)
    corsadmin_snapshot_generation                the allow-list generation served (lowest worker)
    corsadmin_snapshot_age_seconds               since the database last confirmed it (oldest worker)
    corsadmin_snapshot_entries{policy}           entries per policy (exact origins and patterns) in
                                                 the snapshot of the process that answers the scrape,
                                                 read at the scrape: a deleted policy's series goes
                                                 with it (a gauge in prometheus_client's multiprocess
                                                 files could not be removed)
    corsadmin_process_snapshot_generation        the generation each worker serves (``pid`` label
                                                 under PROMETHEUS_MULTIPROC_DIR)
    corsadmin_process_snapshot_age_seconds       each worker's confirmation age (likewise)
    corsadmin_database_generation                the database's generation, read at each scrape
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import TYPE_CHECKING

from django.core.signals import setting_changed
from django.dispatch import receiver

from . import conf, signals
from .flusher import Job, flusher
from .refresh import holder

if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import Protocol

    from django.http import HttpRequest, HttpResponse
    from prometheus_client.metrics_core import Metric

    from .snapshot import CompiledPolicy, Decision

    class Asked(Protocol):
        """What ``count`` reads of the middleware's view of a request."""

        preflight: bool

        def cross_origin(self, request: HttpRequest) -> bool: ...


logger = logging.getLogger("corsadmin")

# The middleware's guard: set from CORSADMIN["METRICS"] when the app is ready and when the
# setting changes (a module-level flag, so a disabled site pays one attribute test).
ENABLED = False

OUTCOMES = ("allowed", "refused", "preflight", "not_covered")
NO_POLICY = "(none)"  # the label of refusals and requests no policy covers
MAX_DURATIONS = 1000  # refresh durations kept between two flushes (a refresh is rare)

# (policy, outcome) -> count since the process started: only ever grows, so a flush takes the
# difference with what it flushed before and nothing is lost to a swap during a request.
_decisions: dict[tuple[str, str], int] = {}
_flushed: dict[tuple[str, str], int] = {}
_failures: dict[str, int] = {}
_failures_flushed: dict[str, int] = {}
_skipped: dict[str, int] = {}
_skipped_flushed: dict[str, int] = {}
_durations: list[float] = []
_confirmed_at: float | None = None  # when the database last answered this process's refresher
_flush_lock = threading.Lock()
_metrics: _Metrics | None = None  # the prometheus_client objects, made on the first flush of the process


def configure() -> None:
    """Read ``CORSADMIN["METRICS"]`` (at start-up and when the setting changes)."""
    global ENABLED
    ENABLED = bool(conf.get("METRICS"))


# --- the request path ------------------------------------------------------------------


def count(decision: Decision, asked: Asked, request: HttpRequest) -> None:
    """One decision of the middleware. A refused or uncovered request without an Origin, or
    from the site's own origin, is not a CORS request: it is not counted."""
    if decision.allowed:
        key = (decision.policy or NO_POLICY, "preflight" if asked.preflight else "allowed")
    elif asked.cross_origin(request):
        key = (NO_POLICY, "refused" if decision.covered else "not_covered")
    else:
        return
    counts = _decisions
    if key in counts:
        counts[key] += 1  # without a lock: a rare lost increment between threads, never an error
    else:
        counts[key] = 1
        if job.pid != os.getpid() and conf.get("METRICS_FLUSH") == "background":
            flusher.ensure_started(job)


# --- the refresher ---------------------------------------------------------------------


@receiver(signals.refreshed)
def _refreshed(seconds: float, ok: bool, **kwargs: object) -> None:
    if ENABLED:
        refreshed(seconds, ok)


@receiver(signals.service_failed)
def _service_failed(service: str, **kwargs: object) -> None:
    if ENABLED:
        failed(service)


@receiver(signals.row_skipped)
def _row_skipped(kind: str, **kwargs: object) -> None:
    if ENABLED:
        _skipped[kind] = _skipped.get(kind, 0) + 1


def refreshed(seconds: float, ok: bool) -> None:
    """One read of the database by the refresher, successful or not."""
    global _confirmed_at
    if len(_durations) < MAX_DURATIONS:
        _durations.append(seconds)
    if ok:
        _confirmed_at = time.time()
    # No thread started here: gunicorn --preload refreshes in the master, which serves nothing.


def failed(service: str) -> None:
    """A failed call to a service (``database``, ``cache``, ``listener``)."""
    _failures[service] = _failures.get(service, 0) + 1


# --- the move into prometheus_client ---------------------------------------------------


def multiprocess() -> bool:
    return bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR") or os.environ.get("prometheus_multiproc_dir"))  # noqa: SIM112  (its old name)


class _Metrics:
    def __init__(self) -> None:
        from prometheus_client import Counter, Gauge, Histogram

        self.decisions = Counter(
            "corsadmin_decisions", "CORS decisions by policy and outcome", ("policy", "outcome")
        )
        self.duration = Histogram(
            "corsadmin_refresh_duration_seconds",
            "How long the refresher's reads of the allow-list took",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
        )
        self.failures = Counter(
            "corsadmin_refresh_failures", "Failed calls to a service by the refresher", ("service",)
        )
        self.skipped = Counter(
            "corsadmin_rows_skipped",
            "Stored rows left out of the allow-list: they cannot be compiled",
            ("kind",),
        )
        # Each worker has its own snapshot: the stalest one is what an alert wants.
        self.generation = Gauge(
            "corsadmin_snapshot_generation",
            "Generation of the allow-list served",
            multiprocess_mode="livemin",
        )
        self.age = Gauge(
            "corsadmin_snapshot_age_seconds",
            "Seconds since the database last confirmed the allow-list served",
            multiprocess_mode="livemax",
        )
        # Each worker's own (multiprocess: a "pid" label), as `cors status` lists them.
        self.process_generation = Gauge(
            "corsadmin_process_snapshot_generation",
            "Generation of the allow-list this process serves",
            multiprocess_mode="liveall",
        )
        self.process_age = Gauge(
            "corsadmin_process_snapshot_age_seconds",
            "Seconds since the database last confirmed the allow-list this process serves",
            multiprocess_mode="liveall",
        )
        self.database_generation = Gauge(
            "corsadmin_database_generation",
            "Generation of the allow-list in the database (read at each scrape)",
            multiprocess_mode="livemax",
        )
        from prometheus_client import REGISTRY

        if not multiprocess():  # multiprocess: the view's registry of each scrape adds it
            REGISTRY.register(EntriesCollector())


def _get_metrics() -> _Metrics:
    global _metrics
    if _metrics is None:
        _metrics = _Metrics()
    return _metrics


def flush() -> None:
    """Move this process's counts into prometheus_client and set the gauges."""
    with _flush_lock:
        metrics = _get_metrics()
        for key, total in list(_decisions.items()):
            delta = total - _flushed.get(key, 0)
            if delta > 0:
                metrics.decisions.labels(*key).inc(delta)
                _flushed[key] = total
        for service, total in list(_failures.items()):
            delta = total - _failures_flushed.get(service, 0)
            if delta > 0:
                metrics.failures.labels(service).inc(delta)
                _failures_flushed[service] = total
        for kind, total in list(_skipped.items()):
            delta = total - _skipped_flushed.get(kind, 0)
            if delta > 0:
                metrics.skipped.labels(kind).inc(delta)
                _skipped_flushed[kind] = total
        durations = _durations[:]
        del _durations[: len(durations)]
        for seconds in durations:
            metrics.duration.observe(seconds)
        _set_gauges(metrics)


def _set_gauges(metrics: _Metrics) -> None:
    snapshot = holder.peek()
    metrics.generation.set(snapshot.generation or 0)
    metrics.process_generation.set(snapshot.generation or 0)
    confirmed = holder.stats().get("confirmed_at", _confirmed_at) or getattr(snapshot, "built_at", None)
    if confirmed is not None:
        age = max(0.0, time.time() - confirmed)
        metrics.age.set(age)
        metrics.process_age.set(age)


class EntriesCollector:
    """``corsadmin_snapshot_entries{policy}``, read from this process's snapshot at each scrape.

    Not a labelled ``Gauge``: under ``PROMETHEUS_MULTIPROC_DIR`` a series once written stays in
    the process's file until the process ends (prometheus_client's ``remove()`` only warns
    "Removal of labels has not been implemented in multi-process mode yet"), so a deleted
    policy would keep its last value."""

    def describe(self) -> list[Metric]:
        return []  # nothing to check at registration (collect() reads the snapshot)

    def collect(self) -> Iterator[Metric]:
        from prometheus_client.core import GaugeMetricFamily

        family = GaugeMetricFamily(
            "corsadmin_snapshot_entries", "Entries per policy in the allow-list served", labels=("policy",)
        )
        for policy in holder.peek().policies:
            family.add_metric((policy.name,), _entries(policy))
        yield family


def _entries(policy: CompiledPolicy) -> int:
    table = getattr(policy, "table", None)
    if table is None:
        return 0
    try:
        return len(table)
    except TypeError:
        return 0


# --- the scrape ------------------------------------------------------------------------


def _set_database_generation() -> None:
    """The database's generation, beside the workers' (an alert compares them). Left as it
    was when the database does not answer: the refresh failures say so."""
    from django.db import router

    from .loader import database_generation
    from .models import Generation

    try:
        value = database_generation(router.db_for_read(Generation))
    except Exception:  # noqa: BLE001
        return
    _get_metrics().database_generation.set(value)


def exposition() -> tuple[bytes, str]:
    """The metrics in Prometheus' text format: every worker's with ``PROMETHEUS_MULTIPROC_DIR``."""
    from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest

    flush()
    _set_database_generation()
    if multiprocess():
        from prometheus_client import multiprocess as mp

        registry = CollectorRegistry()
        mp.MultiProcessCollector(registry)
        registry.register(EntriesCollector())
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


def view(request: HttpRequest) -> HttpResponse:
    """``/metrics``: 404 unless ``CORSADMIN["METRICS"]``. Protect it as any scrape target
    (network, proxy or the host's own decorator): it names the policies."""
    from django.http import Http404, HttpResponse

    if not conf.get("METRICS"):
        raise Http404("metrics are disabled")
    body, content_type = exposition()
    return HttpResponse(body, content_type=content_type)


def _drop_inherited_counts() -> None:
    """In a forked child: what the parent counted is the parent's (it is not counted again)."""
    global _flush_lock
    _flush_lock = threading.Lock()
    _decisions.clear()
    _flushed.clear()
    _failures.clear()
    _failures_flushed.clear()
    _skipped.clear()
    _skipped_flushed.clear()
    del _durations[:]


def _pending() -> bool:
    return True  # the gauges (snapshot age) move even when no request was counted


job = flusher.register(
    Job(
        "metrics",
        flush,
        interval=lambda: float(conf.get("METRICS_INTERVAL")),
        pending=_pending,
        what="the Prometheus metrics",
        event="metrics_failed",
        forked=_drop_inherited_counts,
    )
)


@receiver(setting_changed)
def _setting_changed(setting: str, **kwargs: object) -> None:
    if setting == "CORSADMIN":
        configure()
