"""Freshness: the generation stamp, the refresh interval, invalidation on every write path,
failures during a refresh, and two server processes converging."""

from __future__ import annotations

import http.client
import json
import logging
import os
import socket
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
from django.core.management import call_command
from django.db import OperationalError, connection, transaction
from django.db.models import F
from django.utils import timezone

from corsadmin import bus, loader, refresh, refresher
from corsadmin.loader import SnapshotBuilder
from corsadmin.models import AllowedOrigin, Generation, Policy, request_reload
from corsadmin.refresh import holder
from corsadmin.snapshot import CompiledPolicy, Snapshot

from .cors_helpers import (
    APP,
    ECHO,
    cors_headers,
    vary,
)

pytestmark = pytest.mark.usefixtures("manual_telemetry")

BASE_DIR = Path(__file__).resolve().parent.parent
INTERVAL = 5.0


def generation() -> int:
    return Generation.objects.get(pk=1).value


def allows(client, origin: str = APP, path: str = ECHO) -> bool:
    response = client.get(path, headers={"Origin": origin})
    return response.headers.get("Access-Control-Allow-Origin") == origin


class Clock:
    """A monotonic clock for the refresh layer that only moves when told to."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def fake_time(monkeypatch, settings):
    """The refresh layer's monotonic clock, moved by the test; the interval is INTERVAL."""
    settings.CORSADMIN = {**getattr(settings, "CORSADMIN", {}), "REFRESH_INTERVAL": INTERVAL}
    fake = Clock()
    monkeypatch.setattr(
        refresh, "time", SimpleNamespace(monotonic=fake.monotonic, time=time.time, sleep=time.sleep)
    )
    return fake


@pytest.fixture
def private_cache(settings):
    """A cache private to the process (no bus): the database is the only news of a change,
    whether or not REDIS_URL is set."""
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}


@pytest.fixture
def clock(private_cache, fake_time):
    return fake_time


@pytest.fixture
def reads(monkeypatch):
    """Count the refresh layer's database reads: full builds (``SnapshotBuilder.load``) and
    checks for changes (``SnapshotBuilder.update``, which does the first build itself)."""
    counts = {"builds": 0, "checks": 0}
    load, update = SnapshotBuilder.load, SnapshotBuilder.update

    def counting_load(self):
        counts["builds"] += 1
        return load(self)

    def counting_update(self):
        counts["checks"] += 1
        return update(self)

    monkeypatch.setattr(SnapshotBuilder, "load", counting_load)
    monkeypatch.setattr(SnapshotBuilder, "update", counting_update)
    return counts


def fail(*args, **kwargs):
    raise OperationalError("database is down")


# What a failure-injection test can break: the change check, the full build, the
# generation read that starts a full build.
BROKEN = {
    "update": (SnapshotBuilder, "update"),
    "load": (SnapshotBuilder, "load"),
    "database_generation": (loader, "database_generation"),
}


def break_database(monkeypatch, *names: str) -> None:
    for name in names:
        monkeypatch.setattr(*BROKEN[name], fail)


# --- the generation stamp -----------------------------------------------------


@pytest.mark.django_db
def test_change_bumps_the_generation_in_the_same_transaction(django_capture_on_commit_callbacks):
    before = generation()
    with django_capture_on_commit_callbacks() as callbacks:
        AllowedOrigin.objects.create(origin=APP)
        assert generation() == before + 1
    assert len(callbacks) == 1


@pytest.mark.django_db
def test_change_is_published_only_after_commit(client, django_capture_on_commit_callbacks, long_interval):
    assert allows(client) is False
    with django_capture_on_commit_callbacks() as callbacks:
        AllowedOrigin.objects.create(origin=APP)
    assert allows(client) is False  # written, not yet committed: nothing announced
    for callback in callbacks:
        callback()
    assert allows(client) is True


@pytest.mark.django_db
def test_rolled_back_change_does_not_move_the_generation(
    client, django_capture_on_commit_callbacks, long_interval, django_assert_num_queries
):
    allows(client)
    before = generation()
    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        pytest.raises(RuntimeError),
        transaction.atomic(),
    ):
        AllowedOrigin.objects.create(origin=APP)
        raise RuntimeError("roll back")
    assert (generation(), callbacks) == (before, [])
    with django_assert_num_queries(0):  # nothing announced: no refresh is due
        assert allows(client) is False


@pytest.mark.django_db
def test_missing_generation_row_is_recreated(django_capture_on_commit_callbacks):
    Generation.objects.all().delete()
    AllowedOrigin.objects.create(origin=APP)
    assert generation() == 1


@pytest.mark.django_db
def test_snapshot_records_the_generation_it_was_built_from():
    AllowedOrigin.objects.create(origin=APP)
    assert holder.get().generation == generation()


# --- invalidation on every write path ------------------------------------------------
#
# The interval is an hour, so only the invalidation can make the next request see
# the change; the generation in the database must move as well (other processes).


@pytest.fixture
def entry(db):
    return AllowedOrigin.objects.create(origin=APP)


def write_path(client, capture, write, *, allowed_after: bool) -> None:
    allows(client)  # warm this process's snapshot
    before = generation()
    with capture(execute=True):
        write()
    assert generation() > before
    assert allows(client) is allowed_after


