"""Bad input to the API: 400 with DRF field errors, never a 500, nothing written."""

from __future__ import annotations

import json

import pytest
from django.contrib.admin.models import LogEntry

from corsadmin.models import AllowedOrigin, Policy
from tests.api_fixtures import API
from tests.test_origins import NORMALISED, REJECTED

pytestmark = pytest.mark.django_db

APP = "https://app.example.com"

# Where DRF's own field checks answer before the one validator does.
DRF_FIRST = {
    "": "This field may not be blank.",
    "https://" + "a" * 300 + ".com": "Ensure this field has no more than 300 characters.",
}


def _ids(table):
    return [repr(value)[:50] for value, _ in table]


@pytest.fixture(autouse=True)
def nothing_written():
    yield
    assert not LogEntry.objects.exists()


@pytest.mark.parametrize("value, message", REJECTED, ids=_ids(REJECTED))
def test_rejected_origin_is_400_with_the_validators_message(full_client, value, message):
    response = full_client.post(API + "origins/", {"origin": value}, format="json")
    assert response.status_code == 400
    errors = response.json()
    assert list(errors) == ["origin"]
    assert DRF_FIRST.get(value, message) in errors["origin"][0]
    assert not AllowedOrigin.objects.exists()


@pytest.mark.parametrize("value, expected", NORMALISED, ids=_ids(NORMALISED))
def test_accepted_origin_is_stored_canonical(full_client, value, expected):
    response = full_client.post(API + "origins/", {"origin": value}, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["origin"] == expected
    LogEntry.objects.all().delete()


@pytest.mark.parametrize("value, message", REJECTED[:5], ids=_ids(REJECTED[:5]))
def test_rejected_origin_on_update_changes_nothing(full_client, value, message):
    entry = AllowedOrigin.objects.create(origin=APP)
    response = full_client.patch(API + f"origins/{entry.pk}/", {"origin": value}, format="json")
    assert response.status_code == 400
    assert message in response.json()["origin"][0]
    entry.refresh_from_db()
    assert entry.origin == APP


ORIGIN_BODIES = [
    ({"origin": 5}, "origin"),
    ({"origin": None}, "origin"),
    ({"origin": ["https://a.example.com"]}, "origin"),
    ({}, "origin"),
    ({"origin": APP, "enabled": "maybe"}, "enabled"),
    ({"origin": APP, "enabled": None}, "enabled"),
    ({"origin": APP, "csrf_trusted": "sure"}, "csrf_trusted"),
    ({"origin": APP, "policy": "nope"}, "policy"),
    ({"origin": APP, "policy": 7}, "policy"),
    ({"origin": APP, "policy": {"name": "default"}}, "policy"),
    ({"origin": APP, "expires_at": "tomorrow"}, "expires_at"),
    ({"origin": APP, "expires_at": "2030-02-30T00:00:00Z"}, "expires_at"),
    ({"origin": APP, "expires_at": 12}, "expires_at"),
    ({"origin": APP, "note": "x" * 2001}, "note"),
    ({"origin": APP, "note": "bad\x00byte"}, "note"),
    ({"origin": APP, "note": 5}, "note"),
    ({"origin": "https://\ud800.example.com"}, "origin"),
]


@pytest.mark.parametrize("body, field", ORIGIN_BODIES, ids=[repr(b)[:50] for b, _ in ORIGIN_BODIES])
def test_bad_origin_body_is_400(full_client, body, field):
    # json.dumps escapes lone surrogates, as a client library would send them.
    response = full_client.post(API + "origins/", json.dumps(body), content_type="application/json")
    assert response.status_code == 400, response.content
    assert field in response.json()
    assert not AllowedOrigin.objects.exists()


def test_unknown_policy_message(full_client):
    response = full_client.post(API + "origins/", {"origin": APP, "policy": "nope"}, format="json")
    assert response.json() == {"policy": ["There is no policy named 'nope'."]}


def test_duplicate_origin_is_400(full_client):
    AllowedOrigin.objects.create(origin=APP)
    response = full_client.post(API + "origins/", {"origin": "HTTPS://APP.example.com:443"}, format="json")
    assert response.status_code == 400
    assert response.json() == {"origin": ["This origin is already listed in this policy."]}
    assert AllowedOrigin.objects.count() == 1


def test_moving_onto_a_duplicate_is_400(full_client):
    api = Policy.objects.create(name="api")
    AllowedOrigin.objects.create(origin=APP)
    other = AllowedOrigin.objects.create(origin=APP, policy=api)
    response = full_client.patch(API + f"origins/{other.pk}/", {"policy": "default"}, format="json")
    assert response.status_code == 400
    assert response.json() == {"origin": ["This origin is already listed in this policy."]}


def test_duplicate_in_a_race_is_400_not_500(full_client, monkeypatch):
    """The constraint is the last word: an IntegrityError becomes a field error."""
    from corsadmin.models import AllowedOrigin as Model

    real_full_clean = Model.full_clean

    def racing_full_clean(self, *args, **kwargs):
        real_full_clean(self, *args, **kwargs)
        if not Model.objects.filter(origin=APP).exists():
            Model.objects.create(origin=APP)  # another request won the race

    monkeypatch.setattr(Model, "full_clean", racing_full_clean)
    response = full_client.post(API + "origins/", {"origin": APP}, format="json")
    assert response.status_code == 400
    assert response.json() == {"origin": ["This origin is already listed in this policy."]}


DENIED = (
    "Policy default already lists this origin as an exception (deny entry), which refuses it. To allow "
    "it, change that entry instead of adding another: make it an allow entry, or disable or delete it."
)


def test_adding_an_origin_its_policy_denies_says_it_is_an_exception(full_client):
    AllowedOrigin.objects.create(origin=APP, effect=AllowedOrigin.DENY)
    response = full_client.post(API + "origins/", {"origin": APP}, format="json")
    assert response.status_code == 400
    assert response.json() == {"origin": [DENIED]}
    assert list(AllowedOrigin.objects.values_list("origin", "effect")) == [(APP, "deny")]


PAST_EXPIRY = (
    "This expiry is in the past: the entry would never match. Give a later date and time, or leave it "
    "empty to never expire."
)


def test_an_origin_created_already_expired_is_400(full_client):
    response = full_client.post(
        API + "origins/", {"origin": APP, "expires_at": "2020-01-01T00:00:00Z"}, format="json"
    )
    assert response.status_code == 400
    assert response.json() == {"expires_at": [PAST_EXPIRY]}
    assert not AllowedOrigin.objects.exists()


def test_setting_a_past_expiry_on_update_is_400_and_changes_nothing(full_client):
    entry = AllowedOrigin.objects.create(origin=APP)
    response = full_client.patch(
        API + f"origins/{entry.pk}/", {"expires_at": "2020-01-01T00:00:00Z"}, format="json"
    )
    assert response.status_code == 400
    assert response.json() == {"expires_at": [PAST_EXPIRY]}
    entry.refresh_from_db()
    assert entry.expires_at is None


def test_same_origin_in_two_policies_is_fine(full_client):
    Policy.objects.create(name="api")
    AllowedOrigin.objects.create(origin=APP)
    response = full_client.post(API + "origins/", {"origin": APP, "policy": "api"}, format="json")
    assert response.status_code == 201
    LogEntry.objects.all().delete()


POLICY_BODIES = [
    ({"name": "bad name"}, "name"),
    ({"name": 5}, "name"),
    ({"name": "p", "url_regex": True}, "url_regex"),
    ({"name": "x" * 65}, "name"),
    ({"name": "default"}, "name"),
    ({}, "name"),
    ({"name": "p", "url_regex": "(unclosed"}, "url_regex"),
    ({"name": "p", "url_regex": "x" * 513}, "url_regex"),
    ({"name": "p", "allow_methods": "GET"}, "allow_methods"),
    ({"name": "p", "allow_methods": [1, 2]}, "allow_methods"),
    ({"name": "p", "allow_methods": [None]}, "allow_methods"),
    ({"name": "p", "allow_headers": ["\ud800"]}, "allow_headers"),
    ({"name": "p", "allow_methods": ["GET POST"]}, "allow_methods"),
    ({"name": "p", "allow_methods": ["x" * 200]}, "allow_methods"),
    ({"name": "p", "allow_methods": ["GET"] * 101}, "allow_methods"),
    ({"name": "p", "allow_headers": {"a": 1}}, "allow_headers"),
    ({"name": "p", "allow_headers": ["bad header"]}, "allow_headers"),
    ({"name": "p", "expose_headers": ["x:y"]}, "expose_headers"),
    ({"name": "p", "max_age": -1}, "max_age"),
    ({"name": "p", "max_age": "soon"}, "max_age"),
    ({"name": "p", "max_age": 2**40}, "max_age"),
    ({"name": "p", "priority": 2**63}, "priority"),
    ({"name": "p", "priority": 1.5}, "priority"),
    ({"name": "p", "enabled": "maybe"}, "enabled"),
    ({"name": "p", "note": "x" * 2001}, "note"),
    ({"name": "p", "allow_all_origins": True, "allow_credentials": True}, "non_field_errors"),
]


@pytest.mark.parametrize("body, field", POLICY_BODIES, ids=[repr(b)[:50] for b, _ in POLICY_BODIES])
def test_bad_policy_body_is_400(full_client, body, field):
    response = full_client.post(API + "policies/", json.dumps(body), content_type="application/json")
    assert response.status_code == 400, response.content
    assert field in response.json()
    assert Policy.objects.count() == 1


def test_all_origins_with_credentials_message(full_client):
    response = full_client.post(
        API + "policies/", {"name": "p", "allow_all_origins": True, "allow_credentials": True}, format="json"
    )
    assert "cannot allow all origins and credentials" in response.json()["non_field_errors"][0]


def test_all_origins_with_credentials_refused_on_patch(full_client):
    Policy.objects.filter(name="default").update(allow_all_origins=True)
    response = full_client.patch(API + "policies/default/", {"allow_credentials": True}, format="json")
    assert response.status_code == 400
    assert Policy.objects.get(name="default").allow_credentials is False


def test_token_list_message(full_client):
    response = full_client.post(
        API + "policies/", {"name": "p", "allow_methods": ["GET POST"]}, format="json"
    )
    assert "'GET POST' is not a valid method" in response.json()["allow_methods"][0]


@pytest.mark.parametrize(
    "content_type, body",
    [
        ("application/json", "{not json"),
        ("application/json", '{"origin": "https://a.example.com"'),
        ("application/json", "[1, 2]"),
        ("application/json", '"text"'),
        ("application/json", "null"),
        ("application/json", "\xff\xfe"),
    ],
)
def test_malformed_body_is_400(full_client, content_type, body):
    response = full_client.post(API + "origins/", body, content_type=content_type)
    assert response.status_code == 400
    assert not AllowedOrigin.objects.exists()


def test_unsupported_media_type_is_415(full_client):
    response = full_client.post(API + "origins/", "origin: x", content_type="text/yaml")
    assert response.status_code == 415


@pytest.mark.parametrize(
    "query, field",
    [
        ("", "origin"),
        ("?origin=", "origin"),
        ("?origin=" + "a" * 3000, "origin"),
        ("?origin=https://a.example.com&path=nope", "path"),
        ("?origin=https://a.example.com&method=GE T", "method"),
        ("?origin=https://a.example.com&private_network=maybe", "private_network"),
    ],
)
def test_bad_check_query_is_400(reader_client, query, field):
    response = reader_client.get(API + "check/" + query)
    assert response.status_code == 400
    assert field in response.json()


def test_bad_replace_flag_is_400(full_client):
    response = full_client.post(API + "import/?replace=maybe", {"version": 1, "policies": []}, format="json")
    assert response.status_code == 400
    assert "replace" in response.json()


# --- a NUL character: in no name, and refused by PostgreSQL in a query (a 500 before) ---------


def test_an_origin_naming_a_policy_with_a_nul_is_400_no_such_policy(full_client):
    response = full_client.post(
        API + "origins/", {"origin": "https://nul.example.com", "policy": "a\x00b"}, format="json"
    )
    assert response.status_code == 400
    assert response.json() == {"policy": ["There is no policy named 'a\\u0000b'."]}
    assert not AllowedOrigin.objects.filter(origin="https://nul.example.com").exists()


def test_a_policy_address_with_a_nul_is_a_json_404(full_client):
    response = full_client.get(API + "policies/a%00b/")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
