"""Staleness is visible: heartbeats (corsadmin.heartbeat), /api/cors/status/ and
``cors status`` (corsadmin.status), the per-process gauges.

In process, on the embedded pass: heartbeats in the database (the local-memory cache is
no shared store), times from a fake clock. tests/test_status_processes.py runs the real
thing: gunicorn workers on PostgreSQL and Redis, one of them cut off from the database.
"""

from __future__ import annotations

import io
import json
import logging
import os
import socket
from types import SimpleNamespace

import pytest
from django.core.management import CommandError, call_command
from django.db import OperationalError

from corsadmin import heartbeat
from corsadmin import status as status_module
from corsadmin.heartbeat import Beat, DatabaseStore, RedisStore
from corsadmin.models import Generation, ProcessHeartbeat
from corsadmin.signals import cycle_done

from .api_fixtures import API
from .cors_helpers import ECHO

STATUS = API + "status/"
NOW = 1_800_000_000.0
# REFRESH_INTERVAL 1, SERVICE_TIMEOUT 2, DATABASE_CHECK_EVERY 3: a confirmation may be
# 8 s old (max_age), a process may be behind for 3 s (grace), a heartbeat is gone after 7 s.
TIMING = {"REFRESH_INTERVAL": 1, "SERVICE_TIMEOUT": 2, "DATABASE_CHECK_EVERY": 3}


@pytest.fixture(autouse=True)
def timing(settings):
    settings.CORSADMIN = {**settings.CORSADMIN, **TIMING}


@pytest.fixture(autouse=True)
def database_store(monkeypatch):
    """Heartbeats in the database on both passes (with REDIS_URL set they would go to Redis,
    which outlives each test's rolled-back rows): test_redis_store covers Redis."""
    monkeypatch.setattr(heartbeat, "store", DatabaseStore)
    monkeypatch.setattr(status_module, "store", DatabaseStore)
    monkeypatch.setattr(heartbeat.reporter, "_store", None)
    monkeypatch.setattr(heartbeat.reporter, "written", None)


@pytest.fixture
def clock(monkeypatch):
    fake = SimpleNamespace(now=NOW)
    stub = SimpleNamespace(time=lambda: fake.now)
    monkeypatch.setattr(status_module, "time", stub)
    monkeypatch.setattr(heartbeat, "time", stub)
    return fake


def set_generation(value: int) -> None:
    Generation.objects.update_or_create(pk=1, defaults={"value": value})


def beat(
    process: str,
    generation: int | None,
    confirmed: float | None = 1.0,
    since: float = 60.0,
    error: str | None = None,
    written: float = 0.5,
) -> None:
    """A process's heartbeat as its writer would store it: times in seconds before NOW."""
    DatabaseStore().write(
        Beat(
            process,
            generation,
            None if confirmed is None else NOW - confirmed,
            NOW - since,
            error,
            NOW - written,
        )
    )


def cors_status(*args: str) -> str:
    out = io.StringIO()
    call_command("cors", "status", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def cors_status_fails(*args: str) -> tuple[CommandError, str]:
    out = io.StringIO()
    with pytest.raises(CommandError) as info:
        call_command("cors", "status", *args, stdout=out, stderr=io.StringIO())
    return info.value, out.getvalue()


# --- the API --------------------------------------------------------------------------


@pytest.mark.django_db
def test_status_lists_every_live_process_with_generation_age_and_error(reader_client, clock):
    set_generation(42)
    beat("web1:101", 42, confirmed=1.5)
    beat("web1:102", 41, confirmed=9.0, error="OperationalError: connection refused")
    response = reader_client.get(STATUS)
    assert response.status_code == 200
    assert response.json() == {
        "generation": 42,
        "processes": [
            {"id": "web1:101", "generation": 42, "age_seconds": 1.5, "last_error": None, "stale": False},
            {
                "id": "web1:102",
                "generation": 41,
                "age_seconds": 9.0,
                "last_error": "OperationalError: connection refused",
                "stale": True,
            },
        ],
    }


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("newer_since", "stale"),
    [(2.9, False), (3.1, True)],  # grace: REFRESH_INTERVAL + SERVICE_TIMEOUT = 3 s
)
def test_behind_is_stale_once_behind_for_longer_than_a_refresh_takes(
    reader_client, clock, newer_since, stale
):
    set_generation(42)
    beat("web1:101", 42, since=newer_since)  # began serving 42 that long ago
    beat("web2:201", 41, confirmed=1.0)
    processes = reader_client.get(STATUS).json()["processes"]
    assert [(p["id"], p["stale"]) for p in processes] == [("web1:101", False), ("web2:201", stale)]