@pytest.mark.django_db
def test_model_save_create_invalidates(client, long_interval, django_capture_on_commit_callbacks):
    write_path(
        client,
        django_capture_on_commit_callbacks,
        lambda: AllowedOrigin.objects.create(origin=APP),
        allowed_after=True,
    )


@pytest.mark.django_db
def test_model_save_change_invalidates(client, entry, long_interval, django_capture_on_commit_callbacks):
    def write():
        entry.enabled = False
        entry.save()

    write_path(client, django_capture_on_commit_callbacks, write, allowed_after=False)


@pytest.mark.django_db
def test_model_delete_invalidates(client, entry, long_interval, django_capture_on_commit_callbacks):
    write_path(client, django_capture_on_commit_callbacks, entry.delete, allowed_after=False)


@pytest.mark.django_db
def test_queryset_update_invalidates(client, entry, long_interval, django_capture_on_commit_callbacks):
    write_path(
        client,
        django_capture_on_commit_callbacks,
        lambda: AllowedOrigin.objects.filter(origin=APP).update(enabled=False),
        allowed_after=False,
    )


@pytest.mark.django_db
def test_queryset_update_of_expiry_invalidates(
    client, entry, long_interval, django_capture_on_commit_callbacks
):
    past = timezone.now() - timedelta(minutes=1)
    write_path(
        client,
        django_capture_on_commit_callbacks,
        lambda: AllowedOrigin.objects.filter(origin=APP).update(expires_at=past),
        allowed_after=False,
    )


@pytest.mark.django_db
def test_queryset_delete_invalidates(client, entry, long_interval, django_capture_on_commit_callbacks):
    write_path(
        client,
        django_capture_on_commit_callbacks,
        lambda: AllowedOrigin.objects.filter(origin=APP).delete(),
        allowed_after=False,
    )


@pytest.mark.django_db
def test_bulk_create_invalidates(client, long_interval, django_capture_on_commit_callbacks):
    write_path(
        client,
        django_capture_on_commit_callbacks,
        lambda: AllowedOrigin.objects.bulk_create(
            [AllowedOrigin(origin=APP, policy=Policy.objects.get(name="default"))]
        ),
        allowed_after=True,
    )


@pytest.mark.django_db
def test_bulk_update_invalidates(client, entry, long_interval, django_capture_on_commit_callbacks):
    def write():
        entry.enabled = False
        AllowedOrigin.objects.bulk_update([entry], ["enabled"])

    write_path(client, django_capture_on_commit_callbacks, write, allowed_after=False)


@pytest.mark.django_db
def test_policy_save_invalidates(client, entry, long_interval, django_capture_on_commit_callbacks):
    def write():
        policy = Policy.objects.get(name="default")
        policy.url_regex = "^/api/"
        policy.save()

    write_path(client, django_capture_on_commit_callbacks, write, allowed_after=False)


@pytest.mark.django_db
def test_policy_queryset_update_invalidates(client, entry, long_interval, django_capture_on_commit_callbacks):
    write_path(
        client,
        django_capture_on_commit_callbacks,
        lambda: Policy.objects.filter(name="default").update(enabled=False),
        allowed_after=False,
    )


@pytest.mark.django_db
def test_policy_delete_invalidates(client, entry, long_interval, django_capture_on_commit_callbacks):
    write_path(
        client,
        django_capture_on_commit_callbacks,
        lambda: Policy.objects.get(name="default").delete(),
        allowed_after=False,
    )
    assert "Origin" not in vary(client.get(ECHO, headers={"Origin": APP}))


@pytest.mark.django_db
def test_policy_queryset_delete_invalidates(client, entry, long_interval, django_capture_on_commit_callbacks):
    write_path(
        client,
        django_capture_on_commit_callbacks,
        lambda: Policy.objects.filter(name="default").delete(),
        allowed_after=False,
    )


@pytest.mark.django_db
def test_policy_option_change_shows_in_headers(
    client, entry, long_interval, django_capture_on_commit_callbacks
):
    allows(client)
    with django_capture_on_commit_callbacks(execute=True):
        Policy.objects.filter(name="default").update(allow_credentials=True)
    response = client.get(ECHO, headers={"Origin": APP})
    assert response["Access-Control-Allow-Credentials"] == "true"


@pytest.mark.django_db
def test_loaddata_invalidates(client, tmp_path, long_interval, django_capture_on_commit_callbacks):
    policy = Policy.objects.get(name="default")
    fixture = tmp_path / "origins.json"
    fixture.write_text(
        json.dumps(
            [
                {
                    "model": "corsadmin.allowedorigin",
                    "pk": 900,
                    "fields": {
                        "origin": APP,
                        "policy": policy.pk,
                        "enabled": True,
                        "note": "",
                        "expires_at": None,
                        "csrf_trusted": False,
                        "created_at": "2025-01-01T00:00:00Z",
                        "updated_at": "2025-01-01T00:00:00Z",
                        "created_by": None,
                    },
                }
            ]
        )
    )
    write_path(
        client,
        django_capture_on_commit_callbacks,
        lambda: call_command("loaddata", str(fixture), verbosity=0),
        allowed_after=True,
    )


