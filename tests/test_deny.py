"""Exceptions: a deny entry refuses its origin in its policy, whatever else that policy allows.

A decision table, each row through the middleware's sync and async paths (exact
``Access-Control-*`` headers), then the explanation (check) naming the exception.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from corsadmin.diagnosis import explain
from corsadmin.loader import load_snapshot
from corsadmin.models import AllowedOrigin, Policy

from .cors_helpers import cors_headers, vary
from .twin_requests import PATHS, pinned, send  # noqa: F401  (pinned is a fixture)

pytestmark = pytest.mark.django_db

UC = "https://usercontent.example.com"
APP = "https://app.example.com"


def entries(*rows: tuple[str, str], policy: str = "default", **entry: Any) -> None:
    target = Policy.objects.get(name=policy)
    for origin, effect in rows:
        AllowedOrigin.objects.create(origin=origin, effect=effect, policy=target, **entry)


def allow_all() -> None:
    Policy.objects.filter(name="default").update(allow_all_origins=True)


def wildcard_with_exception() -> None:
    entries(("https://*.example.com", "allow"), (UC, "deny"))


def exact_allowed_wildcard_denied() -> None:
    entries((APP, "allow"), ("https://*.example.com", "deny"))


def allow_all_with_exception() -> None:
    allow_all()
    entries((UC, "deny"))


def allow_all_denying_local_ports() -> None:
    allow_all()
    entries(("http://localhost:*", "deny"))


def allow_all_denying_null() -> None:
    allow_all()
    entries(("null", "deny"))


def denied_first_allowed_below() -> None:
    Policy.objects.create(name="strict", url_regex="^/demo/", priority=10)
    # With an allow entry of its own: a policy that allows nothing covers nothing.
    entries((UC, "deny"), (APP, "allow"), policy="strict")
    entries((UC, "allow"))


def disabled_exception() -> None:
    entries(("https://*.example.com", "allow"))
    entries((UC, "deny"), enabled=False)


def expired_exception() -> None:
    entries(("https://*.example.com", "allow"))
    entries((UC, "deny"), expires_at=timezone.now() - timedelta(seconds=1))


def exception_elsewhere() -> None:
    Policy.objects.create(name="other", url_regex="^/elsewhere/", priority=10)
    entries((UC, "deny"), policy="other")
    entries(("https://*.example.com", "allow"))


# name: (set-up, origin, expected Access-Control-* headers)
CASES = {
    "deny beats a wildcard allowing it": (wildcard_with_exception, UC, {}),
    "the wildcard still allows the others": (
        wildcard_with_exception,
        APP,
        {"Access-Control-Allow-Origin": APP},
    ),
    "a deny wildcard beats an exact allow": (exact_allowed_wildcard_denied, APP, {}),
    "deny beats allow_all_origins": (allow_all_with_exception, UC, {}),
    "allow_all_origins still allows the others": (
        allow_all_with_exception,
        APP,
        {"Access-Control-Allow-Origin": "*"},
    ),
    "a port-wildcard deny refuses every port": (allow_all_denying_local_ports, "http://localhost:3000", {}),
    "a port-wildcard deny refuses the default port": (allow_all_denying_local_ports, "http://localhost", {}),
    "a deny of null refuses null": (allow_all_denying_null, "null", {}),
    "a lower policy may still allow": (denied_first_allowed_below, UC, {"Access-Control-Allow-Origin": UC}),
    "a disabled exception refuses nothing": (disabled_exception, UC, {"Access-Control-Allow-Origin": UC}),
    "an expired exception refuses nothing": (expired_exception, UC, {"Access-Control-Allow-Origin": UC}),
    "an exception on other paths refuses nothing here": (
        exception_elsewhere,
        UC,
        {"Access-Control-Allow-Origin": UC},
    ),
}


@pytest.mark.parametrize("twin", PATHS)
@pytest.mark.parametrize("name", list(CASES))
def test_decision_table(name, twin, pinned):  # noqa: F811
    setup, origin, expected = CASES[name]
    setup()
    pinned()
    response = send(twin, origin)
    assert (cors_headers(response), vary(response)) == (expected, ["Origin"])


def test_check_names_the_exception_that_refused():
    wildcard_with_exception()
    result = explain(UC, "/demo/echo/")
    assert (result["allowed"], result["policy"], result["matched"], result["effect"]) == (
        False,
        "default",
        UC,
        "deny",
    )
    assert result["reason"].startswith(
        f"Refused: policy 'default' refuses it by its exception (deny entry) '{UC}'"
    )


def test_check_of_an_allowed_origin_has_effect_allow_and_no_exception():
    wildcard_with_exception()
    result = explain(APP, "/demo/echo/")
    assert (result["allowed"], result["matched"], result["effect"], result["exception"]) == (
        True,
        "https://*.example.com",
        "allow",
        None,
    )


def test_check_tells_the_exception_a_lower_policy_overruled():
    denied_first_allowed_below()
    result = explain(UC, "/demo/echo/")
    assert (result["allowed"], result["policy"], result["exception"]) == (
        True,
        "default",
        {"policy": "strict", "origin": UC},
    )


def test_an_expiring_exception_is_not_remembered_past_its_expiry(monkeypatch):
    entries(("https://*.example.com", "allow"))
    entries((UC, "deny"), expires_at=timezone.now() + timedelta(hours=1))
    snapshot = load_snapshot()
    assert not snapshot.decide(UC, "/").allowed
    later = timezone.now().timestamp() + 7200
    monkeypatch.setattr("corsadmin.snapshot.time.time", lambda: later)
    assert snapshot.decide(UC, "/").allowed


# --- validation ------------------------------------------------------------------------


def test_a_deny_entry_cannot_be_csrf_trusted():
    entry = AllowedOrigin(
        origin=UC, effect="deny", csrf_trusted=True, policy=Policy.objects.get(name="default")
    )
    with pytest.raises(ValidationError) as caught:
        entry.full_clean()
    assert list(caught.value.message_dict) == ["csrf_trusted"]


def test_a_deny_entry_cannot_be_saved_csrf_trusted_around_full_clean():
    with pytest.raises(ValidationError):
        AllowedOrigin.objects.create(origin=UC, effect="deny", csrf_trusted=True)
    assert not AllowedOrigin.objects.exists()


def test_an_unknown_effect_is_refused_on_save():
    with pytest.raises(ValidationError):
        AllowedOrigin.objects.create(origin=UC, effect="block")


def test_a_deny_wildcard_on_a_public_suffix_is_refused_like_an_allow():
    entry = AllowedOrigin(
        origin="https://*.github.io", effect="deny", policy=Policy.objects.get(name="default")
    )
    with pytest.raises(ValidationError) as caught:
        entry.full_clean()
    assert "public suffix" in caught.value.message_dict["origin"][0]


def test_denying_null_is_fine_on_a_credentials_policy():
    policy = Policy.objects.create(name="creds", allow_credentials=True)
    AllowedOrigin(origin="null", effect="deny", policy=policy).full_clean()


# --- CSRF ----------------------------------------------------------------------------


def test_an_exception_is_not_csrf_trusted_through_its_policys_wildcard():
    entries(("https://*.example.com", "allow"), csrf_trusted=True)
    entries((UC, "deny"))
    snapshot = load_snapshot()
    assert (snapshot.csrf_trusts(APP, "/"), snapshot.csrf_trusts(UC, "/")) == (True, False)


def test_an_exception_in_one_policy_leaves_another_policys_trust():
    Policy.objects.create(name="other")
    entries((UC, "allow"), policy="other", csrf_trusted=True)
    entries(("https://*.example.com", "allow"), (UC, "deny"))
    assert load_snapshot().csrf_trusts(UC, "/") is True


# --- API, CLI, admin, history ---------------------------------------------------------


def test_api_adds_an_exception_and_lists_it_by_effect(admin_client):
    added = admin_client.post(
        "/api/cors/origins/", {"origin": UC, "effect": "deny"}, content_type="application/json"
    )
    listed = admin_client.get("/api/cors/origins/?effect=deny").json()
    assert (added.status_code, added.json()["effect"]) == (201, "deny")
    assert [row["origin"] for row in listed["results"]] == [UC]


def test_api_refuses_a_csrf_trusted_exception_and_adds_nothing(admin_client):
    response = admin_client.post(
        "/api/cors/origins/",
        {"origin": UC, "effect": "deny", "csrf_trusted": True},
        content_type="application/json",
    )
    assert (response.status_code, list(response.json())) == (400, ["csrf_trusted"])
    assert not AllowedOrigin.objects.exists()


def test_api_refuses_an_unknown_effect(admin_client):
    response = admin_client.post(
        "/api/cors/origins/", {"origin": UC, "effect": "block"}, content_type="application/json"
    )
    assert (response.status_code, list(response.json())) == (400, ["effect"])


def test_cli_add_deny_and_effect():
    import io

    from django.core.management import call_command

    out = io.StringIO()
    call_command("cors", "add", UC, "--deny", stdout=out)
    call_command("cors", "add", APP, "--effect", "deny", stdout=out)
    assert set(AllowedOrigin.objects.values_list("origin", "effect")) == {(UC, "deny"), (APP, "deny")}
    assert f"Added an exception (deny) for {UC} to policy 'default'" in out.getvalue()


@pytest.mark.parametrize(
    "args", [("--deny", "--effect", "allow"), ("--effect", "block"), ("--deny", "--csrf-trusted")]
)
def test_cli_add_refuses_contradictions_and_changes_nothing(args):
    from django.core.management import CommandError, call_command

    with pytest.raises(CommandError) as refused:
        call_command("cors", "add", UC, *args)
    assert (refused.value.returncode, AllowedOrigin.objects.exists()) == (2, False)


def test_admin_adds_an_exception(admin_client):
    policy = Policy.objects.get(name="default")
    admin_client.post(
        "/admin/corsadmin/allowedorigin/add/",
        {"origin": UC, "policy": policy.pk, "effect": "deny", "enabled": "on", "note": ""},
    )
    assert AllowedOrigin.objects.get().effect == "deny"


def test_turning_an_entry_into_an_exception_is_in_the_history(admin_client):
    from .test_history import last_change

    entry = AllowedOrigin.objects.create(origin=UC)
    admin_client.patch(f"/api/cors/origins/{entry.pk}/", {"effect": "deny"}, content_type="application/json")
    assert last_change() == ("Changed Effect.", "Effect: allow → deny")
