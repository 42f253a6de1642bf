"""Traffic per concrete origin: counted in memory by the middleware (allowed requests) and
by the refusal count it already makes, written by the flush, bounded and pruned."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from django.http import HttpResponse
from django.test import RequestFactory

from corsadmin import refusals, telemetry, traffic, usage
from corsadmin.middleware import CorsMiddleware
from corsadmin.models import AllowedOrigin, OriginTraffic, Policy

from .cors_helpers import APP, ECHO
from .test_usage import FakeClock

pytestmark = pytest.mark.django_db

EVIL = "https://evil.example.net"
T0 = datetime(2026, 11, 26, 10, 15, tzinfo=UTC).timestamp()
DAY = 86400


@pytest.fixture(autouse=True)
def fresh_traffic(monkeypatch):
    monkeypatch.setattr(traffic, "_days", {})
    monkeypatch.setattr(traffic, "_day_end", 0.0)
    monkeypatch.setattr(traffic, "_pruned_at", None)
    monkeypatch.setattr(traffic, "dropped", 0)


@pytest.fixture
def clock(monkeypatch):
    fake = FakeClock(T0)
    monkeypatch.setattr(usage, "clock", fake)
    monkeypatch.setattr(telemetry, "clock", fake)  # refusals' times are telemetry's
    return fake


@pytest.fixture
def entry(db):
    return AllowedOrigin.objects.create(origin=APP, policy=Policy.objects.get(name="default"))


def rows() -> list[tuple]:
    return sorted(
        OriginTraffic.objects.values_list(
            "origin", "path_prefix", "host", "day", "requests", "last_seen", "path"
        )
    )


def at(t: float) -> datetime:
    return datetime.fromtimestamp(t, UTC)


def test_allowed_and_refused_requests_are_written_per_origin_prefix_and_host(client, entry, clock):
    client.get("/demo/echo/", HTTP_ORIGIN=APP, HTTP_HOST="site.example.com")
    client.get("/demo/echo/?x=1", HTTP_ORIGIN=APP, HTTP_HOST="site.example.com:8000")
    client.get("/demo/error-free/", HTTP_ORIGIN=EVIL, HTTP_HOST="site.example.com")
    assert traffic.flush() == 2
    day = date(2026, 11, 26)
    assert rows() == [
        (APP, "/demo/", "site.example.com", day, 2, at(T0), "/demo/echo/"),
        (EVIL, "/demo/", "site.example.com", day, 1, at(T0), "/demo/error-free/"),
    ]


def test_flushes_of_several_processes_add_up(client, entry, clock):
    client.get(ECHO, HTTP_ORIGIN=APP)
    traffic.flush()
    clock.at = T0 + 60
    client.get(ECHO, HTTP_ORIGIN=APP)
    traffic.flush()
    assert [(r[0], r[4], r[5]) for r in rows()] == [(APP, 2, at(T0 + 60))]


def test_a_host_django_refuses_is_kept_as_unknown(client, entry, clock, settings):
    settings.ALLOWED_HOSTS = ["site.example.com", "testserver"]
    client.get(ECHO, HTTP_ORIGIN=APP, HTTP_HOST="site.example.com")
    traffic.add(APP, ECHO, "attacker.example", 1, T0)  # as a refusal with a forged Host would be
    traffic.flush()
    assert [(r[2], r[4]) for r in rows()] == [("", 1), ("site.example.com", 1)]


def test_days_are_separate_rows(client, entry, clock):
    client.get(ECHO, HTTP_ORIGIN=APP)
    clock.at = T0 + DAY
    client.get(ECHO, HTTP_ORIGIN=APP)
    traffic.flush()
    assert [(r[3], r[4]) for r in rows()] == [(date(2026, 11, 26), 1), (date(2026, 11, 27), 1)]


def test_memory_is_bounded_by_traffic_max_keys(client, entry, clock, settings):
    settings.CORSADMIN = {**settings.CORSADMIN, "TRAFFIC_MAX_KEYS": 2}
    for n in range(3):
        client.get(f"/p{n}/", HTTP_ORIGIN=APP)
    client.get("/p0/", HTTP_ORIGIN=APP)  # a key already held is still counted
    assert sum(len(keys) for keys in traffic._days.values()) == 2
    assert traffic.dropped == 1
    traffic.flush()
    assert [(r[1], r[4]) for r in rows()] == [("/p0/", 2), ("/p1/", 1)]


def test_the_table_is_bounded_by_traffic_max_rows_least_recent_first(client, entry, clock, settings):
    settings.CORSADMIN = {**settings.CORSADMIN, "TRAFFIC_MAX_ROWS": 2}
    for n in range(3):
        clock.at = T0 + n
        client.get(f"/p{n}/", HTTP_ORIGIN=APP)
    traffic.flush()
    assert [r[1] for r in rows()] == ["/p1/", "/p2/"]


def test_days_older_than_the_retention_are_pruned(client, entry, clock, settings):
    settings.CORSADMIN = {**settings.CORSADMIN, "USAGE_RETENTION_DAYS": 2}
    client.get(ECHO, HTTP_ORIGIN=APP)
    traffic.flush()
    clock.at = T0 + 3 * DAY
    client.get(ECHO, HTTP_ORIGIN=EVIL)
    traffic.flush()  # its prune is due: more than PRUNE_EVERY since the last
    assert [(r[0], r[3]) for r in rows()] == [(EVIL, date(2026, 11, 29))]


def test_off_counts_nothing(client, entry, clock, settings):
    settings.CORSADMIN = {**settings.CORSADMIN, "TRAFFIC": False}
    client.get(ECHO, HTTP_ORIGIN=APP)
    client.get(ECHO, HTTP_ORIGIN=EVIL)
    traffic.flush()
    assert rows() == []


def test_a_refusal_is_the_one_count_refusals_makes(client, entry, clock):
    client.get(ECHO, HTTP_ORIGIN=EVIL)
    assert traffic._days == {}  # counted once, in corsadmin.refusals
    assert [key[0] for counts in refusals._hours.values() for key in counts] == [EVIL]
    traffic.flush()
    assert [(r[0], r[4]) for r in rows()] == [(EVIL, 1)]


def test_the_request_path_makes_no_query(entry, clock, django_assert_num_queries):
    middleware = CorsMiddleware(lambda request: HttpResponse("ok"))
    factory = RequestFactory()
    middleware(factory.get(ECHO, HTTP_ORIGIN=APP))  # loads the snapshot (inline refresh)
    with django_assert_num_queries(0):
        middleware(factory.get(ECHO, HTTP_ORIGIN=APP))
        middleware(factory.get(ECHO, HTTP_ORIGIN=EVIL))
    assert sum(n for counts in traffic._days.values() for n, _, _ in counts.values()) == 2


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
async def test_the_async_path_counts_the_same(async_client, clock):
    from asgiref.sync import sync_to_async

    await sync_to_async(AllowedOrigin.objects.create)(origin=APP)
    await async_client.get(ECHO, headers={"Origin": APP})
    assert traffic._days == {int(T0) // DAY: {(APP, "/demo/", "testserver"): [1, T0, ECHO]}}