@pytest.mark.django_db
def test_write_without_commit_hook_waits_for_the_interval(client, clock):
    """Without the commit hook (another process's write) the change arrives with the interval."""
    allows(client)
    AllowedOrigin.objects.create(origin=APP)  # on_commit never runs inside the test transaction
    assert allows(client) is False
    clock.advance(INTERVAL)
    assert allows(client) is True


# --- the refresh interval ----------------------------------------------------------


@pytest.mark.django_db
def test_no_second_check_within_the_interval(client, entry, clock, reads):
    assert allows(client)
    assert reads == {"builds": 1, "checks": 1}
    clock.advance(INTERVAL - 0.01)
    for _ in range(20):
        assert allows(client)
    assert reads == {"builds": 1, "checks": 1}


@pytest.mark.django_db
def test_no_query_within_the_interval(client, entry, clock, django_assert_num_queries):
    allows(client)
    clock.advance(INTERVAL / 2)
    with django_assert_num_queries(0):
        for _ in range(20):
            allows(client)


@pytest.mark.django_db
def test_unchanged_generation_does_not_rebuild(client, entry, clock, reads):
    allows(client)
    first = holder.get()
    clock.advance(INTERVAL)
    assert allows(client)
    assert reads == {"builds": 1, "checks": 2}
    assert holder.get() is first


@pytest.mark.django_db
def test_check_after_the_interval_is_one_query(client, entry, clock, django_assert_num_queries):
    allows(client)
    clock.advance(INTERVAL)
    with django_assert_num_queries(1):
        for _ in range(5):
            allows(client)


@pytest.mark.django_db
def test_changed_generation_rebuilds(client, clock, reads):
    """Incrementally: the change is read and applied, nothing is loaded from scratch."""
    assert allows(client) is False
    AllowedOrigin.objects.create(origin=APP)  # as if by another process: no commit hook here
    clock.advance(INTERVAL)
    assert allows(client) is True
    assert reads == {"builds": 1, "checks": 2}
    assert (holder.stats()["full_loads"], holder.stats()["updates"]) == (1, 1)


@pytest.mark.django_db
def test_reload_request_rebuilds_from_scratch(client, entry, clock, reads):
    """A reload tombstone (raw SQL writes) makes the next check load everything again."""
    assert allows(client)
    with connection.cursor() as cursor:  # raw SQL: no version, no tombstone
        cursor.execute(f"DELETE FROM {AllowedOrigin._meta.db_table}")
    request_reload()
    clock.advance(INTERVAL)
    assert allows(client) is False
    assert reads == {"builds": 2, "checks": 2}


@pytest.mark.django_db
def test_generation_moved_elsewhere_rebuilds(client, entry, clock):
    allows(client)
    first = holder.get()
    Generation.objects.filter(pk=1).update(value=F("value") + 1)
    clock.advance(INTERVAL)
    allows(client)
    assert holder.get() is not first
    assert holder.get().generation == generation()


@pytest.mark.django_db
def test_one_check_per_interval(client, entry, clock, reads):
    allows(client)
    for _ in range(3):
        clock.advance(INTERVAL)
        for _ in range(5):
            allows(client)
    assert reads == {"builds": 1, "checks": 4}


@pytest.mark.django_db
def test_interval_setting_is_read_at_call_time(client, entry, clock, reads, settings):
    allows(client)
    settings.CORSADMIN = {**settings.CORSADMIN, "REFRESH_INTERVAL": 60}
    allows(client)  # the settings change starts afresh with a load
    clock.advance(INTERVAL)
    allows(client)
    assert reads == {"builds": 2, "checks": 2}  # no check 5 s into a 60 s interval


# --- failures during a refresh ---------------------------------------------------

DATABASE_FAILED = (
    "corsadmin: the database (refreshing the CORS allow-list) failed "
    "(OperationalError: database is down); {consequence}"
)
DATABASE_BACK = "corsadmin: the database (refreshing the CORS allow-list) is available again"


def refresh_log(caplog) -> list[str]:
    """What the refresh layer logged at WARNING and above."""
    return [r.getMessage() for r in caplog.records if r.name == "corsadmin" and r.levelno >= logging.WARNING]


@pytest.mark.django_db
@pytest.mark.parametrize("broken", ["update", "load", "database_generation"])
def test_database_failure_keeps_the_last_good_snapshot(client, clock, monkeypatch, broken):
    AllowedOrigin.objects.create(origin=APP)
    assert allows(client)
    request_reload()  # make a full rebuild due (update() -> load() -> database_generation())
    break_database(monkeypatch, broken)
    clock.advance(INTERVAL)
    assert allows(client) is True
    assert allows(client, "https://evil.example.net") is False


@pytest.mark.django_db
@pytest.mark.parametrize("broken", [("load",), ("load", "update"), ("database_generation",)])
def test_database_failure_logs_once(client, clock, monkeypatch, caplog, broken):
    AllowedOrigin.objects.create(origin=APP)
    allows(client)
    request_reload()
    break_database(monkeypatch, *broken)
    with caplog.at_level(logging.INFO, logger="corsadmin"):
        for _ in range(4):
            clock.advance(INTERVAL)
            allows(client)
    assert refresh_log(caplog) == [DATABASE_FAILED.format(consequence="keeping the last good allow-list")]


