"""Origin leases: their patterns and durations, ``manage.py cors token`` and the admin."""

from __future__ import annotations

import json

import pytest
from django.core.exceptions import ValidationError
from rest_framework.test import APIClient

from corsadmin import leases
from corsadmin.lease_patterns import parse_duration, parse_pattern
from corsadmin.models import LeaseToken, Policy

from .api_fixtures import API
from .cli_runner import run_cors

PATTERN = "https://pr-*.preview.example.com"
CHANGELIST = "/admin/corsadmin/leasetoken/"


@pytest.fixture
def previews(db):
    return Policy.objects.create(name="previews", url_regex="^/")


# --- patterns and durations (no database) --------------------------------------------------


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        (PATTERN, PATTERN),
        ("HTTPS://PR-*.Preview.Example.COM:443", PATTERN),
        ("https://*.preview.example.com", "https://*.preview.example.com"),
        ("http://*-app.example.com:8080", "http://*-app.example.com:8080"),
        ("https://app.example.com", "https://app.example.com"),
    ],
)
def test_pattern_canonical(text, canonical):
    assert parse_pattern(text).text == canonical


@pytest.mark.parametrize(
    "text",
    [
        "https://a.pr-*.example.com",  # not in the first label
        "https://pr-*",  # no labels below it
        "https://pr-*-*.example.com",  # two stars
        "https://pr_*.example.com",  # not a label's character beside it
        "https://pr-*.com",  # a public suffix below it
        "https://pr-*.github.io",
        "https://pr-*.example.com/path",
        "ftp://pr-*.example.com",
        "http://pr-*.example.com:*",
        "null",
        "",
    ],
)
def test_pattern_refused(text):
    with pytest.raises(ValidationError):
        parse_pattern(text)


@pytest.mark.parametrize(
    ("origin", "matches"),
    [
        ("https://pr-12.preview.example.com", True),
        ("https://pr-feature-x.preview.example.com", True),
        ("https://pr-1.x.preview.example.com", False),  # the star is one label's part only
        ("https://pr-.preview.example.com", False),
        ("https://preview.example.com", False),
        ("http://pr-12.preview.example.com", False),
        ("https://pr-12.preview.example.com:8443", False),
        ("https://pr-12.preview.example.com.evil.com", False),
    ],
)
def test_pattern_matches(origin, matches):
    assert parse_pattern(PATTERN).matches(origin) is matches


@pytest.mark.parametrize(("text", "seconds"), [("7d", 604800), ("12h", 43200), ("30m", 1800), ("3600", 3600)])
def test_duration(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "7w", "1d2h", "-5", "59", "367d", "1.5h"])
def test_duration_refused(text):
    with pytest.raises(ValidationError):
        parse_duration(text)


# --- manage.py cors token ------------------------------------------------------------------


@pytest.mark.django_db
def test_cli_create_prints_a_working_key_last(previews):
    ran = run_cors(
        "token", "create", "ci-previews", "--policy", "previews", "--pattern", PATTERN, "--max-ttl", "7d"
    )
    assert ran.returncode == 0
    key = ran.stdout.splitlines()[-1]
    lease = LeaseToken.objects.get(name="ci-previews")
    assert (lease.policy, lease.pattern, lease.max_ttl) == (previews, PATTERN, 604800)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    response = client.post(API + "origins/", {"origin": "https://pr-1.preview.example.com"}, format="json")
    assert response.status_code == 201


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("--policy", "nope", "--pattern", PATTERN, "--max-ttl", "7d"),
            "policy: There is no policy named 'nope'.",
        ),
        (("--policy", "previews", "--pattern", "https://a.pr-*.x.com", "--max-ttl", "7d"), "pattern: "),
        (
            ("--policy", "previews", "--pattern", PATTERN, "--max-ttl", "7w"),
            "max_ttl: '7w' is not a duration",
        ),
        (("--policy", "previews", "--pattern", PATTERN, "--max-ttl", "30s"), "max_ttl: A lease's maximum"),
    ],
    ids=["policy", "pattern", "duration", "too-short"],
)
def test_cli_create_bad_input(previews, args, message):
    ran = run_cors("token", "create", "ci-previews", *args)
    assert ran.returncode == 2
    assert ran.stderr.startswith("CommandError: " + message)
    assert len(ran.stderr.strip().splitlines()) == 1
    assert not LeaseToken.objects.exists()


