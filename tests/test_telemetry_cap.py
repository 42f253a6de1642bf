"""Refused-origin rows are bounded: a cap on rows and a retention, least recently seen go first."""

from __future__ import annotations

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


def row(origin: str, days_ago: float, **fields) -> RefusedOrigin:
    seen = timezone.now() - timedelta(days=days_ago)
    return RefusedOrigin.objects.create(
        origin=origin, path_prefix="/", count=1, first_seen=seen, last_seen=seen, **fields
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