@pytest.mark.django_db
def test_behind_with_no_process_ahead_is_stale_only_by_age(reader_client, clock):
    set_generation(42)
    beat("web1:101", 41, confirmed=7.9)
    beat("web1:102", 41, confirmed=8.1)
    processes = reader_client.get(STATUS).json()["processes"]
    assert [(p["id"], p["stale"]) for p in processes] == [("web1:101", False), ("web1:102", True)]


@pytest.mark.django_db
def test_ahead_of_the_database_and_never_confirmed_are_stale(reader_client, clock):
    set_generation(42)
    beat("web1:101", 43)  # the database was replaced under it
    beat("web1:102", None, confirmed=None)  # a cold start that never loaded
    assert reader_client.get(STATUS).json()["processes"] == [
        {"id": "web1:101", "generation": 43, "age_seconds": 1.0, "last_error": None, "stale": True},
        {"id": "web1:102", "generation": None, "age_seconds": None, "last_error": None, "stale": True},
    ]


@pytest.mark.django_db
def test_max_age_sets_the_confirmation_threshold(reader_client, clock):
    set_generation(42)
    beat("web1:101", 42, confirmed=2.0)
    assert reader_client.get(STATUS).json()["processes"][0]["stale"] is False
    assert reader_client.get(STATUS + "?max_age=1.5").json()["processes"][0]["stale"] is True
    response = reader_client.get(STATUS + "?max_age=-1")
    assert response.status_code == 400
    assert list(response.json()) == ["max_age"]


@pytest.mark.django_db
def test_a_gone_process_drops_out_and_its_row_is_pruned(reader_client, clock):
    set_generation(42)
    beat("web1:101", 42, written=6.9)
    beat("web1:102", 42, written=7.1)  # not rewritten for 3 periods + 2 timeouts: gone
    assert [p["id"] for p in reader_client.get(STATUS).json()["processes"]] == ["web1:101"]
    beat("web1:103", 42, written=0.0)  # a write prunes what is gone (at most once per gone_after)
    assert sorted(ProcessHeartbeat.objects.values_list("process", flat=True)) == ["web1:101", "web1:103"]


@pytest.mark.django_db
def test_status_needs_the_view_permission(anon_client, nobody_client, reader_client):
    assert anon_client.get(STATUS).status_code in (401, 403)
    assert nobody_client.get(STATUS).status_code == 403
    assert reader_client.get(STATUS).json() == {"generation": 0, "processes": []}


@pytest.mark.django_db
def test_status_is_in_the_schema(anon_client):
    schema = anon_client.get(API + "schema/?format=json").json()
    operation = schema["paths"]["/api/cors/status/"]["get"]
    assert [p["name"] for p in operation["parameters"]] == ["max_age"]
    ref = operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    body = schema["components"]["schemas"][ref.rsplit("/", 1)[1]]
    assert sorted(body["properties"]) == ["generation", "processes"]
    process = schema["components"]["schemas"]["Process"]
    assert sorted(process["properties"]) == ["age_seconds", "generation", "id", "last_error", "stale"]


@pytest.mark.django_db
def test_an_unreadable_heartbeat_store_is_a_503(reader_client, monkeypatch):
    class Down:
        def read(self):
            raise ConnectionError("Redis is down")

    monkeypatch.setattr(status_module, "store", Down)
    response = reader_client.get(STATUS)
    assert response.status_code == 503
    assert response.json()["code"] == "heartbeats_unavailable"
    assert response["Retry-After"] == "5"