@pytest.mark.django_db
def test_database_failure_retries_each_interval(client, clock, monkeypatch):
    AllowedOrigin.objects.create(origin=APP)
    allows(client)
    update = SnapshotBuilder.update
    attempts = []

    def failing(self):
        attempts.append(1)
        raise OperationalError("database is down")

    Generation.objects.filter(pk=1).update(value=F("value") + 1)
    monkeypatch.setattr(SnapshotBuilder, "update", failing)
    clock.advance(INTERVAL)
    allows(client)
    allows(client)
    assert len(attempts) == 1
    clock.advance(INTERVAL)
    allows(client)
    assert len(attempts) == 2
    monkeypatch.setattr(SnapshotBuilder, "update", update)
    AllowedOrigin.objects.filter(origin=APP).delete()
    clock.advance(INTERVAL)
    assert allows(client) is False


@pytest.mark.django_db
def test_recovery_is_logged(client, clock, monkeypatch, caplog):
    AllowedOrigin.objects.create(origin=APP)
    allows(client)
    update = SnapshotBuilder.update
    Generation.objects.filter(pk=1).update(value=F("value") + 1)
    monkeypatch.setattr(SnapshotBuilder, "update", fail)
    clock.advance(INTERVAL)
    allows(client)
    monkeypatch.setattr(SnapshotBuilder, "update", update)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="corsadmin"):
        clock.advance(INTERVAL)
        allows(client)
    assert [r.getMessage() for r in caplog.records if r.name == "corsadmin"] == [DATABASE_BACK]


@pytest.mark.django_db
def test_no_snapshot_and_failing_database_refuses_without_500(client, monkeypatch, caplog):
    AllowedOrigin.objects.create(origin=APP)
    break_database(monkeypatch, "load", "update")
    response = client.get(ECHO, headers={"Origin": APP})
    assert response.status_code == 200
    assert cors_headers(response) == {}
    assert refresh_log(caplog) == [DATABASE_FAILED.format(consequence="refusing CORS until it loads")]


@pytest.mark.django_db
def test_no_snapshot_and_failing_database_refuses_preflight_without_500(client, monkeypatch):
    AllowedOrigin.objects.create(origin=APP)
    break_database(monkeypatch, "load")
    response = client.options(ECHO, headers={"Origin": APP, "Access-Control-Request-Method": "PUT"})
    assert response.status_code < 500
    assert cors_headers(response) == {}


@pytest.mark.django_db
def test_first_load_is_retried_after_a_failure(client, clock, monkeypatch):
    AllowedOrigin.objects.create(origin=APP)
    load = SnapshotBuilder.load
    break_database(monkeypatch, "load")
    assert allows(client) is False
    monkeypatch.setattr(SnapshotBuilder, "load", load)
    clock.advance(INTERVAL)
    assert allows(client) is True


@pytest.mark.django_db
def test_failure_state_does_not_leak_past_a_reset(client, monkeypatch, caplog):
    """After ``reset`` (settings changed, or a new test) a failure is logged again."""
    break_database(monkeypatch, "load")
    allows(client)
    holder.reset()
    allows(client)
    assert refresh_log(caplog) == [DATABASE_FAILED.format(consequence="refusing CORS until it loads")] * 2


# --- concurrency inside one process ----------------------------------------------


def test_threads_wait_for_the_first_load(monkeypatch):
    """A request arriving while the first snapshot loads waits for it instead of being refused."""
    loaded = Snapshot([CompiledPolicy(name="default", entries=[(1, APP, float("inf"))])])
    started, release = threading.Event(), threading.Event()

    def slow_update(self):
        started.set()
        assert release.wait(5)
        return loaded

    monkeypatch.setattr(SnapshotBuilder, "update", slow_update)
    results = {}
    first = threading.Thread(target=lambda: results.setdefault("first", holder.get()))
    first.start()
    assert started.wait(5)
    second = threading.Thread(target=lambda: results.setdefault("second", holder.get()))
    second.start()
    second.join(0.1)  # the load is held: the second request must still be waiting for it
    assert second.is_alive()
    release.set()
    first.join(5)
    second.join(5)
    assert results["first"] is loaded
    assert results["second"] is loaded


def test_start_runs_the_refresher_before_any_request(settings, monkeypatch):
    """What a server's worker calls once initialised (project/gunicorn_conf.py)."""
    settings.CORSADMIN = {**settings.CORSADMIN, "REFRESH": "background"}
    ran = threading.Event()
    monkeypatch.setattr(refresher.Refresher, "run", lambda self: ran.set())
    starting = refresh.SnapshotHolder()
    try:
        starting.start()
        assert ran.wait(5)
        assert starting.stats()["background"] is True
    finally:
        starting.reset()


