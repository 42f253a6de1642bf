"""Origin leases (issue 25, item 4): scoped tokens that add and remove preview origins.

The API side: a lease's key adds and deletes entries inside its pattern and policy, and gets a
403 naming its scope for anything else; its entries expire within max_ttl; its writes are in
the history under its name; a revoked key is a 401; a leased entry stops matching at its
expiry with no write, and the hourly prune deletes it afterwards.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from django.contrib.admin.models import ADDITION, DELETION, LogEntry
from django.utils import timezone
from rest_framework.test import APIClient

from corsadmin import leases, snapshot, usage
from corsadmin.models import AllowedOrigin, LeaseToken, Policy

from .api_fixtures import API

pytestmark = pytest.mark.django_db

PATTERN = "https://pr-*.preview.example.com"
PR = "https://pr-12.preview.example.com"
WEEK = 7 * 86400
ORIGINS = API + "origins/"
SCOPE = (
    "This token is the origin lease 'ci-previews': it may only add and remove origins matching "
    "https://pr-*.preview.example.com in policy 'previews'."
)


@pytest.fixture
def previews(db):
    return Policy.objects.create(name="previews", url_regex="^/")


@pytest.fixture
def lease(previews):
    return leases.create("ci-previews", previews, PATTERN, WEEK)


def client_for(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


@pytest.fixture
def ci(lease):
    return client_for(lease[1])


def leased(origin: str = PR, policy: str = "previews", **fields) -> AllowedOrigin:
    return AllowedOrigin.objects.create(
        origin=origin,
        policy=Policy.objects.get(name=policy),
        expires_at=timezone.now() + timedelta(days=1),
        **fields,
    )


# --- inside the scope --------------------------------------------------------------------


def test_adds_an_origin_inside_its_pattern(ci):
    response = ci.post(ORIGINS, {"origin": PR}, format="json")
    assert response.status_code == 201
    assert (response.json()["origin"], response.json()["policy"]) == (PR, "previews")


def test_expiry_defaults_to_max_ttl_ahead(ci):
    before = timezone.now()
    response = ci.post(ORIGINS, {"origin": PR}, format="json")
    expires = AllowedOrigin.objects.get(pk=response.json()["id"]).expires_at
    assert before + timedelta(seconds=WEEK) <= expires <= timezone.now() + timedelta(seconds=WEEK)


def test_a_shorter_expiry_is_kept(ci):
    wanted = (timezone.now() + timedelta(hours=2)).replace(microsecond=0)
    response = ci.post(ORIGINS, {"origin": PR, "expires_at": wanted.isoformat()}, format="json")
    assert response.status_code == 201
    assert AllowedOrigin.objects.get(pk=response.json()["id"]).expires_at == wanted


def test_an_expiry_past_max_ttl_is_a_400(ci):
    later = timezone.now() + timedelta(days=8)
    response = ci.post(ORIGINS, {"origin": PR, "expires_at": later.isoformat()}, format="json")
    assert response.status_code == 400
    assert response.json()["expires_at"][0].startswith("A lease's entry expires at most 7d ahead: by ")
    assert not AllowedOrigin.objects.filter(origin=PR).exists()


def test_an_expiry_a_moment_past_max_ttl_is_max_ttl(ci):
    response = ci.post(
        ORIGINS,
        {"origin": PR, "expires_at": (timezone.now() + timedelta(seconds=WEEK + 2)).isoformat()},
        format="json",
    )
    expires = AllowedOrigin.objects.get(pk=response.json()["id"]).expires_at
    assert expires <= timezone.now() + timedelta(seconds=WEEK)


def test_no_expiry_is_a_400(ci):
    response = ci.post(ORIGINS, {"origin": PR, "expires_at": None}, format="json")
    assert response.status_code == 400
    assert list(response.json()) == ["expires_at"]


def test_a_deny_entry_is_a_400(ci):
    response = ci.post(ORIGINS, {"origin": PR, "effect": "deny"}, format="json")
    assert (response.status_code, response.json()) == (400, {"effect": ["A lease adds allow entries only."]})


def test_a_csrf_trusted_entry_is_a_400(ci):
    response = ci.post(ORIGINS, {"origin": PR, "csrf_trusted": True}, format="json")
    assert response.status_code == 400
    assert response.json() == {"csrf_trusted": ["A lease cannot make an entry CSRF-trusted."]}


def test_the_csrf_scope_is_a_400(ci):
    response = ci.post(ORIGINS, {"origin": PR, "scopes": ["cors", "csrf"]}, format="json")
    assert (response.status_code, response.json()) == (
        400,
        {"scopes": ["A lease may give the scopes cors and websocket, never csrf."]},
    )


def test_a_lease_may_give_the_websocket_scope(ci):
    response = ci.post(ORIGINS, {"origin": PR, "scopes": ["websocket"]}, format="json")
    assert (response.status_code, response.json()["scopes"]) == (201, ["websocket"])


def test_an_invalid_origin_is_a_400(ci):
    response = ci.post(ORIGINS, {"origin": "https://pr-1.preview.example.com/x"}, format="json")
    assert response.status_code == 400
    assert list(response.json()) == ["origin"]


def test_adding_it_again_is_a_400(ci):
    ci.post(ORIGINS, {"origin": PR}, format="json")
    response = ci.post(ORIGINS, {"origin": PR}, format="json")
    assert (response.status_code, response.json()) == (
        400,
        {"origin": ["This origin is already listed in this policy."]},
    )
    assert AllowedOrigin.objects.filter(origin=PR).count() == 1


def test_deletes_an_origin_inside_its_pattern(ci):
    entry = leased()
    assert ci.delete(f"{ORIGINS}{entry.pk}/").status_code == 204
    assert not AllowedOrigin.objects.filter(pk=entry.pk).exists()


def test_lists_only_the_entries_in_its_scope(ci, previews):
    mine = leased()
    leased("https://other.preview.example.com")
    leased(PR, policy="default")
    response = ci.get(ORIGINS, {"search": "pr-12"})
    assert response.status_code == 200
    assert [row["id"] for row in response.json()["results"]] == [mine.pk]


# --- outside the scope: 403 naming it ----------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        {"origin": "https://app.example.com"},
        {"origin": "https://pr-1.x.preview.example.com"},
        {"origin": "https://*.preview.example.com"},
        {"origin": "http://pr-12.preview.example.com"},
        {"origin": PR, "policy": "default"},
    ],
    ids=["other-host", "two-labels", "wildcard", "other-scheme", "other-policy"],
)
def test_adding_outside_its_scope_is_a_403(ci, body):
    response = ci.post(ORIGINS, body, format="json")
    assert (response.status_code, response.json()["detail"]) == (403, SCOPE)
    assert not AllowedOrigin.objects.filter(origin=body["origin"]).exists()


def test_deleting_outside_its_pattern_is_a_403(ci):
    entry = leased("https://app.preview.example.com")
    response = ci.delete(f"{ORIGINS}{entry.pk}/")
    assert (response.status_code, response.json()["detail"]) == (403, SCOPE)
    assert AllowedOrigin.objects.filter(pk=entry.pk).exists()


def test_deleting_in_another_policy_is_a_403(ci):
    entry = leased(PR, policy="default")
    assert ci.delete(f"{ORIGINS}{entry.pk}/").status_code == 403
    assert AllowedOrigin.objects.filter(pk=entry.pk).exists()


def test_reading_an_entry_outside_its_pattern_is_a_403(ci):
    entry = leased("https://app.preview.example.com")
    response = ci.get(f"{ORIGINS}{entry.pk}/")
    assert (response.status_code, response.json()["detail"]) == (403, SCOPE)


def test_changing_its_own_entry_is_a_403(ci):
    entry = leased()
    response = ci.patch(f"{ORIGINS}{entry.pk}/", {"expires_at": None}, format="json")
    assert (response.status_code, response.json()["detail"]) == (403, SCOPE)
    assert AllowedOrigin.objects.get(pk=entry.pk).expires_at is not None


def test_replacing_its_own_entry_is_a_403(ci):
    entry = leased()
    response = ci.put(f"{ORIGINS}{entry.pk}/", {"origin": PR, "policy": "previews"}, format="json")
    assert (response.status_code, response.json()["detail"]) == (403, SCOPE)


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("get", "policies/", None),
        ("post", "policies/", {"name": "mine"}),
        ("delete", "policies/previews/", None),
        ("post", "import/", {"policies": []}),
        ("get", "export/", None),
        ("get", "check/?origin=https://pr-1.preview.example.com", None),
        ("get", "blocked/", None),
        ("get", "status/", None),
    ],
)
def test_other_endpoints_are_a_403(ci, method, path, body):
    response = getattr(ci, method)(API + path, body, format="json")
    assert (response.status_code, response.json()["detail"]) == (403, SCOPE)
    assert Policy.objects.filter(name="previews").exists()


# --- the key ------------------------------------------------------------------------------


def test_a_revoked_key_is_a_401(lease):
    token, key = lease
    leases.revoke(token)
    response = client_for(key).post(ORIGINS, {"origin": PR}, format="json")
    assert (response.status_code, response.json()["detail"]) == (401, "Invalid token.")


def test_an_unknown_lease_key_is_a_401(lease):
    response = client_for("lease_" + "0" * 48).get(ORIGINS)
    assert response.status_code == 401


def test_only_a_digest_of_the_key_is_stored(lease):
    token, key = lease
    stored = LeaseToken.objects.filter(pk=token.pk).values()[0]
    assert key not in [str(value) for value in stored.values()]
    assert stored["key_hint"] == key[:10]


# --- history and created_by ---------------------------------------------------------------


def test_created_entry_is_by_the_lease(ci):
    response = ci.post(ORIGINS, {"origin": PR}, format="json")
    assert response.json()["created_by"] == "lease:ci-previews"


def test_history_shows_the_lease_name(ci):
    entry_id = ci.post(ORIGINS, {"origin": PR}, format="json").json()["id"]
    ci.delete(f"{ORIGINS}{entry_id}/")
    rows = LogEntry.objects.filter(object_id=str(entry_id)).order_by("pk")
    assert [(row.user.get_username(), row.action_flag) for row in rows] == [
        ("lease:ci-previews", ADDITION),
        ("lease:ci-previews", DELETION),
    ]


def test_the_leases_user_can_do_nothing_else(lease):
    actor = lease[0].actor
    assert (actor.is_active, actor.has_usable_password(), actor.has_perm("corsadmin.view_policy")) == (
        False,
        False,
        False,
    )


# --- expiry and pruning -------------------------------------------------------------------


def test_a_leased_entry_stops_matching_at_its_expiry(
    ci, client, long_interval, monkeypatch, django_capture_on_commit_callbacks
):
    expires = timezone.now() + timedelta(hours=1)
    with django_capture_on_commit_callbacks(execute=True):
        response = ci.post(ORIGINS, {"origin": PR, "expires_at": expires.isoformat()}, format="json")
    assert response.status_code == 201, response.json()
    assert client.get("/demo/echo/", headers={"Origin": PR})["Access-Control-Allow-Origin"] == PR
    just_before = expires.timestamp() - 0.001
    monkeypatch.setattr(snapshot, "time", SimpleNamespace(time=lambda: just_before))
    assert client.get("/demo/echo/", headers={"Origin": PR})["Access-Control-Allow-Origin"] == PR
    at_expiry = expires.timestamp()
    monkeypatch.setattr(snapshot, "time", SimpleNamespace(time=lambda: at_expiry))
    assert "Access-Control-Allow-Origin" not in client.get("/demo/echo/", headers={"Origin": PR})


def test_the_prune_deletes_expired_leased_entries(ci, monkeypatch):
    expires = timezone.now() + timedelta(hours=1)
    ci.post(ORIGINS, {"origin": PR, "expires_at": expires.isoformat()}, format="json")
    monkeypatch.setattr(usage, "clock", lambda: expires.timestamp() + 1)
    usage.prune()
    assert not AllowedOrigin.objects.filter(origin=PR).exists()


def test_the_prune_keeps_unexpired_leased_entries(ci, monkeypatch):
    ci.post(ORIGINS, {"origin": PR}, format="json")
    monkeypatch.setattr(usage, "clock", lambda: timezone.now().timestamp())
    usage.prune()
    assert AllowedOrigin.objects.filter(origin=PR).exists()


def test_the_prune_keeps_expired_entries_no_lease_added(previews, monkeypatch):
    entry = AllowedOrigin.objects.create(
        origin=PR, policy=previews, expires_at=timezone.now() + timedelta(hours=1)
    )
    later = datetime.now(UTC) + timedelta(hours=2)
    monkeypatch.setattr(usage, "clock", lambda: later.timestamp())
    usage.prune()
    assert AllowedOrigin.objects.filter(pk=entry.pk).exists()
