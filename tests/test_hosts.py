"""Per-host policies: ``hosts`` validation, and which policies apply to a request's Host.

The decision table runs each row through the middleware's sync and async paths.
"""

from __future__ import annotations

import io

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.db.models import QuerySet

from corsadmin.diagnosis import explain
from corsadmin.host_index import HostIndex
from corsadmin.hosts import canonical_host, clean_hosts
from corsadmin.loader import load_snapshot
from corsadmin.models import AllowedOrigin, Policy

from .cors_helpers import cors_headers, vary
from .twin_requests import PATHS, pinned, send  # noqa: F401  (pinned is a fixture)

APP = "https://app.example.com"
OTHER = "https://other.example.com"

# --- validation ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "canonical"),
    [
        ("api.example.com", "api.example.com"),
        ("API.Example.COM", "api.example.com"),
        ("*.Example.org", "*.example.org"),
        ("bücher.de", "xn--bcher-kva.de"),
        ("*.bücher.de", "*.xn--bcher-kva.de"),
        ("127.0.0.1", "127.0.0.1"),
        ("[0:0::1]", "[::1]"),
        ("localhost", "localhost"),
    ],
)
def test_canonical_host(value, canonical):
    assert canonical_host(value) == canonical


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("api.example.com:8000", "has a port"),
        ("[::1]:8000", "port"),
        ("https://api.example.com", "leave out the scheme"),
        ("api.example.com/x", "leave out the scheme and any path"),
        ("*", "leave the list empty for every host"),
        ("", "empty"),
        ("a..example.com", "empty label"),
        ("api.example.com.", "trailing dot"),
        ("*.192.0.2.1", "wildcard on an IP"),
        ("a*.example.com", "'*' inside the host"),
        ("ex ample.com", "whitespace"),
        ("-bad.example.com", "not a valid host name"),
        (3, "must be text"),
    ],
)
def test_bad_hosts_are_refused_with_a_clear_message(value, words):
    with pytest.raises(ValidationError) as caught:
        canonical_host(value)
    assert words in caught.value.messages[0]


def test_hosts_are_deduplicated_in_order():
    assert clean_hosts(["B.example.com", "a.example.com", "b.example.com"]) == [
        "b.example.com",
        "a.example.com",
    ]


@pytest.mark.django_db
def test_a_policy_stores_its_hosts_canonical():
    policy = Policy.objects.create(name="api", hosts=["API.example.com", "*.Bücher.de"])
    policy.refresh_from_db()
    assert policy.hosts == ["api.example.com", "*.xn--bcher-kva.de"]


@pytest.mark.django_db
def test_a_policy_with_a_bad_host_is_not_saved():
    with pytest.raises(ValidationError) as caught:
        Policy.objects.create(name="api", hosts=["api.example.com:443"])
    assert list(caught.value.message_dict) == ["hosts"]
    assert not Policy.objects.filter(name="api").exists()


@pytest.mark.django_db
def test_a_policy_with_hosts_written_around_validation_is_ignored_not_widened(caplog):
    Policy.objects.create(name="api", hosts=["api.example.com"], priority=5)
    QuerySet(Policy).filter(name="api").update(hosts=["bad host:1"])  # around validation
    AllowedOrigin.objects.create(origin=APP, policy=Policy.objects.get(name="api"))
    snapshot = load_snapshot()
    assert (
        [p.name for p in snapshot.policies],
        snapshot.decide(APP, "/", host="api.example.com").allowed,
    ) == (["default"], False)


# --- the decision ------------------------------------------------------------------------


def per_host() -> None:
    Policy.objects.create(name="api", hosts=["api.example.com"], priority=5)
    AllowedOrigin.objects.create(origin=APP, policy=Policy.objects.get(name="api"))
    AllowedOrigin.objects.create(origin=OTHER)  # default: every host


def per_wildcard_host() -> None:
    Policy.objects.create(name="org", hosts=["*.example.org"])
    AllowedOrigin.objects.create(origin=APP, policy=Policy.objects.get(name="org"))
    Policy.objects.filter(name="default").update(enabled=False)


def host_only_policy() -> None:
    Policy.objects.filter(name="default").update(enabled=False)
    Policy.objects.create(name="api", hosts=["api.example.com"])


