"""Refused-origin rows are bounded: a cap on rows and a retention, least recently seen go first."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.utils import timezone

from corsadmin.models import RefusedOrigin
from corsadmin.telemetry import recorder

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def prune_due():
    """The retention prune runs at most every few minutes per process: due at each test's start."""
    recorder._pruned_at = None


def row(origin: str, days_ago: float, count: int = 1, **fields) -> RefusedOrigin:
    seen = timezone.now() - timedelta(days=days_ago)
    return RefusedOrigin.objects.create(
        origin=origin, path_prefix="/", count=count, first_seen=seen, last_seen=seen, **fields
    )


def stored() -> dict[str, int]:
    return dict(RefusedOrigin.objects.values_list("origin", "count"))


def test_rows_beyond_the_cap_are_the_least_recently_seen_and_go(settings):
    settings.CORSADMIN = {**settings.CORSADMIN, "REFUSED_MAX_ROWS": 3}
    row("https://oldest.example", 3)
    row("https://older.example", 2)
    row("https://old.example", 1)
    recorder.record("https://new.example", "/")
    recorder.flush()
    assert stored() == {"https://older.example": 1, "https://old.example": 1, "https://new.example": 1}


def test_a_known_origin_keeps_counting_at_the_cap(settings):
    settings.CORSADMIN = {**settings.CORSADMIN, "REFUSED_MAX_ROWS": 2}
    row("https://a.example", 2)
    row("https://b.example", 1)
    recorder.record("https://a.example", "/")
    recorder.flush()
    assert stored() == {"https://a.example": 2, "https://b.example": 1}


def test_the_default_cap_is_1000_rows():
    seen = timezone.now() - timedelta(hours=1)
    RefusedOrigin.objects.bulk_create(
        RefusedOrigin(
            origin=f"https://o{i}.example", path_prefix="/", count=1, first_seen=seen, last_seen=seen
        )
        for i in range(1000)
    )
    recorder.record("https://new.example", "/")
    recorder.flush()
    assert RefusedOrigin.objects.count() == 1000
    assert RefusedOrigin.objects.filter(origin="https://new.example").exists()


def test_rows_not_seen_within_the_retention_go(settings):
    settings.CORSADMIN = {**settings.CORSADMIN, "REFUSED_RETENTION_DAYS": 7}
    row("https://stale.example", 8)
    row("https://recent.example", 6)
    recorder.record("https://new.example", "/")
    recorder.flush()
    assert stored() == {"https://recent.example": 1, "https://new.example": 1}


def test_the_default_retention_is_30_days():
    row("https://stale.example", 31)
    row("https://recent.example", 29)
    recorder.record("https://new.example", "/")
    recorder.flush()
    assert set(stored()) == {"https://recent.example", "https://new.example"}


def test_a_dismissed_origin_refused_again_comes_back():
    row("https://back.example", 1, dismissed=True)
    recorder.record("https://back.example", "/")
    recorder.flush()
    assert RefusedOrigin.objects.get().dismissed is False


# --- budgets and eviction under a flood (issue 19, item 10) ------------------------------


def kinds() -> dict[bool, int]:
    return {report: RefusedOrigin.objects.filter(report=report).count() for report in (False, True)}


def test_a_flood_of_would_be_refusals_keeps_the_most_requested_rows():
    """40 genuine would-be refusals, each seen 5 times, then 2,500 made-up origins."""
    genuine = [f"https://partner{n}.example.com" for n in range(40)]
    for origin in genuine:
        for _ in range(5):
            recorder.record(origin, "/api/x", "strict")
    recorder.flush()
    largest = 0
    for n in range(2500):
        recorder.record(f"https://made-up-{n}.example.net", "/api/x", "strict")
        if n % 250 == 249:  # a flush every interval
            recorder.flush()
            largest = max(largest, RefusedOrigin.objects.count())
    kept = dict(RefusedOrigin.objects.filter(origin__in=genuine).values_list("origin", "count"))
    assert (kept, largest) == (dict.fromkeys(genuine, 5), 1000)


def test_would_be_refusals_never_take_the_ordinary_refusals_budget(settings):
    settings.CORSADMIN = {**settings.CORSADMIN, "REFUSED_MAX_ROWS": 100, "REFUSED_REPORT_ROWS": 40}
    for n in range(60):
        recorder.record(f"https://refused{n}.example.com", "/")
    recorder.flush()
    for n in range(500):
        recorder.record(f"https://made-up-{n}.example.net", "/", "strict")
    recorder.flush()
    assert kinds() == {False: 60, True: 40}


def test_either_kind_uses_the_space_the_other_leaves_and_gives_it_back(settings):
    settings.CORSADMIN = {**settings.CORSADMIN, "REFUSED_MAX_ROWS": 100, "REFUSED_REPORT_ROWS": 40}
    for n in range(100):
        recorder.record(f"https://made-up-{n}.example.net", "/", "strict")
    recorder.flush()
    borrowed = kinds()
    for n in range(30):
        recorder.record(f"https://refused{n}.example.com", "/")
    recorder.flush()
    assert (borrowed, kinds()) == ({False: 0, True: 100}, {False: 30, True: 70})


def test_a_new_refusal_is_kept_in_a_list_full_of_busier_rows(settings):
    settings.CORSADMIN = {**settings.CORSADMIN, "REFUSED_MAX_ROWS": 20, "REFUSED_REPORT_ROWS": 0}
    for n in range(20):
        row(f"https://busy{n}.example.com", 1, count=50)
    recorder.record("https://new.example", "/")
    recorder.flush()
    assert (RefusedOrigin.objects.count(), "https://new.example" in stored()) == (20, True)


