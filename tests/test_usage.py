"""Usage per entry: counted in memory by the middleware, added to the database by a flush."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.db import connection
from django.http import HttpResponse
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext

from corsadmin import refusals, usage
from corsadmin.middleware import CorsMiddleware
from corsadmin.models import AllowedOrigin, Generation, OriginHour, OriginUsage, Policy, PolicyHour
from corsadmin.refresh import holder

from .cors_helpers import APP, ECHO

pytestmark = pytest.mark.django_db

# 2026-11-26 10:15:00 UTC
T0 = datetime(2026, 11, 26, 10, 15, tzinfo=UTC).timestamp()


class FakeClock:
    def __init__(self, at: float) -> None:
        self.at = at

    def __call__(self) -> float:
        return self.at


@pytest.fixture
def clock(monkeypatch):
    fake = FakeClock(T0)
    monkeypatch.setattr(usage, "clock", fake)
    return fake


@pytest.fixture(autouse=True)
def fresh_counts(monkeypatch):
    monkeypatch.setattr(usage, "_entries", {})
    monkeypatch.setattr(usage, "_policies", {})
    monkeypatch.setattr(usage, "_pruned_at", None)
    monkeypatch.setattr(usage, "_hour_end", 0.0)
    monkeypatch.setattr(usage, "_covering_for", (0, 0.0))
    monkeypatch.setattr(usage, "_covering", {})


@pytest.fixture
def entry(db):
    return AllowedOrigin.objects.create(origin=APP, policy=Policy.objects.get(name="default"))


def hour(h: int, day: int = 26) -> datetime:
    return datetime(2026, 11, day, h, tzinfo=UTC)


def per_hour() -> dict[tuple[int, datetime], int]:
    return {(o, h): c for o, h, c in OriginHour.objects.values_list("origin_id", "hour", "count")}


def test_an_allowed_request_counts_for_its_entry_after_a_flush(client, entry, clock):
    client.get(ECHO, HTTP_ORIGIN=APP)
    client.get(ECHO, HTTP_ORIGIN=APP)
    usage.flush()
    row = OriginUsage.objects.get(origin=entry)
    assert (row.hits, row.last_seen) == (2, datetime.fromtimestamp(T0, UTC))
    assert per_hour() == {(entry.pk, hour(10)): 2}


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
async def test_the_async_path_counts_the_same(async_client, clock):
    from asgiref.sync import sync_to_async

    entry = await sync_to_async(AllowedOrigin.objects.create)(origin=APP)
    await async_client.get(ECHO, headers={"Origin": APP})
    await async_client.get(ECHO, headers={"Origin": "https://evil.example.net"})
    assert usage._entries == {int(T0) // 3600: {entry.pk: [1, T0]}}
    assert refusals.usage_counts() == {int(T0) // 3600: {"default": [1, 1]}}  # refusals included


def test_a_refused_cross_origin_request_counts_for_the_covering_policy(client, entry, clock):
    client.get(ECHO, HTTP_ORIGIN="https://evil.example.net")
    client.get(ECHO, HTTP_ORIGIN=APP)
    usage.flush()
    assert list(PolicyHour.objects.values_list("policy", "hour", "allowed", "refused")) == [
        ("default", hour(10), 1, 1)
    ]
    assert OriginUsage.objects.get().hits == 1


def covering_api(**options) -> Policy:
    """A policy for /demo/ before the default; with an entry (a policy that allows nothing covers nothing)."""
    api = Policy.objects.create(name="api", url_regex="^/demo/", priority=10, **options)
    AllowedOrigin.objects.create(origin="https://partner.example.com", policy=api)
    return api


def test_a_refusal_counts_for_the_highest_priority_covering_policy(client, entry, clock):
    covering_api()
    client.get(ECHO, HTTP_ORIGIN="https://evil.example.net")
    usage.flush()
    assert list(PolicyHour.objects.values_list("policy", "refused")) == [("api", 1)]


def test_a_refusal_counts_for_a_per_host_policy_only_on_its_hosts(client, entry, clock, settings):
    settings.ALLOWED_HOSTS = ["testserver", "api.example.com"]
    covering_api(hosts=["api.example.com"])
    client.get(ECHO, HTTP_ORIGIN="https://evil.example.net", HTTP_HOST="api.example.com")
    client.get(ECHO, HTTP_ORIGIN="https://evil.example.net")  # Host: testserver
    usage.flush()
    assert sorted(PolicyHour.objects.values_list("policy", "refused")) == [("api", 1), ("default", 1)]


def test_a_same_origin_request_is_not_a_refusal(client, entry, clock):
    client.get(ECHO, HTTP_ORIGIN="http://testserver")
    usage.flush()
    assert not PolicyHour.objects.exists()


def test_a_preflight_counts_as_a_use(client, entry, clock):
    client.options(ECHO, HTTP_ORIGIN=APP, HTTP_ACCESS_CONTROL_REQUEST_METHOD="PUT")
    usage.flush()
    assert OriginUsage.objects.get().hits == 1


def test_allow_all_counts_for_the_policy_only(client, clock):
    Policy.objects.filter(name="default").update(allow_all_origins=True)
    client.get(ECHO, HTTP_ORIGIN="https://anyone.example")
    usage.flush()
    assert list(PolicyHour.objects.values_list("policy", "allowed", "refused")) == [("default", 1, 0)]
    assert not OriginUsage.objects.exists()


def test_a_flush_adds_to_what_is_stored(client, entry, clock):
    client.get(ECHO, HTTP_ORIGIN=APP)
    usage.flush()
    clock.at += 3600  # the next hour
    client.get(ECHO, HTTP_ORIGIN=APP)
    client.get(ECHO, HTTP_ORIGIN=APP)
    usage.flush()
    row = OriginUsage.objects.get()
    assert (row.hits, row.last_seen) == (3, datetime.fromtimestamp(T0 + 3600, UTC))
    assert per_hour() == {(entry.pk, hour(10)): 1, (entry.pk, hour(11)): 2}


def test_an_older_flush_never_moves_last_seen_back(entry, clock):
    usage.allowed("default", entry.pk)
    usage.flush()
    clock.at -= 60  # another worker's counts, flushed later but seen earlier
    usage.allowed("default", entry.pk)
    usage.flush()
    assert OriginUsage.objects.get().last_seen == datetime.fromtimestamp(T0, UTC)


def test_counting_moves_no_generation_and_no_version(client, entry, clock):
    client.get(ECHO, HTTP_ORIGIN=APP)
    before = (Generation.objects.get().value, AllowedOrigin.objects.get().version)
    usage.flush()
    assert (Generation.objects.get().value, AllowedOrigin.objects.get().version) == before


def test_the_request_path_runs_no_query_with_counting_on(client, entry, clock, django_assert_num_queries):
    client.get(ECHO, HTTP_ORIGIN=APP)  # loads the snapshot
    middleware = CorsMiddleware(lambda request: HttpResponse("ok"))
    factory = RequestFactory()
    assert usage.ENABLED
    with django_assert_num_queries(0):
        response = middleware(factory.get(ECHO, HTTP_ORIGIN=APP))
        middleware(factory.get(ECHO, HTTP_ORIGIN="https://evil.example.net"))
    assert response["Access-Control-Allow-Origin"] == APP
    assert usage._entries == {int(T0) // 3600: {entry.pk: [2, T0]}}
    assert refusals.usage_counts() == {int(T0) // 3600: {"default": [2, 1]}}  # refusals included


def test_disabled_counts_nothing(client, entry, clock, settings):
    settings.CORSADMIN = {**settings.CORSADMIN, "USAGE": False}
    client.get(ECHO, HTTP_ORIGIN=APP)
    client.get(ECHO, HTTP_ORIGIN="https://evil.example.net")
    assert not usage.pending()


def test_counts_of_an_entry_deleted_meanwhile_are_dropped(entry, clock):
    usage.allowed("default", entry.pk)
    usage.allowed("default", entry.pk + 1000)
    AllowedOrigin.objects.filter(pk=entry.pk).delete()
    usage.flush()
    assert not OriginUsage.objects.exists() and not OriginHour.objects.exists()
    assert PolicyHour.objects.get().allowed == 2


def test_deleting_an_entry_deletes_its_usage(entry, clock):
    usage.allowed("default", entry.pk)
    usage.flush()
    entry.delete()
    assert not OriginUsage.objects.exists() and not OriginHour.objects.exists()


def test_counts_the_database_refused_are_kept_for_the_next_flush(entry, clock, monkeypatch):
    usage.allowed("default", entry.pk)

    def down(*args):
        raise RuntimeError("database down")

    with monkeypatch.context() as patched:
        patched.setattr(usage, "_write", down)
        with pytest.raises(RuntimeError):
            usage.flush()
    usage.allowed("default", entry.pk)
    usage.flush()
    assert OriginUsage.objects.get().hits == 2


# --- pruning -----------------------------------------------------------------------------


def test_the_flush_prunes_hours_beyond_the_retention(entry, clock, settings):
    settings.CORSADMIN = {**settings.CORSADMIN, "USAGE_RETENTION_DAYS": 2}
    usage.allowed("default", entry.pk)
    usage.refused(holder.get(), "/")
    usage.flush()
    clock.at += 2 * 86400  # the 10:00 hour is now exactly 2 days and 15 minutes old
    usage.allowed("default", entry.pk)
    usage.flush()
    assert per_hour() == {(entry.pk, hour(10, day=28)): 1}
    assert list(PolicyHour.objects.values_list("hour", "allowed", "refused")) == [(hour(10, day=28), 1, 0)]
    assert OriginUsage.objects.get().hits == 2  # the total is kept


def test_an_hour_within_the_retention_is_kept(entry, clock, settings):
    settings.CORSADMIN = {**settings.CORSADMIN, "USAGE_RETENTION_DAYS": 2}
    usage.allowed("default", entry.pk)
    usage.flush()
    clock.at = hour(10, day=28).timestamp() - 1  # the 10:00 hour of the 26th is 1 s short of 2 days old
    usage.prune()
    assert per_hour() == {(entry.pk, hour(10)): 1}


def test_the_default_retention_is_35_days(entry, clock):
    usage.allowed("default", entry.pk)
    usage.flush()
    clock.at = hour(10).timestamp() + 35 * 86400
    usage.prune()
    assert OriginHour.objects.count() == 1
    clock.at += 1
    usage.prune()
    assert OriginHour.objects.count() == 0


def test_a_flush_prunes_at_most_once_an_hour(entry, clock, settings):
    usage.flush()  # prunes
    OriginHour.objects.create(origin=entry, hour=datetime(2026, 10, 1, tzinfo=UTC), count=1)  # long gone
    clock.at += 3599
    usage.flush()
    assert OriginHour.objects.count() == 1
    clock.at += 1
    usage.flush()
    assert OriginHour.objects.count() == 0


def test_the_upsert_adds_on_conflict_in_one_statement_per_table(entry, clock):
    usage.allowed("default", entry.pk)
    usage.flush()
    usage.allowed("default", entry.pk)
    with CaptureQueriesContext(connection) as queries:
        usage.flush()
    inserts = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("INSERT")]
    assert len(inserts) == 3 and all("ON CONFLICT" in sql for sql in inserts)
    assert OriginUsage.objects.get().hits == 2


def test_requests_either_side_of_an_hour_count_in_their_own_hours(entry, clock):
    clock.at = hour(10).timestamp() + 3599.5
    usage.allowed("default", entry.pk)
    clock.at = hour(11).timestamp()
    usage.allowed("default", entry.pk)
    usage.allowed("default", entry.pk)
    usage.flush()
    assert per_hour() == {(entry.pk, hour(10)): 1, (entry.pk, hour(11)): 2}


def test_a_clock_set_back_counts_in_the_earlier_hour(entry, clock):
    usage.allowed("default", entry.pk)
    clock.at -= 3600
    usage.allowed("default", entry.pk)
    usage.flush()
    assert per_hour() == {(entry.pk, hour(9)): 1, (entry.pk, hour(10)): 1}


def test_the_covering_policy_of_a_refused_path_is_remembered_per_snapshot(
    client, entry, clock, django_capture_on_commit_callbacks
):
    """The refusal the snapshot remembers names the policy it counts for (the middleware asks
    nothing more per request); ``usage.covering`` remembers it per snapshot for refusals the
    snapshot did not decide (receivers, protected paths)."""
    evil = "https://evil.example.net"
    client.get(ECHO, HTTP_ORIGIN=evil)
    assert holder.get().decide(evil, ECHO).counted == "default"
    assert usage.covering(holder.get(), ECHO) == "default"
    assert usage._covering == {(None, ECHO): "default"}
    with django_capture_on_commit_callbacks(execute=True):
        covering_api()
    client.get(ECHO, HTTP_ORIGIN=evil)  # a new snapshot: asked again
    assert holder.get().decide(evil, ECHO).counted == "api"
    assert usage.covering(holder.get(), ECHO) == "api"
    assert usage._covering == {(None, ECHO): "api"}
    usage.flush()
    assert sorted(PolicyHour.objects.values_list("policy", "refused")) == [("api", 1), ("default", 1)]


def statements_to_flush(entries: list[AllowedOrigin]) -> int:
    usage.prune()  # not due in the flush measured
    for one in entries:
        usage.allowed("default", one.pk)
    connection.features.supports_json_field  # noqa: B018  (probed once per connection)
    with CaptureQueriesContext(connection) as queries:
        usage.flush()
    return len(queries)


def test_a_flush_costs_the_same_statements_for_1_or_1200_entries(entry, clock):
    few = statements_to_flush([entry])
    policy = Policy.objects.get(name="default")
    many = AllowedOrigin.objects.bulk_create(
        AllowedOrigin(origin=f"https://e{n}.example.com", policy=policy) for n in range(1200)
    )
    assert (few, statements_to_flush(many)) == (few, few)
    assert OriginUsage.objects.count() == 1201


def test_a_refusal_is_not_counted_for_a_policy_that_allows_nothing(client, entry, clock):
    Policy.objects.create(name="api", url_regex="^/demo/", priority=10)  # no entry: covers nothing
    client.get(ECHO, HTTP_ORIGIN="https://evil.example.net")
    usage.flush()
    assert list(PolicyHour.objects.values_list("policy", "refused")) == [("default", 1)]