ALLOWED = {"Access-Control-Allow-Origin": APP}

# name: (set-up, Host, origin, expected Access-Control-* headers, Vary: Origin?)
CASES = {
    "its host": (per_host, "api.example.com", APP, ALLOWED, True),
    "its host with a port": (per_host, "api.example.com:8443", APP, ALLOWED, True),
    "its host in capitals": (per_host, "API.EXAMPLE.COM", APP, ALLOWED, True),
    "another host": (per_host, "www.example.com", APP, {}, True),
    "a subdomain of its host": (per_host, "x.api.example.com", APP, {}, True),
    "every-host policies still apply on its host": (
        per_host,
        "api.example.com",
        OTHER,
        {"Access-Control-Allow-Origin": OTHER},
        True,
    ),
    "a wildcard host: one label below": (per_wildcard_host, "a.example.org", APP, ALLOWED, True),
    "a wildcard host: two labels below": (per_wildcard_host, "a.b.example.org", APP, ALLOWED, True),
    "a wildcard host: not its base": (per_wildcard_host, "example.org", APP, {}, False),
    "a wildcard host: not a look-alike": (per_wildcard_host, "evil-example.org", APP, {}, False),
    "a host-only policy does not cover other hosts": (host_only_policy, "www.example.com", APP, {}, False),
}


@pytest.mark.django_db
@pytest.mark.parametrize("twin", PATHS)
@pytest.mark.parametrize("name", list(CASES))
def test_decision_table(name, twin, pinned):  # noqa: F811
    setup, host, origin, expected, varies = CASES[name]
    setup()
    pinned()
    response = send(twin, origin, host=host)
    assert (cors_headers(response), "Origin" in vary(response)) == (expected, varies)


@pytest.mark.django_db
@pytest.mark.parametrize("twin", PATHS)
def test_a_disallowed_host_is_no_host_not_a_500(twin, pinned, settings):  # noqa: F811
    settings.ALLOWED_HOSTS = ["good.example"]
    per_host()
    pinned()
    refused_by_host = send(twin, APP, host="api.example.com")  # not in ALLOWED_HOSTS
    allowed_everywhere = send(twin, OTHER, host="api.example.com")
    assert (refused_by_host.status_code, cors_headers(refused_by_host)) == (200, {})
    assert cors_headers(allowed_everywhere) == {"Access-Control-Allow-Origin": OTHER}


@pytest.mark.django_db
def test_the_host_is_part_of_the_remembered_decision():
    per_host()
    snapshot = load_snapshot()
    answers = [
        snapshot.decide(APP, "/", host=h).allowed for h in ("api.example.com", None, "api.example.com")
    ]
    assert answers == [True, False, True]


@pytest.mark.django_db
def test_the_host_is_not_read_when_no_policy_names_one(pinned, monkeypatch):  # noqa: F811
    AllowedOrigin.objects.create(origin=APP)
    pinned()
    monkeypatch.setattr("corsadmin.middleware.request_host", lambda request: pytest.fail("host read"))
    assert cors_headers(send("sync", APP)) == ALLOWED


def test_the_host_index_returns_policies_in_order_and_is_bounded(monkeypatch):
    monkeypatch.setattr(HostIndex, "MEMO_SIZE", 2)
    items = ["a", "b", "c", "d"]
    hosts = {"a": ["*.example.com"], "b": [], "c": ["x.example.com"], "d": ["other.example"]}
    index = HostIndex(items, hosts.get)
    assert [index.get(h) for h in ("x.example.com", "y.example.com", None, "other.example", "z.example")] == [
        ("a", "b", "c"),
        ("a", "b"),
        ("b",),
        ("b", "d"),
        ("b",),
    ]
    assert len(index._memo) <= 2


# --- check, API, CLI ------------------------------------------------------------------------


@pytest.mark.django_db
def test_check_with_and_without_the_host():
    per_host()
    with_host, without = explain(APP, "/", host="api.example.com"), explain(APP, "/")
    assert (with_host["allowed"], with_host["policy"], without["allowed"]) == (True, "api", False)
    assert "applies only to the host(s) api.example.com (no host was given)" in without["reason"]


