"""Previews through the API: real requests through the middleware, a flush, then
``?dry_run=true`` on a write: the traffic it would flip, and nothing changed."""

from __future__ import annotations

import pytest
from django.contrib.admin.models import LogEntry

from corsadmin import traffic
from corsadmin.models import AllowedOrigin, Generation, Policy
from tests.api_fixtures import API

from .cors_helpers import APP, ECHO

OTHER = "https://other.example.org"


@pytest.fixture(autouse=True)
def fresh_traffic(monkeypatch):
    monkeypatch.setattr(traffic, "_days", {})
    monkeypatch.setattr(traffic, "_day_end", 0.0)
    monkeypatch.setattr(traffic, "_pruned_at", None)
    monkeypatch.setattr(traffic, "dropped", 0)


@pytest.fixture
def entry(db):
    return AllowedOrigin.objects.create(origin=APP, policy=Policy.objects.get(name="default"))


def send(client, origin: str, times: int = 1, path: str = ECHO) -> None:
    for _ in range(times):
        client.get(path, HTTP_ORIGIN=origin)
    traffic.flush()


def state() -> tuple[object, ...]:
    return (
        sorted(AllowedOrigin.objects.values_list("pk", "origin", "effect", "enabled", "policy__name")),
        sorted(Policy.objects.values_list("pk", "name", "enabled", "priority")),
        LogEntry.objects.count(),
        Generation.objects.values_list("value", flat=True).first(),
    )


def decider(allowed: bool, policy=None, entry=None, denied_by=None, denied_policy=None) -> dict:
    return {
        "allowed": allowed,
        "policy": policy,
        "entry": entry,
        "denied_by": denied_by,
        "denied_policy": denied_policy,
    }


def item(body: dict, kind: str) -> list[tuple]:
    return [(i["origin"], i["path_prefix"], i["host"], i["requests"]) for i in body[kind]]


def test_a_preview_of_deleting_an_entry_lists_the_traffic_it_allowed_and_changes_nothing(
    client, full_client, entry
):
    send(client, APP, times=3)
    before = state()
    response = full_client.delete(f"{API}origins/{entry.pk}/?dry_run=true")
    assert response.status_code == 200
    body = response.json()
    assert body["would_allow"] == []
    assert item(body, "would_refuse") == [(APP, "/demo/", "testserver", 3)]
    flip = body["would_refuse"][0]
    assert flip["before"] == decider(True, "default", APP)
    assert flip["after"] == decider(False)
    assert flip["last_seen"].endswith("Z")
    assert state() == before


def test_the_same_delete_without_dry_run_deletes(client, full_client, entry):
    send(client, APP)
    assert full_client.delete(f"{API}origins/{entry.pk}/").status_code == 204
    assert not AllowedOrigin.objects.filter(pk=entry.pk).exists()


def test_a_preview_of_adding_an_entry_lists_refused_traffic_it_would_allow(client, full_client, entry):
    send(client, OTHER, times=2)
    send(client, APP)
    before = state()
    response = full_client.post(f"{API}origins/?dry_run=true", {"origin": OTHER}, format="json")
    assert response.status_code == 200
    body = response.json()
    assert item(body, "would_allow") == [(OTHER, "/demo/", "testserver", 2)]
    assert body["would_allow"][0]["after"] == decider(True, "default", OTHER)
    assert body["would_refuse"] == []
    assert state() == before


def test_a_deny_entry_preview_lists_what_it_would_refuse(client, full_client, entry):
    other = AllowedOrigin.objects.create(origin="https://*.example.com", policy=entry.policy)
    send(client, "https://shop.example.com", times=2)
    before = state()
    response = full_client.post(
        f"{API}origins/?dry_run=true", {"origin": "https://shop.example.com", "effect": "deny"}, format="json"
    )
    assert response.status_code == 200
    flip = response.json()["would_refuse"][0]
    assert (flip["origin"], flip["requests"]) == ("https://shop.example.com", 2)
    assert flip["before"] == decider(True, "default", other.origin)
    assert flip["after"] == decider(False, denied_by="https://shop.example.com", denied_policy="default")
    assert state() == before


