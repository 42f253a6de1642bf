"""``hits`` and ``last_seen`` on /api/cors/origins/, and ``?unused_days=N``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from corsadmin import usage
from corsadmin.models import AllowedOrigin, OriginUsage, Policy
from tests.api_fixtures import *  # noqa: F403
from tests.api_fixtures import API

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 26, 10, 15, tzinfo=UTC)


@pytest.fixture(autouse=True)
def clock(monkeypatch):
    monkeypatch.setattr(usage, "clock", NOW.timestamp)


def entry(origin: str, seen_days_ago: float | None = None, hits: int = 1) -> AllowedOrigin:
    obj = AllowedOrigin.objects.create(origin=origin)
    if seen_days_ago is not None:
        OriginUsage.objects.create(origin=obj, hits=hits, last_seen=NOW - timedelta(days=seen_days_ago))
    return obj


def origins(client, query: str = "") -> list[str]:
    response = client.get(API + "origins/" + query)
    assert response.status_code == 200, response.content
    return [row["origin"] for row in response.json()["results"]]


def test_an_origin_shows_its_hits_and_last_seen(reader_client):
    obj = entry("https://app.example.com", seen_days_ago=1, hits=42)
    body = reader_client.get(f"{API}origins/{obj.pk}/").json()
    assert (body["hits"], body["last_seen"]) == (42, "2026-11-25T10:15:00Z")


def test_an_origin_never_seen_has_0_hits_and_no_last_seen(reader_client):
    obj = entry("https://app.example.com")
    body = reader_client.get(f"{API}origins/{obj.pk}/").json()
    assert (body["hits"], body["last_seen"]) == (0, None)


def test_a_new_origin_answers_with_0_hits(full_client):
    response = full_client.post(API + "origins/", {"origin": "https://new.example.com"}, format="json")
    assert response.status_code == 201
    assert (response.json()["hits"], response.json()["last_seen"]) == (0, None)


def test_hits_and_last_seen_cannot_be_written(full_client):
    obj = entry("https://app.example.com", seen_days_ago=1, hits=5)
    response = full_client.patch(
        f"{API}origins/{obj.pk}/", {"hits": 1000, "last_seen": None, "note": "n"}, format="json"
    )
    assert response.status_code == 200
    assert (response.json()["hits"], response.json()["note"]) == (5, "n")
    assert OriginUsage.objects.get().hits == 5


def test_the_list_reads_usage_without_a_query_per_row(reader_client, django_assert_max_num_queries):
    for i in range(20):
        entry(f"https://o{i}.example.com", seen_days_ago=i)
    reader_client.get(API + "origins/")  # sessions, permissions cached
    with django_assert_max_num_queries(6):
        assert len(origins(reader_client)) == 20


@pytest.mark.parametrize(
    ("days", "expected"),
    [
        # never seen, seen 30 days + 1 s ago, exactly 30 days ago, 29 days ago
        (30, ["https://never.example.com", "https://old.example.com"]),
        (31, ["https://never.example.com"]),
        (
            1,
            [
                "https://edge.example.com",
                "https://never.example.com",
                "https://old.example.com",
                "https://recent.example.com",
            ],
        ),
    ],
)
def test_unused_days_lists_entries_never_seen_or_not_seen_for_n_days(reader_client, days, expected):
    entry("https://never.example.com")
    entry("https://old.example.com", seen_days_ago=30 + 1 / 86400)
    entry("https://edge.example.com", seen_days_ago=30)
    entry("https://recent.example.com", seen_days_ago=29)
    assert origins(reader_client, f"?unused_days={days}") == expected


def test_unused_days_combines_with_the_other_filters(reader_client):
    Policy.objects.create(name="api", url_regex="^/api/")
    AllowedOrigin.objects.create(origin="https://a.example.com", policy=Policy.objects.get(name="api"))
    entry("https://b.example.com")
    assert origins(reader_client, "?unused_days=30&policy=api") == ["https://a.example.com"]


@pytest.mark.parametrize("value", ["0", "-1", "1.5", "x", "36501", ""])
def test_a_bad_unused_days_is_a_400(reader_client, value):
    entry("https://app.example.com")
    response = reader_client.get(API + "origins/", {"unused_days": value})
    assert response.status_code == 400
    assert response.json() == {"unused_days": ["Give a whole number of days from 1 to 36500."]}


def test_the_schema_documents_the_usage_fields_and_filter(reader_client):
    schema = reader_client.get(API + "schema/?format=json").json()
    origin = schema["components"]["schemas"]["Origin"]["properties"]
    assert origin["hits"]["readOnly"] and origin["last_seen"]["readOnly"]
    assert origin["last_seen"]["nullable"]
    parameters = schema["paths"]["/api/cors/origins/"]["get"]["parameters"]
    unused_days = next(p for p in parameters if p["name"] == "unused_days")
    assert unused_days["schema"]["type"] == "integer"


def test_the_export_leaves_usage_out(reader_client, full_client):
    entry("https://app.example.com", seen_days_ago=1, hits=5)
    document = full_client.get(API + "export/").json()
    row = document["policies"][0]["origins"][0]
    assert "hits" not in row and "last_seen" not in row
