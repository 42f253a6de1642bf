"""``cors list`` shows hits and last seen; ``--unused-days N`` lists the unused entries."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from corsadmin import usage
from corsadmin.models import AllowedOrigin, OriginUsage
from tests.test_cli import cors, refused

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 26, 10, 15, tzinfo=UTC)


@pytest.fixture(autouse=True)
def clock(monkeypatch):
    monkeypatch.setattr(usage, "clock", NOW.timestamp)


@pytest.fixture
def entries():
    never = AllowedOrigin.objects.create(origin="https://never.example.com")
    old = AllowedOrigin.objects.create(origin="https://old.example.com")
    recent = AllowedOrigin.objects.create(origin="https://recent.example.com")
    OriginUsage.objects.create(origin=old, hits=7, last_seen=NOW - timedelta(days=31))
    OriginUsage.objects.create(origin=recent, hits=3, last_seen=NOW - timedelta(days=1))
    return never, old, recent


def test_list_shows_hits_and_last_seen(entries):
    lines = cors("list").splitlines()
    assert [line.split()[2:] for line in lines[1:4]] == [
        ["https://never.example.com", "active", "-", "cors", "0", "-"],
        ["https://old.example.com", "active", "-", "cors", "7", "2026-10-26T10:15:00+00:00"],
        ["https://recent.example.com", "active", "-", "cors", "3", "2026-11-25T10:15:00+00:00"],
    ]


def test_unused_days_lists_entries_never_seen_or_not_seen_for_n_days(entries):
    lines = cors("list", "--unused-days", "30").splitlines()
    assert [line.split()[2] for line in lines[1:-1]] == [
        "https://never.example.com",
        "https://old.example.com",
    ]
    assert lines[-1] == "2 origin(s)"


def test_unused_days_in_json(entries):
    data = json.loads(cors("list", "--unused-days", "2", "--json"))
    assert [(o["origin"], o["hits"]) for o in data] == [
        ("https://never.example.com", 0),
        ("https://old.example.com", 7),
    ]


@pytest.mark.parametrize("value", ["0", "-1", "1.5", "x", "36501"])
def test_a_bad_unused_days_exits_non_zero_with_one_line(entries, value):
    error = refused("list", f"--unused-days={value}")
    assert error.returncode != 0
    assert str(error) == "--unused-days: Give a whole number of days from 1 to 36500."