def test_a_preview_of_disabling_a_policy_lists_its_traffic(client, full_client, entry):
    send(client, APP)
    before = state()
    response = full_client.patch(f"{API}policies/default/?dry_run=true", {"enabled": False}, format="json")
    assert response.status_code == 200
    assert item(response.json(), "would_refuse") == [(APP, "/demo/", "testserver", 1)]
    assert state() == before


def test_a_change_that_flips_nothing_previews_empty_lists(client, full_client, entry):
    send(client, APP)
    response = full_client.patch(f"{API}origins/{entry.pk}/?dry_run=1", {"note": "hello"}, format="json")
    assert (response.status_code, response.json()) == (200, {"would_allow": [], "would_refuse": []})
    assert AllowedOrigin.objects.get(pk=entry.pk).note == ""


@pytest.mark.parametrize(
    "body",
    [
        {"origin": "javascript:alert(1)"},
        {"origin": APP},  # a duplicate in its policy
        {"origin": "https://new.example.com", "policy": "no-such-policy"},
    ],
)
def test_dry_run_with_invalid_input_gives_the_same_400(full_client, entry, body):
    before = state()
    real = full_client.post(f"{API}origins/", body, format="json")
    dry = full_client.post(f"{API}origins/?dry_run=true", body, format="json")
    assert real.status_code == dry.status_code == 400
    assert real.json() == dry.json()
    assert state() == before


@pytest.mark.parametrize("value", ["maybe", ""])
def test_a_bad_dry_run_flag_is_a_400_and_changes_nothing(full_client, entry, value):
    before = state()
    response = full_client.delete(f"{API}origins/{entry.pk}/?dry_run={value}")
    assert response.status_code == 400
    assert response.json() == {"dry_run": ["Give dry_run=true or dry_run=false."]}
    assert state() == before


def test_a_preview_of_a_replacing_import_lists_what_it_would_refuse(client, full_client, entry):
    send(client, APP, times=2)
    before = state()
    document = {"version": 1, "policies": [{"name": "default", "url_regex": "^/", "origins": []}]}
    response = full_client.post(f"{API}import/?replace=true&dry_run=true", document, format="json")
    assert response.status_code == 200
    assert item(response.json(), "would_refuse") == [(APP, "/demo/", "testserver", 2)]
    assert state() == before


def test_an_invalid_import_previews_as_the_same_400(full_client, entry):
    document = {"version": 1, "policies": [{"name": "default", "origins": [{"origin": "ftp://x"}]}]}
    real = full_client.post(f"{API}import/", document, format="json")
    dry = full_client.post(f"{API}import/?dry_run=true", document, format="json")
    assert real.status_code == dry.status_code == 400
    assert real.json() == dry.json()


def test_a_preview_without_the_permission_is_refused(client, reader_client, entry):
    send(client, APP)
    response = reader_client.delete(f"{API}origins/{entry.pk}/?dry_run=true")
    assert response.status_code == 403
    assert AllowedOrigin.objects.filter(pk=entry.pk).exists()


def test_traffic_on_another_path_prefix_is_decided_by_its_own_policy(client, full_client, entry):
    api = Policy.objects.create(name="api", url_regex=r"^/api/", priority=10)
    AllowedOrigin.objects.create(origin=APP, policy=api)
    send(client, APP, path="/api/cors/nothing-here/")
    send(client, APP)
    response = full_client.delete(f"{API}origins/{entry.pk}/?dry_run=true")
    # The /api/ traffic stays allowed by the api policy; only /demo/ would be refused.
    assert item(response.json(), "would_refuse") == [(APP, "/demo/", "testserver", 1)]