def test_dismissed_rows_go_before_busier_undismissed_ones(settings):
    settings.CORSADMIN = {**settings.CORSADMIN, "REFUSED_MAX_ROWS": 2, "REFUSED_REPORT_ROWS": 0}
    row("https://dismissed.example", 0, count=90, dismissed=True)
    row("https://busy.example", 1, count=50)
    recorder.record("https://new.example", "/")
    recorder.flush()
    assert stored() == {"https://busy.example": 50, "https://new.example": 1}


# --- batched writes (issue 19, item 8) -------------------------------------------------


def queries_to_flush(origins: int) -> int:
    """Statements of one flush into a full list: ``origins`` stored ones counted again and
    as many new ones (half of each would-be refusals)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    RefusedOrigin.objects.all().delete()
    seen = timezone.now() - timedelta(hours=1)
    RefusedOrigin.objects.bulk_create(
        RefusedOrigin(
            origin=f"https://o{n}.example.net",
            path_prefix="/x",
            report=bool(n % 2),
            policy="strict" if n % 2 else "",
            count=1,
            first_seen=seen,
            last_seen=seen,
        )
        for n in range(1000)
    )
    recorder._pruned_at = time.time()  # the retention prune is not due
    for n in range(origins):
        recorder.record(f"https://o{n}.example.net", "/x", "strict" if n % 2 else "")
        recorder.record(f"https://p{n}.example.net", "/x", "strict" if n % 2 else "")
    connection.features.supports_json_field  # noqa: B018  (probed once per connection)
    with CaptureQueriesContext(connection) as queries:
        recorder.flush()
    return len(queries)


def test_a_flush_costs_the_same_statements_for_4_or_2000_origins():
    few, many = queries_to_flush(2), queries_to_flush(1000)
    assert (few, many, RefusedOrigin.objects.count()) == (few, few, 1000)
    assert few <= 8


def test_the_retention_prune_runs_at_most_every_few_minutes(settings, monkeypatch):
    from corsadmin import telemetry

    settings.CORSADMIN = {**settings.CORSADMIN, "REFUSED_RETENTION_DAYS": 7}
    now = [timezone.now().timestamp()]
    monkeypatch.setattr(telemetry, "clock", lambda: now[0], raising=False)
    recorder.record("https://first.example", "/")
    recorder.flush()  # prunes
    row("https://stale.example", 8)
    now[0] += telemetry.PRUNE_EVERY - 1
    recorder.record("https://second.example", "/")
    recorder.flush()
    early = "https://stale.example" in stored()
    now[0] += 1
    recorder.record("https://third.example", "/")
    recorder.flush()
    assert (early, "https://stale.example" in stored()) == (True, False)


def test_counts_recorded_while_a_flush_writes_are_all_written():
    """Requests keep counting while another thread flushes: nothing is lost to the swap."""
    import threading

    settings_cap = {"REFUSED_MAX_ROWS": 100_000, "TELEMETRY_MAX_ORIGINS": 100_000}
    from django.conf import settings
    from django.test import override_settings

    done = threading.Event()
    recorded = 3000

    def requests() -> None:
        for n in range(recorded):
            recorder.record(f"https://o{n % 1500}.example.net", "/x")
        done.set()

    with override_settings(CORSADMIN={**settings.CORSADMIN, **settings_cap}):
        thread = threading.Thread(target=requests)
        thread.start()
        failures = 0
        while not done.is_set():
            try:
                recorder.flush()
            except RuntimeError:  # "dictionary changed size during iteration": the batch is lost
                failures += 1
        thread.join()
        recorder.flush()
    total = sum(RefusedOrigin.objects.values_list("count", flat=True))
    assert (failures, total) == (0, recorded)


def test_counts_the_database_refuses_are_kept_for_the_next_flush(monkeypatch):
    from corsadmin import refused

    real = refused.write

    def down(*args, **kwargs):
        raise OSError("database is down")

    recorder.record("https://kept.example", "/")
    monkeypatch.setattr(refused, "write", down)
    with pytest.raises(OSError):
        recorder.flush()
    monkeypatch.setattr(refused, "write", real)
    recorder.record("https://kept.example", "/")
    recorder.flush()
    assert stored() == {"https://kept.example": 2}


def test_a_refused_request_reads_no_setting_and_a_settings_change_still_counts(client, settings, monkeypatch):
    """The refusal path's settings (TELEMETRY, its cap, USAGE, METRICS) are read when they
    change, not per request: ``override_settings`` still takes effect."""
    from corsadmin import conf
    from corsadmin.models import AllowedOrigin

    AllowedOrigin.objects.create(origin="https://app.example.com")  # the path is covered
    client.get("/demo/echo/", headers={"Origin": "https://warm.example"})
    recorder._take()
    read = []
    real_get = conf.get
    monkeypatch.setattr(conf, "get", lambda name: read.append(name) or real_get(name))
    client.get("/demo/echo/", headers={"Origin": "https://first.example"})
    assert not [name for name in read if name.startswith(("TELEMETRY", "USAGE", "METRICS"))]
    assert [key[0] for key in recorder.pending()] == ["https://first.example"]
    settings.CORSADMIN = {**settings.CORSADMIN, "TELEMETRY_MAX_ORIGINS": 1}
    client.get("/demo/echo/", headers={"Origin": "https://second.example"})
    assert [key[0] for key in recorder.pending()] == ["https://first.example"]
    assert recorder.dropped == 1
    settings.CORSADMIN = {**settings.CORSADMIN, "TELEMETRY": False}
    client.get("/demo/echo/", headers={"Origin": "https://third.example"})
    assert recorder.dropped == 1
    recorder.dropped = 0