# --- the command line ----------------------------------------------------------------------


@pytest.mark.django_db
def test_cors_status_prints_a_table_and_exits_0_when_all_are_current(clock):
    set_generation(42)
    beat("web1:101", 42, since=1.0, confirmed=1.5)  # began serving 42 a second ago
    beat("web1:102", 41, confirmed=2.0)  # catching up: behind for less than 3 s
    beat("web1:103", 42, since=0.5, confirmed=0.25)
    assert cors_status().splitlines() == [
        "database generation: 42",
        "PROCESS   GENERATION  CONFIRMED  STATUS                  LAST ERROR",
        "web1:101  42          1.5 s ago  current                 -",
        "web1:102  41          2.0 s ago  catching up (1 behind)  -",
        "web1:103  42          0.2 s ago  current                 -",
        "3 process(es), 0 stale (stale: behind the database for over 3 s, or unconfirmed for over 8 s)",
    ]


@pytest.mark.django_db
def test_cors_status_flags_a_stale_process_and_exits_1(clock):
    set_generation(42)
    beat("web1:101", 42, since=5.0)
    beat("web2:201", 40, confirmed=12.0, error="OperationalError: connection refused")
    error, out = cors_status_fails()
    assert error.returncode == 1
    assert str(error) == "1 of 2 process(es) stale"
    assert out.splitlines() == [
        "database generation: 42",
        "PROCESS   GENERATION  CONFIRMED   STATUS            LAST ERROR",
        "web1:101  42          1.0 s ago   current           -",
        "web2:201  40          12.0 s ago  STALE (2 behind)  OperationalError: connection refused",
        "2 process(es), 1 stale (stale: behind the database for over 3 s, or unconfirmed for over 8 s)",
    ]


@pytest.mark.django_db
def test_cors_status_json_is_what_the_api_answers(reader_client, clock):
    set_generation(42)
    beat("web1:101", 42)
    assert json.loads(cors_status("--json")) == reader_client.get(STATUS).json()
    beat("web1:102", 42, confirmed=3.0)
    error, out = cors_status_fails("--json", "--max-age", "2")
    assert error.returncode == 1
    assert json.loads(out) == reader_client.get(STATUS + "?max_age=2").json()
    assert [p["stale"] for p in json.loads(out)["processes"]] == [False, True]


@pytest.mark.django_db
def test_cors_status_with_no_process_says_so(clock):
    set_generation(7)
    assert cors_status().splitlines() == [
        "database generation: 7",
        "PROCESS  GENERATION  CONFIRMED  STATUS  LAST ERROR",
        "no live process has reported (a process reports once it has served a request)",
    ]


@pytest.mark.django_db
def test_cors_status_bad_max_age_is_bad_input():
    with pytest.raises(CommandError, match="is not a number of seconds"):
        cors_status("--max-age", "soon")


# --- the heartbeat: from the refresher to the database ---------------------------------------


@pytest.mark.django_db
def test_the_refresher_cycle_writes_this_process_heartbeat_to_the_database(client, reader_client):
    """The database-backed path: an inline refresh sends cycle_done, the receiver notes
    holder.stats(), the writer stores it in ProcessHeartbeat, the API lists it."""
    from corsadmin.models import AllowedOrigin

    AllowedOrigin.objects.create(origin="https://app.example.com")
    sent = []
    cycle_done.connect(
        lambda holder, **kw: sent.append(holder.stats()["generation"]), weak=False, dispatch_uid="t"
    )
    try:
        client.get(ECHO)  # the first request refreshes (inline): one cycle
    finally:
        cycle_done.disconnect(dispatch_uid="t")
    generation = Generation.objects.get(pk=1).value
    assert sent == [generation]
    assert not ProcessHeartbeat.objects.exists()  # inline mode: written only when flushed
    heartbeat.reporter.flush()
    me = f"{socket.gethostname()}:{os.getpid()}"
    row = ProcessHeartbeat.objects.get()
    assert (row.process, row.generation, row.last_error) == (me, generation, "")
    body = reader_client.get(STATUS).json()
    assert body["generation"] == generation
    [process] = body["processes"]
    assert (process["id"], process["generation"], process["last_error"], process["stale"]) == (
        me,
        generation,
        None,
        False,
    )
    assert 0 <= process["age_seconds"] < 5