def test_a_first_load_that_failed_is_tried_again_sooner_than_each_interval(settings):
    """Until a first snapshot loads the process refuses CORS: the refresher waits
    FIRST_LOAD_RETRY between tries, then the interval (a shorter interval wins)."""
    settings.CORSADMIN = {**settings.CORSADMIN, "REFRESH_INTERVAL": 5}
    waiting = refresher.Refresher(refresh.SnapshotHolder())
    assert waiting.pause() == refresher.FIRST_LOAD_RETRY
    waiting.builder.generation = 7  # a snapshot loaded (or inherited by a forked worker)
    assert waiting.pause() == 5
    settings.CORSADMIN = {**settings.CORSADMIN, "REFRESH_INTERVAL": 0.1}
    waiting.builder.generation = None
    assert waiting.pause() == 0.1


def test_start_starts_no_thread_in_inline_mode(monkeypatch):
    monkeypatch.setattr(SnapshotBuilder, "update", lambda self: pytest.fail("loaded without a request"))
    inline = refresh.SnapshotHolder()
    inline.start()
    assert inline.stats()["background"] is False


def test_other_threads_answer_from_the_current_snapshot_during_a_rebuild(monkeypatch):
    old = Snapshot([CompiledPolicy(name="old")])
    new = Snapshot([CompiledPolicy(name="new")])
    monkeypatch.setattr(SnapshotBuilder, "update", lambda self: old)
    holder.get()
    started, release = threading.Event(), threading.Event()

    def slow_update(self):
        started.set()
        release.wait(5)
        return new

    monkeypatch.setattr(SnapshotBuilder, "update", slow_update)
    holder.mark_dirty()
    rebuilding = threading.Thread(target=holder.get)
    rebuilding.start()
    assert started.wait(5)
    try:
        assert holder.get() is old
    finally:
        release.set()
        rebuilding.join(5)
    assert holder.get() is new


class CountingCondition(threading.Condition):
    """A condition variable that counts its waits: each is one wake-up of the waiting thread."""

    def __init__(self, lock) -> None:
        super().__init__(lock)
        self.waits = 0
        self.waiting = threading.Event()

    def wait(self, timeout=None):
        self.waits += 1
        self.waiting.set()
        return super().wait(timeout)


def test_a_write_waits_for_its_generation_on_a_condition_not_a_poll(monkeypatch):
    """The writer's wait for its own generation sleeps until the refresher installs it:
    one wake-up per swap, whatever the time it took, and no sleep-based polling."""
    waiting_holder = refresh.SnapshotHolder()
    condition = CountingCondition(waiting_holder._lock)
    waiting_holder._installed = condition
    monkeypatch.setattr(refresh.time, "sleep", lambda seconds: pytest.fail("the wait polled"))
    results = {}
    waiter = threading.Thread(target=lambda: results.setdefault("reached", waiting_holder.wait_for(7, 30)))
    waiter.start()
    assert condition.waiting.wait(5)
    waiter.join(0.2)  # held for a while: a poll would have woken many times by now
    assert waiter.is_alive()
    assert condition.waits == 1
    waiting_holder.confirm(waiting_holder._refresher, Snapshot([], generation=6))  # not yet the one
    condition.waiting.clear()
    assert condition.waiting.wait(5)
    assert waiter.is_alive()
    started = time.monotonic()
    waiting_holder.confirm(waiting_holder._refresher, Snapshot([], generation=7))
    waiter.join(5)
    assert not waiter.is_alive()
    assert time.monotonic() - started < 2  # woken by the swap, not by the 30 s timeout
    assert results["reached"] is True
    assert condition.waits == 2


def test_a_write_wait_keeps_its_timeout():
    waiting_holder = refresh.SnapshotHolder()
    waiting_holder.confirm(waiting_holder._refresher, Snapshot([], generation=3))
    assert waiting_holder.wait_for(3, 0) is True
    assert waiting_holder.wait_for(4, 0) is False
    started = time.monotonic()
    assert waiting_holder.wait_for(4, 0.05) is False
    assert time.monotonic() - started >= 0.05


# --- a shared cache ------------------------------------------------------------
#
# The shared cache carries the generation stamp (``bus.STAMP_KEY``): a process whose
# snapshot has the stamp's generation skips the database, except every
# DATABASE_CHECK_EVERY-th check (a publish lost to a cache failure heals then). The
# first load does not wait for the cache; the check after it reads and fills it.

CHECK_EVERY = 4


@pytest.fixture
def file_cache(settings, tmp_path):
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(tmp_path),
        }
    }
    from django.core.cache import caches

    return caches["default"]


@pytest.fixture
def shared(file_cache, fake_time, settings):
    """The file cache as the shared cache, a fake clock, and an explicit DATABASE_CHECK_EVERY."""
    settings.CORSADMIN = {**settings.CORSADMIN, "DATABASE_CHECK_EVERY": CHECK_EVERY}
    return SimpleNamespace(cache=file_cache, clock=fake_time)


@pytest.mark.parametrize(
    ("backend", "kind"),
    [
        ("django.core.cache.backends.locmem.LocMemCache", type(None)),
        ("django.core.cache.backends.dummy.DummyCache", type(None)),
        ("django.core.cache.backends.filebased.FileBasedCache", bus.CacheBus),
        ("django.core.cache.backends.redis.RedisCache", bus.RedisBus),
    ],
)
def test_only_a_cache_shared_by_processes_is_a_bus(settings, tmp_path, backend, kind):
    location = "redis://127.0.0.1:1/0" if "redis" in backend else str(tmp_path)
    settings.CACHES = {"default": {"BACKEND": backend, "LOCATION": location}}
    assert type(bus.shared_bus()) is kind