@pytest.mark.django_db
def test_api_check_takes_a_host_with_a_port(admin_client):
    per_host()
    body = admin_client.get("/api/cors/check/", {"origin": APP, "host": "API.example.com:8000"}).json()
    assert (body["allowed"], body["host"]) == (True, "api.example.com")


@pytest.mark.django_db
def test_api_check_refuses_a_bad_host(admin_client):
    response = admin_client.get("/api/cors/check/", {"origin": APP, "host": "*.example.com"})
    assert (response.status_code, list(response.json())) == (400, ["host"])


@pytest.mark.django_db
def test_api_policy_hosts_round_trip_and_refusal(admin_client):
    created = admin_client.post(
        "/api/cors/policies/", {"name": "api", "hosts": ["API.example.com"]}, content_type="application/json"
    )
    refused = admin_client.post(
        "/api/cors/policies/",
        {"name": "bad", "hosts": ["api.example.com:80"]},
        content_type="application/json",
    )
    assert (created.status_code, created.json()["hosts"], created.json()["mode"]) == (
        201,
        ["api.example.com"],
        "enforce",
    )
    assert refused.status_code == 400 and "port" in refused.json()["hosts"][0]
    assert not Policy.objects.filter(name="bad").exists()


@pytest.mark.django_db
def test_cli_policy_hosts_and_check_host():
    out = io.StringIO()
    call_command("cors", "policy", "add", "api", "--hosts", "api.example.com,*.example.org", stdout=out)
    call_command("cors", "add", APP, "--policy", "api", stdout=out)
    assert Policy.objects.get(name="api").hosts == ["api.example.com", "*.example.org"]
    call_command("cors", "check", APP, "--host", "a.example.org", stdout=out)  # exit 0: allowed
    with pytest.raises(CommandError) as refused:
        call_command("cors", "check", APP, "--host", "www.example.com", stdout=out)
    assert refused.value.returncode == 1


@pytest.mark.django_db
def test_cli_refuses_a_bad_policy_host_and_changes_nothing():
    with pytest.raises(CommandError) as refused:
        call_command(
            "cors", "policy", "add", "api", "--hosts", "https://api.example.com", stdout=io.StringIO()
        )
    assert (refused.value.returncode, Policy.objects.filter(name="api").exists()) == (2, False)
    assert str(refused.value).startswith("hosts")


@pytest.mark.django_db
def test_check_warns_about_a_policy_host_allowed_hosts_refuses(settings):
    from corsadmin.checks import check_policy_hosts

    settings.ALLOWED_HOSTS = ["api.example.com", ".example.org"]
    Policy.objects.create(
        name="api", hosts=["api.example.com", "www.example.com", "a.example.org", "*.x.example"]
    )
    messages = check_policy_hosts(databases=["default"])
    assert [(m.id, "'www.example.com'" in m.msg) for m in messages] == [("corsadmin.W008", True)]
    assert check_policy_hosts(databases=None) == []


@pytest.mark.django_db
def test_the_validated_host_is_remembered_until_allowed_hosts_change(pinned, settings):  # noqa: F811
    per_host()
    pinned()
    assert cors_headers(send("sync", APP, host="api.example.com")) == ALLOWED
    settings.ALLOWED_HOSTS = ["other.example"]
    assert cors_headers(send("sync", APP, host="api.example.com")) == {}


@pytest.mark.django_db
def test_admin_policy_form_saves_hosts_and_mode(admin_client):
    from .test_admin import policy_form

    admin_client.post(
        "/admin/corsadmin/policy/add/",
        policy_form(name="api", hosts="API.example.com, *.example.org", mode="report"),
    )
    policy = Policy.objects.get(name="api")
    assert (policy.hosts, policy.mode) == (["api.example.com", "*.example.org"], "report")


@pytest.mark.django_db
def test_admin_policy_form_shows_a_bad_host_and_saves_nothing(admin_client):
    from .test_admin import policy_form

    response = admin_client.post(
        "/admin/corsadmin/policy/add/", policy_form(name="api", hosts="api.example.com:80")
    )
    assert "has a port" in response.content.decode()
    assert not Policy.objects.filter(name="api").exists()