class Recording:
    def __init__(self) -> None:
        self.written: list[Beat] = []
        self.fail: Exception | None = None

    def write(self, beat: Beat) -> None:
        if self.fail is not None:
            raise self.fail
        self.written.append(beat)


def test_writes_are_throttled_unless_something_changed():
    reporter = heartbeat.Reporter()
    reporter._store = store = Recording()
    reporter.observe({"generation": 5, "confirmed_at": NOW, "last_error": None})
    reporter.write_due(NOW)
    reporter.observe({"generation": 5, "confirmed_at": NOW + 0.5, "last_error": None})
    reporter.write_due(NOW + 0.5)  # unchanged, within the period (1 s): not written
    reporter.write_due(NOW + 1.0)  # the period: written
    reporter.observe({"generation": 6, "confirmed_at": NOW + 1.2, "last_error": None})
    reporter.write_due(NOW + 1.2)  # a new generation: written at once
    reporter.observe({"generation": 6, "confirmed_at": NOW + 1.2, "last_error": "OperationalError: down"})
    reporter.write_due(NOW + 1.3)  # a new error: written at once
    assert [(b.written_at, b.generation, b.confirmed_at, b.last_error) for b in store.written] == [
        (NOW, 5, NOW, None),
        (NOW + 1.0, 5, NOW + 0.5, None),
        (NOW + 1.2, 6, NOW + 1.2, None),
        (NOW + 1.3, 6, NOW + 1.2, "OperationalError: down"),
    ]


def test_a_failing_store_is_logged_once_and_never_raises(caplog):
    reporter = heartbeat.Reporter()
    reporter._store = store = Recording()
    store.fail = OperationalError("server closed the connection")
    reporter.observe({"generation": 5, "confirmed_at": NOW})
    with caplog.at_level(logging.WARNING, logger="corsadmin"):
        for second in range(3):
            reporter.write_due(NOW + second)
        store.fail = None
        reporter.write_due(NOW + 3)
    assert [r.getMessage() for r in caplog.records if r.name == "corsadmin"] == [
        (
            "corsadmin: could not write this process's heartbeat (OperationalError: server closed the "
            "connection); `cors status` will not list it until it can"
        ),
        "corsadmin: this process's heartbeat is written again",
    ]
    assert [b.written_at for b in store.written] == [NOW + 3]


class FakeHolder:
    def __init__(self, generation: int, background: bool) -> None:
        self.generation, self.background = generation, background

    def stats(self) -> dict:
        return {
            "generation": self.generation,
            "confirmed_at": NOW,
            "last_error": None,
            "background": self.background,
        }


def test_the_writer_thread_writes_while_a_refresher_serves_the_process(settings):
    """HEARTBEAT_FLUSH "background": the receiver only notes and wakes the thread, which
    writes (never the refresher); with no refresher running (after a reset) it writes nothing."""
    import threading

    settings.CORSADMIN = {**settings.CORSADMIN, "HEARTBEAT_FLUSH": "background"}
    reporter = heartbeat.Reporter()
    reporter._store = store = Recording()
    written = threading.Event()
    store.write = lambda beat: (store.written.append((threading.current_thread().name, beat)), written.set())
    reporter.observe({"generation": 5, "confirmed_at": NOW}, FakeHolder(5, background=True))
    assert written.wait(10)
    [(thread, beat)] = store.written[:1]
    assert (thread, beat.generation) == (heartbeat.WRITER, 5)
    reporter.exiting = True  # the thread ends at its next wake