@pytest.mark.django_db
def test_commit_publishes_the_generation_to_a_shared_cache(file_cache, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        AllowedOrigin.objects.create(origin=APP)
    assert file_cache.get(bus.STAMP_KEY) == generation()


def warm(client, shared) -> None:
    """Checks 1 and 2: the first load, then the check that publishes its generation."""
    allows(client)
    shared.clock.advance(INTERVAL)
    allows(client)


@pytest.mark.django_db
def test_empty_shared_cache_is_filled_by_the_check_after_the_first_load(client, shared):
    allows(client)
    assert shared.cache.get(bus.STAMP_KEY) is None  # the first load does not wait for the cache
    shared.clock.advance(INTERVAL)
    allows(client)
    assert shared.cache.get(bus.STAMP_KEY) == generation()


@pytest.mark.django_db
def test_unchanged_shared_stamp_skips_the_database(client, entry, shared, django_assert_num_queries):
    warm(client, shared)
    shared.clock.advance(INTERVAL)
    with django_assert_num_queries(0):
        assert allows(client)


@pytest.mark.django_db
def test_database_is_read_every_database_check_every_checks(client, entry, shared, reads):
    warm(client, shared)
    for _ in range(2 * CHECK_EVERY - 2):  # checks 3 .. 2 * CHECK_EVERY
        shared.clock.advance(INTERVAL)
        allows(client)
    # checks 1 (load), 2 (stamp missing), CHECK_EVERY and 2 * CHECK_EVERY (periodic)
    assert reads == {"builds": 1, "checks": 4}


@pytest.mark.django_db
def test_moved_shared_stamp_is_read_from_the_database(client, shared):
    """Another process's write: it published the stamp, so the next check reads the change."""
    warm(client, shared)
    assert allows(client) is False
    AllowedOrigin.objects.create(origin=APP)  # no commit hook here
    shared.cache.set(bus.STAMP_KEY, generation())  # what the writing process published
    shared.clock.advance(INTERVAL)
    assert allows(client) is True


@pytest.mark.django_db
def test_unannounced_change_is_found_at_the_periodic_database_check(client, shared):
    """A write whose publish was lost: the stamp never moves, the database check finds it."""
    warm(client, shared)  # checks 1 and 2
    AllowedOrigin.objects.create(origin=APP)  # no commit hook, no publish
    for _ in range(CHECK_EVERY - 3):  # checks 3 .. CHECK_EVERY - 1: the stamp has not moved
        shared.clock.advance(INTERVAL)
        assert allows(client) is False
    shared.clock.advance(INTERVAL)  # check CHECK_EVERY
    assert allows(client) is True


@pytest.mark.django_db
def test_cache_miss_reads_the_database_and_fills_the_cache(client, entry, shared):
    warm(client, shared)
    bus.shared_bus().forget()  # the stamp expired or was evicted
    shared.clock.advance(INTERVAL)
    assert allows(client)
    assert shared.cache.get(bus.STAMP_KEY) == generation()


@pytest.mark.django_db
def test_stamp_behind_this_process_is_put_forward(client, entry, shared):
    """A stamp set back (two writers' publishes crossing in a cache without compare-and-set)
    is mended by the next check of a process that holds a newer generation."""
    warm(client, shared)
    shared.cache.set(bus.STAMP_KEY, generation() - 1)
    shared.clock.advance(INTERVAL)
    allows(client)
    assert shared.cache.get(bus.STAMP_KEY) == generation()


def test_publish_only_moves_the_stamp_forward(file_cache):
    shared = bus.shared_bus()
    shared.publish(7)
    shared.publish(6)
    assert (shared.read(), file_cache.get(bus.STAMP_KEY)) == (7, 7)


@pytest.mark.django_db
def test_broken_cache_falls_back_to_the_database(client, shared, monkeypatch):
    monkeypatch.setattr(type(shared.cache), "get", fail)
    assert allows(client) is False
    AllowedOrigin.objects.create(origin=APP)  # another process's write
    shared.clock.advance(INTERVAL)
    assert allows(client) is True


@pytest.mark.django_db
def test_local_memory_cache_is_not_trusted_across_processes(client, clock, reads, django_assert_num_queries):
    """No bus: every check after the interval asks the database (one query when nothing moved)."""
    allows(client)
    assert bus.shared_bus() is None
    clock.advance(INTERVAL)
    with django_assert_num_queries(1):
        allows(client)
    assert reads == {"builds": 1, "checks": 2}


# --- two server processes ----------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _origin_allowed(port: int, origin: str) -> bool | None:
    """Whether the server answers ``origin`` with an allow; None when it is not up."""
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        conn.request("GET", ECHO, headers={"Origin": origin})
        response = conn.getresponse()
        response.read()
        conn.close()
    except OSError:
        return None
    assert response.status == 200, response.status
    return response.getheader("Access-Control-Allow-Origin") == origin


def test_two_processes_converge_within_the_interval(tmp_path):
    interval = 1.0
    origin = "https://two-processes.example.com"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "project.settings",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'shared.sqlite3'}",
        "CORSADMIN_VAR_DIR": str(tmp_path / "var"),
        "CORSADMIN_REFRESH_INTERVAL": str(interval),
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("REDIS_URL", None)
    manage = [sys.executable, str(BASE_DIR / "manage.py")]
    subprocess.run(
        [*manage, "migrate", "--noinput", "-v", "0"], env=env, cwd=BASE_DIR, check=True, timeout=120
    )

    ports = [_free_port(), _free_port()]
    logs = [open(tmp_path / f"server-{port}.log", "wb") for port in ports]  # noqa: SIM115
    servers = [
        subprocess.Popen(
            [*manage, "runserver", "--noreload", "--skip-checks", f"127.0.0.1:{port}"],
            env=env,
            cwd=BASE_DIR,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        for port, log in zip(ports, logs, strict=True)
    ]
    try:
        deadline = time.monotonic() + 60
        for port in ports:
            while _origin_allowed(port, origin) is None:
                assert time.monotonic() < deadline, "server did not start"
                assert all(server.poll() is None for server in servers), "server exited"
                time.sleep(0.1)
        # Both processes hold a snapshot without the origin.
        assert [_origin_allowed(port, origin) for port in ports] == [False, False]
        assert len({server.pid for server in servers} | {os.getpid()}) == 3

        script = (
            "import time\n"
            "from corsadmin.models import AllowedOrigin\n"
            f"AllowedOrigin.objects.create(origin={origin!r})\n"
            "print(time.time())\n"
        )
        added = subprocess.run(
            [*manage, "shell", "-c", script],
            env=env,
            cwd=BASE_DIR,
            check=True,
            capture_output=True,
            text=True,
            timeout=60,
        )
        committed_at = float(added.stdout.strip().splitlines()[-1])

        seen: dict[int, float] = {}
        limit = committed_at + interval + 1
        while len(seen) < len(ports) and time.time() < limit + 1:
            for port in ports:
                if port not in seen and _origin_allowed(port, origin):
                    seen[port] = time.time() - committed_at
            time.sleep(0.02)
        print(
            f"\ntwo processes: allowed after {', '.join(f'{t:.3f}s' for t in seen.values())}"
            f" (interval {interval}s)"
        )
        assert sorted(seen) == sorted(ports), f"not allowed by every process: {seen}"
        assert max(seen.values()) <= interval + 1
    finally:
        for server in servers:
            server.terminate()
        for server in servers:
            try:
                server.wait(10)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait(10)
        for log in logs:
            log.close()


# --- the invariant: only a snapshot confirmed in this process is served ---------------


def elsewhere(monkeypatch) -> None:
    """Writes from now on are as if made by another process: this one hears nothing."""
    monkeypatch.setattr(holder, "committed", lambda generation: None)


@pytest.mark.django_db
def test_a_forked_worker_confirms_its_inherited_snapshot_before_serving_it(client, clock, reads, monkeypatch):
    entry = AllowedOrigin.objects.create(origin=APP)
    assert allows(client)  # the parent's snapshot allows APP
    elsewhere(monkeypatch)
    entry.delete()  # revoked; the parent has not refreshed since
    holder._forked()  # what a worker forked now runs first
    builds = reads["builds"]
    assert allows(client) is False  # the inherited snapshot was never served
    assert reads["builds"] == builds  # caught up incrementally, not from scratch


@pytest.mark.django_db
def test_a_forked_worker_serves_its_inherited_snapshot_once_nothing_changed(client, clock, reads):
    AllowedOrigin.objects.create(origin=APP)
    assert allows(client)
    holder._forked()
    assert holder.peek().generation is None  # not confirmed yet: nothing served
    assert allows(client) is True
    assert (reads["builds"], holder.stats()["updates"]) == (1, 0)  # one check, nothing rebuilt


@pytest.mark.django_db
def test_a_forked_worker_that_cannot_confirm_fails_closed_until_it_can(client, clock, monkeypatch):
    AllowedOrigin.objects.create(origin=APP)
    assert allows(client)
    update = SnapshotBuilder.update
    break_database(monkeypatch, "update")
    holder._forked()
    assert allows(client) is False  # as a cold start: only the CORS_* settings policy
    monkeypatch.setattr(SnapshotBuilder, "update", update)
    clock.advance(INTERVAL)
    assert allows(client) is True


# --- MAX_STALENESS ----------------------------------------------------------------------

STALE_AFTER = 12.0


@pytest.fixture
def max_staleness(clock, settings):
    settings.CORSADMIN = {**settings.CORSADMIN, "MAX_STALENESS": STALE_AFTER}
    return clock


@pytest.mark.django_db
def test_a_snapshot_unconfirmed_for_longer_than_max_staleness_fails_closed(
    client, max_staleness, monkeypatch, caplog
):
    AllowedOrigin.objects.create(origin=APP)
    assert allows(client)
    update = SnapshotBuilder.update
    break_database(monkeypatch, "update")
    with caplog.at_level(logging.WARNING, logger="corsadmin"):
        max_staleness.advance(INTERVAL)
        assert allows(client) is True  # 5 s unconfirmed: still served
        max_staleness.advance(INTERVAL)
        assert allows(client) is True  # 10 s
        max_staleness.advance(INTERVAL)
        assert allows(client) is False  # 15 s > 12 s: as a cold start
        max_staleness.advance(INTERVAL)
        assert allows(client) is False
        stale = [m for m in refresh_log(caplog) if "MAX_STALENESS" in m]
        assert len(stale) == 1
        monkeypatch.setattr(SnapshotBuilder, "update", update)
        max_staleness.advance(INTERVAL)
        assert allows(client) is True
    assert refresh_log(caplog)[-2:] == [
        DATABASE_BACK,
        "corsadmin: the CORS allow-list is confirmed against the database again",
    ]


@pytest.mark.django_db
def test_max_staleness_is_off_by_default(client, clock, monkeypatch):
    AllowedOrigin.objects.create(origin=APP)
    assert allows(client)
    break_database(monkeypatch, "update")
    clock.advance(3600)
    assert allows(client) is True  # the last good snapshot, however old


def test_a_stale_snapshot_costs_the_request_path_no_lock(monkeypatch, settings):
    """Background mode, a snapshot past MAX_STALENESS: get() answers without taking a lock."""
    settings.CORSADMIN = {**settings.CORSADMIN, "REFRESH": "background", "MAX_STALENESS": 1}
    loaded = Snapshot([CompiledPolicy(name="default", entries=[(1, APP, float("inf"))])], generation=1)
    holder._snapshot, holder._running, holder._fresh_until = loaded, True, time.monotonic() - 1
    held = holder._lock
    held.acquire()
    try:
        finished = []
        thread = threading.Thread(target=lambda: finished.append(holder.get()), daemon=True)
        thread.start()
        thread.join(5)
        assert finished and finished[0] is not loaded  # the settings-only fallback
    finally:
        held.release()
        holder._running = False


# --- what the holder reports ---------------------------------------------------------------


@pytest.mark.django_db
def test_stats_say_when_the_database_last_confirmed_and_the_last_error(client, clock, monkeypatch):
    assert holder.stats()["confirmed_at"] is None
    before = time.time()
    AllowedOrigin.objects.create(origin=APP)
    allows(client)
    stats = holder.stats()
    assert before <= stats["confirmed_at"] <= time.time()
    assert stats["last_error"] is None
    update = SnapshotBuilder.update
    break_database(monkeypatch, "update")
    clock.advance(INTERVAL)
    allows(client)
    assert holder.stats()["last_error"] == "OperationalError: database is down"
    assert holder.stats()["confirmed_at"] == stats["confirmed_at"]
    monkeypatch.setattr(SnapshotBuilder, "update", update)
    clock.advance(INTERVAL)
    allows(client)
    assert holder.stats()["last_error"] is None
    assert holder.stats()["confirmed_at"] > stats["confirmed_at"]


@pytest.mark.django_db
def test_cycle_done_is_sent_after_each_refresh(client, clock):
    from corsadmin.signals import cycle_done

    heard = []

    def receiver(holder, **kwargs):
        heard.append(holder)

    cycle_done.connect(receiver)
    try:
        allows(client)
        clock.advance(INTERVAL)
        allows(client)
        allows(client)  # within the interval: no cycle
    finally:
        cycle_done.disconnect(receiver)
    assert heard == [holder, holder]


@pytest.mark.django_db
def test_a_row_written_around_validation_never_freezes_the_allow_list(client, clock, caplog):
    from django.db import models

    from corsadmin.models import next_generation

    default = Policy.objects.get_or_create(name="default", defaults={"url_regex": "^/"})[0]
    bad = Policy.objects.create(name="bad", url_regex="^/bad/")
    entry = AllowedOrigin.objects.create(origin=APP, policy=default)
    assert allows(client)
    with transaction.atomic():  # raw SQL, or QuerySet.update as it was: no validation
        models.QuerySet(Policy).filter(pk=bad.pk).update(
            url_regex="^/(?=a)a{99999999999}", version=next_generation("default")
        )
    clock.advance(INTERVAL)
    with caplog.at_level(logging.WARNING, logger="corsadmin"):
        assert allows(client)
    expected = (
        "corsadmin: ignoring policy bad, it cannot be compiled (OverflowError: the repetition number is "
        "too large); fix or delete it"
    )
    assert refresh_log(caplog) == [expected]  # and the database is not blamed
    entry.delete()
    AllowedOrigin.objects.create(origin="https://other.example.com", policy=default)
    clock.advance(INTERVAL)
    assert (allows(client), allows(client, "https://other.example.com")) == (False, True)


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, []), (60, []), (5, ["corsadmin.W010"]), (0, ["corsadmin.E015"]), ("60", ["corsadmin.E015"])],
)
def test_max_staleness_is_checked(settings, value, expected):
    from corsadmin.checks import check_settings_types  # not run_checks(): model checks read the database

    settings.CORSADMIN = {**settings.CORSADMIN, "REFRESH_INTERVAL": 1, "MAX_STALENESS": value}
    found = [m.id for m in check_settings_types() if m.id in ("corsadmin.W010", "corsadmin.E015")]
    assert found == expected