@pytest.mark.django_db
def test_cli_create_a_taken_name(previews):
    leases.create("ci-previews", previews, PATTERN, 3600)
    ran = run_cors(
        "token", "create", "ci-previews", "--policy", "previews", "--pattern", PATTERN, "--max-ttl", "1h"
    )
    assert (ran.returncode, ran.stderr.strip()) == (
        2,
        "CommandError: name: There is already a lease named 'ci-previews'.",
    )
    assert LeaseToken.objects.count() == 1


@pytest.mark.django_db
def test_cli_list_never_shows_keys(previews):
    _, key = leases.create("ci-previews", previews, PATTERN, 604800)
    ran = run_cors("token", "list", "--json")
    rows = json.loads(ran.stdout)
    assert [
        (row["name"], row["policy"], row["pattern"], row["max_ttl"], row["revoked_at"]) for row in rows
    ] == [("ci-previews", "previews", PATTERN, 604800, None)]
    assert key not in ran.stdout
    assert key not in run_cors("token", "list").stdout


@pytest.mark.django_db
def test_cli_revoke(previews):
    _, key = leases.create("ci-previews", previews, PATTERN, 604800)
    ran = run_cors("token", "revoke", "ci-previews")
    assert (ran.returncode, ran.stdout.strip()) == (
        0,
        "Revoked lease ci-previews: its key is refused from now on.",
    )
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert client.get(API + "origins/").status_code == 401


@pytest.mark.django_db
def test_cli_revoke_unknown(previews):
    ran = run_cors("token", "revoke", "nope")
    assert (ran.returncode, ran.stderr.strip()) == (2, "CommandError: There is no lease named 'nope'.")


# --- the admin ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_admin_creates_and_shows_the_key_once(admin_client, previews):
    data = {"name": "ci-previews", "policy": previews.pk, "pattern": PATTERN, "max_ttl": "7d"}
    response = admin_client.post(CHANGELIST + "add/", data, follow=True)
    lease = LeaseToken.objects.get(name="ci-previews")
    shown = [str(m) for m in response.context["messages"] if "shown only now" in str(m)]
    assert len(shown) == 1
    key = shown[0].split("Authorization: Token ")[1].rstrip("”.")
    assert leases.find(key) == lease
    assert (lease.max_ttl, lease.created_by.get_username()) == (604800, "admin")
    assert key not in admin_client.get(CHANGELIST).content.decode()
    assert key not in admin_client.get(f"{CHANGELIST}{lease.pk}/change/").content.decode()


@pytest.mark.django_db
def test_admin_refuses_a_bad_pattern(admin_client, previews):
    data = {"name": "ci-previews", "policy": previews.pk, "pattern": "https://pr-*.com", "max_ttl": "7d"}
    response = admin_client.post(CHANGELIST + "add/", data)
    assert response.status_code == 200
    assert (
        response.context["adminform"].form.errors["pattern"][0].startswith("'https://pr-*.com' would lease")
    )
    assert not LeaseToken.objects.exists()


@pytest.mark.django_db
def test_admin_lists_leases(admin_client, previews):
    leases.create("ci-previews", previews, PATTERN, 604800)
    content = admin_client.get(CHANGELIST).content.decode()
    assert "ci-previews" in content
    assert PATTERN in content


@pytest.mark.django_db
def test_admin_revokes(admin_client, previews):
    lease, key = leases.create("ci-previews", previews, PATTERN, 604800)
    response = admin_client.post(
        CHANGELIST, {"action": "revoke", "_selected_action": [lease.pk]}, follow=True
    )
    assert response.status_code == 200
    assert LeaseToken.objects.get(pk=lease.pk).revoked
    assert leases.find(key) is None
