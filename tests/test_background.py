"""The background refresher: requests never wait for it, whatever the services do.

These tests run the real refresher thread (``REFRESH = "background"``); their data is
committed (``transaction=True``) so the refresher's own connection sees it.
"""

from __future__ import annotations

import socket
import threading
import time

import pytest
from django.db import OperationalError

from corsadmin import loader
from corsadmin.models import AllowedOrigin
from corsadmin.refresh import holder

from .cors_helpers import APP, ECHO, cors_headers

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)

OTHER = "https://other.example.com"


@pytest.fixture
def background(settings):
    settings.CORSADMIN = {
        **settings.CORSADMIN,
        "REFRESH": "background",
        "REFRESH_INTERVAL": 0.05,
        "FIRST_LOAD_TIMEOUT": 5.0,
    }
    holder.reset()
    yield settings
    holder.reset()
    # The stopped refreshers end their cycle first: one still in a query would hold SQLite's
    # table lock while the test's database is flushed ("database table is locked").
    for thread in threading.enumerate():
        if thread.name == "corsadmin-refresher":
            thread.join(10)


def allowed(client, origin: str = APP) -> bool:
    return client.get(ECHO, headers={"Origin": origin}).get("Access-Control-Allow-Origin") == origin


def eventually(predicate, seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return False


def in_thread(function, timeout: float) -> tuple[bool, list]:
    """Run ``function`` in a thread; whether it finished within ``timeout``, and its result."""
    result: list = []
    thread = threading.Thread(target=lambda: result.append(function()), daemon=True)
    thread.start()
    thread.join(timeout)
    return not thread.is_alive(), result


class Gate:
    """Hold a function of the refresher until released (a refresher that blocks)."""

    def __init__(self, monkeypatch, owner, name: str) -> None:
        self.entered, self.release = threading.Event(), threading.Event()
        original = getattr(owner, name)

        def held(*args, **kwargs):
            if threading.current_thread().name == "corsadmin-refresher":
                self.entered.set()
                self.release.wait(30)
            return original(*args, **kwargs)

        monkeypatch.setattr(owner, name, held)


def test_a_change_made_in_this_process_is_honoured_at_once(client, background):
    assert not allowed(client)
    AllowedOrigin.objects.create(origin=APP)
    assert allowed(client)


def test_a_change_made_elsewhere_arrives_by_polling(client, background, monkeypatch):
    assert not allowed(client)
    monkeypatch.setattr(holder, "committed", lambda generation: None)  # as if another process wrote
    AllowedOrigin.objects.create(origin=APP)
    assert eventually(lambda: allowed(client))


def test_requests_are_answered_from_the_old_snapshot_while_the_refresher_is_held(
    client, background, monkeypatch, django_assert_num_queries
):
    AllowedOrigin.objects.create(origin=APP)
    assert allowed(client)
    gate = Gate(monkeypatch, loader.SnapshotBuilder, "update")
    assert gate.entered.wait(10)
    monkeypatch.setattr(holder, "committed", lambda generation: None)
    AllowedOrigin.objects.create(origin=OTHER)
    try:
        with django_assert_num_queries(0):
            answers = [allowed(client) for _ in range(50)] + [allowed(client, OTHER) for _ in range(50)]
        assert answers == [True] * 50 + [False] * 50
    finally:
        gate.release.set()
    assert eventually(lambda: allowed(client, OTHER))


def test_cold_start_waits_a_bounded_time_then_refuses(client, background, monkeypatch):
    background.CORSADMIN = {**background.CORSADMIN, "FIRST_LOAD_TIMEOUT": 0.2}
    AllowedOrigin.objects.create(origin=APP)
    holder.reset()
    gate = Gate(monkeypatch, loader.SnapshotBuilder, "load")
    try:
        finished, [response] = in_thread(lambda: client.get(ECHO, headers={"Origin": APP}), 10)
        assert finished and gate.entered.is_set()
        assert (response.status_code, cors_headers(response)) == (200, {})
        assert not allowed(client)  # no second wait: still refused at once
    finally:
        gate.release.set()
    assert eventually(lambda: allowed(client))


def hanging_server() -> socket.socket:
    """Accepts connections and never answers (a Redis or PostgreSQL that hangs)."""
    return socket.create_server(("127.0.0.1", 0), backlog=64)


def test_a_hanging_redis_never_delays_a_request(client, background, django_assert_num_queries):
    AllowedOrigin.objects.create(origin=APP)
    with hanging_server() as hung:
        background.CORSADMIN = {**background.CORSADMIN, "SERVICE_TIMEOUT": 30}
        background.CACHES = {
            **background.CACHES,
            "default": {
                "BACKEND": "django.core.cache.backends.redis.RedisCache",
                "LOCATION": f"redis://127.0.0.1:{hung.getsockname()[1]}/0",
            },
        }
        allowed(client)  # starts the refresher: it connects and waits for an answer (30 s)

        def many_requests():
            with django_assert_num_queries(0):
                return [allowed(client) for _ in range(50)]

        finished, answers = in_thread(many_requests, 10)
        assert finished, "a request waited for the hanging cache"
        assert answers in ([[True] * 50], [[False] * 50])


def test_a_hanging_database_never_delays_a_request(client, background, monkeypatch):
    AllowedOrigin.objects.create(origin=APP)
    assert allowed(client)
    gate = Gate(monkeypatch, loader.SnapshotBuilder, "update")  # a query that never returns
    assert gate.entered.wait(10)
    try:
        finished, answers = in_thread(lambda: [allowed(client) for _ in range(50)], 10)
        assert finished and answers == [[True] * 50]
    finally:
        gate.release.set()


def test_a_preloaded_snapshot_is_served_by_forked_workers_without_a_full_load(client, background):
    AllowedOrigin.objects.create(origin=APP)
    holder.preload()  # as gunicorn --preload's master does before forking
    holder._forked()  # what a forked worker runs first
    assert allowed(client)  # at once: no first load to wait for
    AllowedOrigin.objects.create(origin=OTHER)
    assert allowed(client, OTHER)
    assert holder.stats()["full_loads"] == 1  # the master's; the worker only applied the change


def test_a_forked_worker_that_cannot_confirm_waits_once_then_refuses_until_it_can(
    client, background, monkeypatch
):
    background.CORSADMIN = {**background.CORSADMIN, "FIRST_LOAD_TIMEOUT": 0.2}
    AllowedOrigin.objects.create(origin=APP)
    holder.preload()  # the master's snapshot allows APP
    holder._forked()
    update = loader.SnapshotBuilder.update

    def down(self):
        raise OperationalError("database is down")

    monkeypatch.setattr(loader.SnapshotBuilder, "update", down)
    started = time.monotonic()
    assert not allowed(client)  # waited for the refresher's first try, then refused
    assert time.monotonic() - started < 5
    assert not allowed(client)
    monkeypatch.setattr(loader.SnapshotBuilder, "update", update)
    assert eventually(lambda: allowed(client))