def test_until_the_refresher_reports_them_confirmation_and_error_come_from_its_signals():
    reporter = heartbeat.Reporter()
    reporter.refreshed(ok=False)
    reporter.observe({"generation": None})
    assert (reporter.latest.confirmed_at, reporter.latest.last_error) == (
        None,
        "the database did not answer the refresher",
    )
    reporter.refreshed(ok=True)
    reporter.observe({"generation": 3})
    assert reporter.latest.confirmed_at is not None and reporter.latest.last_error is None


def test_a_forked_child_starts_unconfirmed():
    """What the master confirmed (gunicorn --preload) is not the child's confirmation."""
    reporter = heartbeat.Reporter()
    reporter.refreshed(ok=True)
    reporter.observe({"generation": 3})
    reporter.forked()
    reporter.observe({"generation": 3})
    assert reporter.latest.confirmed_at is None


def test_the_store_is_redis_with_a_redis_cache_and_the_database_otherwise(settings, monkeypatch):
    monkeypatch.undo()  # the real heartbeat.store()
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    assert isinstance(heartbeat.store(), DatabaseStore)
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",
            "KEY_PREFIX": "site-a",
        }
    }
    redis_store = heartbeat.store()
    assert isinstance(redis_store, RedisStore)
    assert redis_store.key == "site-a:1:corsadmin:v1:heartbeats"


# --- the gauges ----------------------------------------------------------------------------


def test_each_worker_generation_and_age_is_a_gauge_of_its_own(tmp_path):
    pytest.importorskip("prometheus_client")
    from prometheus_client import CollectorRegistry
    from prometheus_client.multiprocess import MultiProcessCollector

    from .test_metrics import run_process

    run_process("2", "7", multiproc_dir=str(tmp_path))
    run_process("3", "9", multiproc_dir=str(tmp_path))
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(tmp_path))
    samples = [
        s for metric in registry.collect() for s in metric.samples if s.name.startswith("corsadmin_process_")
    ]
    generations = sorted(s.value for s in samples if s.name == "corsadmin_process_snapshot_generation")
    assert generations == [7, 9]
    assert all("pid" in s.labels for s in samples)
    assert len({s.labels["pid"] for s in samples}) == 2


@pytest.mark.django_db
def test_the_scrape_reads_the_database_generation(client, settings, admin_user):
    pytest.importorskip("prometheus_client")
    settings.CORSADMIN = {**settings.CORSADMIN, "METRICS": True}
    set_generation(42)
    client.force_login(admin_user)  # the view needs view_policy (README, "Metrics")
    text = client.get("/metrics/").content.decode()
    assert "corsadmin_database_generation 42.0" in text.splitlines()


@pytest.mark.services
def test_redis_store_keeps_live_heartbeats_and_drops_gone_ones(settings, clock):
    """The Redis path (REDIS_URL, the services pass): one hash under the cache's prefix,
    expiring as a whole when nobody writes; a gone process's field is dropped on read."""
    import secrets

    url = os.environ.get("REDIS_URL", "")
    if not url.startswith("redis"):
        pytest.fail("needs REDIS_URL (the services pass sets it)")
    prefix = f"corsadmin-status-test-{secrets.token_hex(4)}"
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": url,
            "KEY_PREFIX": prefix,
        }
    }
    store = heartbeat.RedisStore(heartbeat.shared_bus())
    try:
        store.write(Beat("web1:101", 42, NOW - 1, NOW - 60, None, NOW))
        store.write(Beat("web1:102", 41, NOW - 9, NOW - 60, "OperationalError: down", NOW - 7.1))
        assert store.read() == [Beat("web1:101", 42, NOW - 1, NOW - 60, None, NOW)]
        assert store.client.hkeys(store.key) == [b"web1:101"]  # the gone one dropped
        assert 0 < store.client.ttl(store.key) <= 7  # gone_after, rounded up
        store.remove("web1:101")
        assert store.read() == []
    finally:
        store.client.delete(store.key)
