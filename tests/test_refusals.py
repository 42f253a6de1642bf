"""One count per refusal (``corsadmin.refusals``), split between telemetry and usage: what
each of them records and writes is what it recorded when every refusal went to both."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest
from django.conf import settings as django_settings
from django.test import override_settings

from corsadmin import refusals, telemetry, usage
from corsadmin.models import PolicyHour, RefusedOrigin
from corsadmin.telemetry import recorder
from tests.test_usage import FakeClock

pytestmark = pytest.mark.django_db

# 2026-11-26 10:59:58 UTC: two seconds before an hour ends
T0 = datetime(2026, 11, 26, 10, 59, 58, tzinfo=UTC).timestamp()
EVIL = "https://evil.example.net"


@pytest.fixture
def clock(monkeypatch):
    """One fake clock for both (as in production: both read time.time)."""
    fake = FakeClock(T0)
    monkeypatch.setattr(usage, "clock", fake)
    monkeypatch.setattr(telemetry, "clock", fake)
    monkeypatch.setattr(usage, "_entries", {})
    monkeypatch.setattr(usage, "_policies", {})
    monkeypatch.setattr(usage, "_hour_end", 0.0)
    recorder._pruned_at = None
    return fake


def hour_of(at: float) -> datetime:
    return datetime.fromtimestamp(int(at) // 3600 * 3600, UTC)


def test_telemetry_gets_what_recording_each_refusal_directly_gave(clock):
    calls = [(EVIL, "/api/a"), ("https://b.example", "/"), (EVIL, "/api/b"), (EVIL, "/x/y"), (EVIL, "/api/a")]
    for step, (origin, path) in enumerate(calls):
        clock.at = T0 + step
        refusals.count(origin, path, "default", "")
    refusals.count(EVIL, "/api/a", None, "strict")  # a report-only policy's would-be refusal
    through_refusals = recorder.pending()
    recorder._take()
    for step, (origin, path) in enumerate(calls):
        clock.at = T0 + step
        recorder.record(origin, path)
    recorder.record(EVIL, "/api/a", "strict")
    assert through_refusals == recorder.pending()
    assert through_refusals[(EVIL, "/api/", "")] == [3, T0, T0 + 4]


def test_usage_counts_each_refusal_in_its_hour_and_for_its_policy(clock):
    refusals.count(EVIL, "/a", "default", "")
    refusals.count(EVIL, "/a", "api", "")
    clock.at = T0 + 2  # the next hour
    refusals.count(EVIL, "/a", "default", "")
    refusals.count(EVIL, "/a", None, "")  # no policy covers it: telemetry only
    refusals.count(EVIL, "/a", "default", None)  # telemetry off: usage only
    assert refusals.usage_counts() == {
        int(T0) // 3600: {"default": [0, 1], "api": [0, 1]},
        int(T0) // 3600 + 1: {"default": [0, 2]},
    }
    usage.flush()
    assert sorted(PolicyHour.objects.values_list("policy", "hour", "allowed", "refused")) == [
        ("api", hour_of(T0), 0, 1),
        ("default", hour_of(T0), 0, 1),
        ("default", hour_of(T0 + 2), 0, 2),
    ]
    assert recorder.pending()[(EVIL, "/a", "")][0] == 4


def test_a_flush_of_one_keeps_the_share_of_the_other(clock):
    refusals.count(EVIL, "/a", "default", "")
    recorder.flush()  # splits: usage's share waits
    assert usage.pending()
    refusals.count(EVIL, "/a", "default", "")
    usage.flush()
    assert list(PolicyHour.objects.values_list("policy", "refused")) == [("default", 2)]
    assert not usage.pending()
    recorder.flush()
    assert list(RefusedOrigin.objects.values_list("origin", "count")) == [(EVIL, 2)]


def test_usage_does_not_wait_for_telemetry_only_refusals(clock):
    refusals.count(EVIL, "/a", None, "")
    assert (usage.pending(), telemetry.upstream[1]()) == (False, True)
    refusals.count(EVIL, "/a", "default", None)
    assert usage.pending()


def test_keys_waiting_are_bounded_by_the_telemetry_cap(clock, settings):
    settings.CORSADMIN = {**settings.CORSADMIN, "TELEMETRY_MAX_ORIGINS": 3}
    for n in range(10):
        refusals.count(EVIL, f"/p{n}/", "default", "")
        assert sum(len(counts) for counts in refusals._hours.values()) <= 3
    assert (len(recorder.pending()), recorder.dropped) == (3, 7)
    assert refusals.usage_counts() == {int(T0) // 3600: {"default": [0, 10]}}
    recorder.dropped = 0


def test_counts_made_while_another_thread_splits_are_all_handed_over(clock):
    made = 3000

    def requests() -> None:
        for n in range(made):
            refusals.count(f"https://o{n % 700}.example.net", f"/x/{n % 3}", "default", "")

    cap = {"REFUSED_MAX_ROWS": 100_000, "TELEMETRY_MAX_ORIGINS": 100_000}
    with override_settings(CORSADMIN={**django_settings.CORSADMIN, **cap}):
        thread = threading.Thread(target=requests)
        thread.start()
        taken = 0
        while thread.is_alive():
            taken += sum(per.get("default", 0) for per in refusals.take_usage().values())
            refusals.split()
        thread.join()
        taken += sum(per.get("default", 0) for per in refusals.take_usage().values())
        assert (taken, sum(entry[0] for entry in recorder.pending().values())) == (made, made)


def test_a_forked_child_drops_what_the_parent_counted(clock):
    refusals.count(EVIL, "/a", "default", "")
    refusals._forked()
    assert (recorder.pending(), refusals.usage_counts()) == ({}, {})


@pytest.mark.parametrize("host", [None, "api.example.com"])
def test_a_refusal_decide_made_names_the_policy_usage_covering_names(
    host, django_capture_on_commit_callbacks
):
    """What the middleware counts a refusal for without asking usage (``Decision.counted``) is
    ``usage.covering``'s answer: priorities, report-only and per-host policies, deny entries,
    a policy that allows nothing."""
    from corsadmin.models import AllowedOrigin, Policy
    from corsadmin.refresh import holder

    app, partner, blocked = (
        "https://app.example.com",
        "https://partner.example.com",
        "https://blocked.example.com",
    )
    with django_capture_on_commit_callbacks(execute=True):
        default = Policy.objects.get(name="default")
        AllowedOrigin.objects.create(origin=app, policy=default)
        AllowedOrigin.objects.create(origin=blocked, policy=default, effect="deny")
        watch = Policy.objects.create(name="watch", url_regex="^/demo/", priority=30, mode="report")
        AllowedOrigin.objects.create(origin=app, policy=watch)
        api = Policy.objects.create(name="api", url_regex="^/demo/", priority=20, hosts=["api.example.com"])
        AllowedOrigin.objects.create(origin=partner, policy=api)
        Policy.objects.create(name="empty", url_regex="^/", priority=40)  # allows nothing: covers nothing
    snapshot = holder.get()
    checked = []
    for origin in (EVIL, partner, blocked, app):
        for path in ("/demo/echo/", "/other/"):
            decision = snapshot.decide(origin, path, host=host)
            if decision.covered and not decision.allowed:
                checked.append((origin, path, decision.counted))
                assert decision.counted == usage.covering(snapshot, path, host)
    expected_api = "api" if host else "default"
    assert (EVIL, "/demo/echo/", expected_api) in checked
    assert (blocked, "/other/", "default") in checked
    assert len(checked) >= 5
