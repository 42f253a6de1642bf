"""Every read of the refresher has a deadline, the first after a (re)connect included, and
the refresher reads where the routers send reads.

PostgreSQL only (``services``): the reads go through a router to a second alias, which
reaches the test database through a loopback proxy (tests/proxy.py) that the test makes
hang (it accepts connections and reads what is sent, and never answers) from the start,
and again after the service came back.
"""

from __future__ import annotations

import time

import pytest
from django.db import connection, connections
from django.db.backends.base.base import BaseDatabaseWrapper

from corsadmin import refresher as refresh
from corsadmin.models import AllowedOrigin, Policy
from corsadmin.refresh import holder

from .proxy import Proxy

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]

APP = "https://app.example.com"
OTHER = "https://other.example.com"
THIRD = "https://third.example.com"
TIMEOUT = 1.0  # SERVICE_TIMEOUT
BOUND = 3 * TIMEOUT  # an error within this of the hang (without a deadline: TCP's ~2 h)
REPLICA = "replica"


class ReadReplica:
    """Reads of corsadmin's tables go to the replica alias; writes to the default one."""

    def db_for_read(self, model, **hints):
        return REPLICA if model._meta.app_label == "corsadmin" else None

    def db_for_write(self, model, **hints):
        return "default"

    def allow_relation(self, *args, **hints):
        return True

    def allow_migrate(self, db, *args, **hints):
        return db == "default"


@pytest.fixture
def replica(settings, monkeypatch, django_db_blocker):
    """The replica alias: the test database through a proxy; reads routed to it. (Django's
    test case refuses connections to aliases it was not told of: the replica's are allowed;
    no NOTIFY listener: the pushes are this process's commits.)"""
    if connection.vendor != "postgresql":
        pytest.fail("needs DATABASE_URL (PostgreSQL): see tests/e2e.py")
    primary = connections["default"].settings_dict
    proxy = Proxy(primary.get("HOST") or "127.0.0.1", int(primary.get("PORT") or 5432))
    connections.settings[REPLICA] = {**primary, "HOST": "127.0.0.1", "PORT": str(proxy.port), "OPTIONS": {}}
    guarded = BaseDatabaseWrapper.ensure_connection
    real = django_db_blocker._real_ensure_connection  # neither pytest-django's nor Django's guard

    def ensure_connection(self, *args, **kwargs):
        return (real if self.alias == REPLICA else guarded)(self, *args, **kwargs)

    monkeypatch.setattr(BaseDatabaseWrapper, "ensure_connection", ensure_connection)
    monkeypatch.setattr(refresh, "database_channel", lambda alias: None)
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    settings.CORSADMIN = {
        **settings.CORSADMIN,
        "REFRESH": "background",
        "REFRESH_INTERVAL": 60,  # only a push (a commit here, a NOTIFY) wakes the refresher early
        "SERVICE_TIMEOUT": TIMEOUT,
        "FIRST_LOAD_TIMEOUT": 0.2,
    }
    yield proxy
    holder.reset()
    settings.DATABASE_ROUTERS = []
    proxy.close()
    del connections.settings[REPLICA]


def route_reads(settings) -> None:
    settings.DATABASE_ROUTERS = [f"{__name__}.ReadReplica"]
    holder.reset()


def allowed(origin: str) -> bool:
    return bool(holder.get().policy_allows("default", origin))


def until(predicate, seconds: float, started: float | None = None) -> float | None:
    """Seconds from ``started`` (default: now) until ``predicate()`` held (polled), None if it
    did not within ``seconds``."""
    started = time.monotonic() if started is None else started
    while time.monotonic() - started < seconds:
        if predicate():
            return time.monotonic() - started
        time.sleep(0.01)
    return None


def failed() -> bool:
    return holder.stats()["last_error"] is not None


def test_a_database_that_accepts_and_never_answers_costs_the_refresher_service_timeout(
    replica, settings, report_line
):
    default = Policy.objects.get_or_create(name="default", defaults={"url_regex": "^/"})[0]
    replica.hang()  # from the start: the first connect never completes its handshake
    route_reads(settings)
    assert allowed(APP) is False  # starts the refresher; a cold start refuses after 0.2 s
    cold = until(failed, 30)
    assert cold is not None and cold <= BOUND, cold

    replica.up()  # the service is back: a push is honoured at once
    since = time.monotonic()
    AllowedOrigin.objects.create(origin=APP, policy=default)  # waits for it (bounded)
    back = until(lambda: allowed(APP), 10, since)
    assert back is not None and back <= BOUND, back
    assert holder.stats()["last_error"] is None

    replica.hang()  # with the connection open: its next read hangs
    since = time.monotonic()
    AllowedOrigin.objects.create(origin=OTHER, policy=default)
    open_read = until(failed, 30, since)
    assert open_read is not None and open_read <= BOUND, open_read

    # After that failure the refresher reconnects: into the hang again, at the next push.
    AllowedOrigin.objects.create(origin=THIRD, policy=default)
    time.sleep(TIMEOUT / 2)
    replica.up()
    since = time.monotonic()
    AllowedOrigin.objects.create(origin="https://fourth.example.com", policy=default)
    last = until(lambda: allowed(THIRD) and allowed("https://fourth.example.com"), 10, since)
    assert last is not None and last <= 2 * BOUND, last
    assert allowed(OTHER) is True
    report_line(
        f"hanging database: cold start error after {cold:.2f} s, open connection's error after "
        f"{open_read:.2f} s (SERVICE_TIMEOUT {TIMEOUT} s); pushes honoured {back:.2f} s / {last:.2f} s "
        "after the service returned"
    )


def test_the_refresher_reads_where_the_routers_send_reads(replica, settings):
    default = Policy.objects.get_or_create(name="default", defaults={"url_regex": "^/"})[0]
    AllowedOrigin.objects.create(origin=APP, policy=default)
    route_reads(settings)
    replica.down()  # the replica refuses: the primary alone must not be read
    assert allowed(APP) is False
    assert until(failed, 10) is not None
    replica.up()
    AllowedOrigin.objects.create(origin=OTHER, policy=default)  # a push
    assert until(lambda: allowed(APP) and allowed(OTHER), 10) is not None
    assert replica.accepted >= 1
