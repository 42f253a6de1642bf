"""Fixtures shared by the whole suite: a fresh snapshot, throttles and telemetry per test,
the API's users and clients, the production tests' deployment."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.cache import caches
from django.core.cache.backends.locmem import LocMemCache
from rest_framework.test import APIClient

from corsadmin import bus, conf
from corsadmin.api.auth_failures import failures
from corsadmin.api.throttles import CorsAdminThrottle
from corsadmin.refresh import holder
from corsadmin.telemetry import recorder

from .api_fixtures import MODELS, make_user, token_client
from .e2e import deployment, report_line, start_server  # noqa: F401  (fixtures of the production tests)


def forget_shared_generation():
    """With REDIS_URL set the cache outlives each test's rolled-back database: drop its stamp."""
    try:
        shared = bus.shared_bus()
        if shared is not None:
            shared.forget()
    except Exception:  # noqa: BLE001, S110  (a cache that does not answer has no stamp to drop)
        pass


@pytest.fixture(autouse=True)
def fresh_snapshot():
    """Each test starts with no snapshot, so its first request loads the test's data."""
    holder.reset()
    forget_shared_generation()
    yield
    holder.reset()


@pytest.fixture(autouse=True)
def fresh_throttles():
    """The API's throttle counts live in the cache, which outlives each test, and user ids
    repeat once a test's rows are rolled back: an earlier test's requests must not count
    against this one's. The local-memory cache only (a Redis database may also hold a
    running deployment's keys; counts there last a minute)."""
    cache = caches[conf.cache_alias()]
    if isinstance(cache, LocMemCache):
        cache.clear()
    failures.clear()  # failed token authentications, counted in memory
    CorsAdminThrottle.breaker.ok()  # and no back-off left by a test whose cache failed


@pytest.fixture(autouse=True)
def manual_telemetry():
    """Each test starts and ends with no refused-origin telemetry in memory (tests/settings.py
    flushes it by hand: no background writer)."""
    recorder._take()
    yield
    recorder._take()


@pytest.fixture
def long_interval(settings):
    """Only invalidation, not the interval, can make a change visible."""
    settings.CORSADMIN = {**settings.CORSADMIN, "REFRESH_INTERVAL": 3600}


def pytest_collection_modifyitems(items):
    """Tests that start servers on PostgreSQL + Redis carry the ``services`` marker."""
    for item in items:
        if "deployment" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.services)


@pytest.fixture
def in_process_wsgi():
    """Call the WSGI application directly, as Django's test client does: without closing
    the test's database connection at the end of each request (PostgreSQL would lose the
    test's transaction; SQLite ignores it)."""
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections

    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


# --- the API's users and clients (tests/api_fixtures.py) ---------------------------


@pytest.fixture
def admin_user_(db: Any) -> User:
    return User.objects.create_superuser("root", password="pw-root")


@pytest.fixture
def reader(db: Any) -> User:
    return make_user("reader", *(f"view_{m}" for m in MODELS))


@pytest.fixture
def nobody(db: Any) -> User:
    return make_user("nobody")


@pytest.fixture
def full(db: Any) -> User:
    return make_user("operator", *(f"{a}_{m}" for a in ("view", "add", "change", "delete") for m in MODELS))


@pytest.fixture
def reader_client(reader: User) -> APIClient:
    return token_client(reader)


@pytest.fixture
def nobody_client(nobody: User) -> APIClient:
    return token_client(nobody)


@pytest.fixture
def full_client(full: User) -> APIClient:
    return token_client(full)


@pytest.fixture
def anon_client() -> APIClient:
    return APIClient()
