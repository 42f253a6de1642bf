"""The dangerous is refused at write time, by the model, so every writer refuses it.

Tables through the model's write paths (``full_clean`` as the admin's form calls it,
``save``, ``bulk_create``, ``QuerySet.update``), then one check each through the
REST API and the command line:

- a wildcard whose base is a public suffix (``*.com``, ``*.co.uk``, ``*.github.io``);
- ``allow_all_origins`` with ``allow_credentials`` (also a database constraint);
- ``null`` on a policy that allows credentials, unless
  ``CORSADMIN["ALLOW_NULL_WITH_CREDENTIALS"]`` says it is meant (and, written around
  validation, not honoured by the snapshot either);
- a plain ``http://`` entry on a credentials policy: allowed, with a warning.
"""

from __future__ import annotations

import io
import json

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.db import IntegrityError, connection, transaction

from corsadmin.models import NULL_CSRF_TRUSTED, AllowedOrigin, Policy
from corsadmin.refresh import holder
from tests.api_fixtures import API

pytestmark = pytest.mark.django_db


@pytest.fixture
def credentials_policy():
    return Policy.objects.create(name="creds", url_regex="^/api/", allow_credentials=True)


@pytest.fixture
def open_policy():
    return Policy.objects.create(name="open", url_regex="^/public/")


def refused(write) -> str:
    """Run a write that must be refused; the one message it gives."""
    with pytest.raises(ValidationError) as info, transaction.atomic():
        write()
    return " ".join(info.value.messages)


# --- wildcards on a public suffix --------------------------------------------------------------

PUBLIC_SUFFIX_WILDCARDS = [
    ("https://*.com", "com"),
    ("https://*.co.uk", "co.uk"),
    ("https://*.github.io", "github.io"),
    ("https://*.s3.amazonaws.com", "s3.amazonaws.com"),
    ("HTTPS://*.COM:443", "com"),
    ("https://*.ｃｏｍ", "com"),  # full-width letters fold to com
    ("https://*.рф", "xn--p1ai"),
    ("https://*.xn--p1ai", "xn--p1ai"),
    ("https://*.anything.kawasaki.jp", "anything.kawasaki.jp"),  # a "*.kawasaki.jp" rule
]

ORIGIN_WRITERS = {
    "full_clean": lambda policy, text: AllowedOrigin(policy=policy, origin=text).full_clean(),
    "save": lambda policy, text: AllowedOrigin(policy=policy, origin=text).save(),
    "create": lambda policy, text: AllowedOrigin.objects.create(policy=policy, origin=text),
    "bulk_create": lambda policy, text: AllowedOrigin.objects.bulk_create(
        [AllowedOrigin(policy=policy, origin=text)]
    ),
    "update": lambda policy, text: AllowedOrigin.objects.filter(
        pk=AllowedOrigin.objects.create(policy=policy, origin="https://placeholder.example.com").pk
    ).update(origin=text),
}


@pytest.mark.parametrize("writer", ORIGIN_WRITERS)
@pytest.mark.parametrize(("value", "suffix"), PUBLIC_SUFFIX_WILDCARDS)
def test_public_suffix_wildcard_is_refused(open_policy, writer, value, suffix):
    message = refused(lambda: ORIGIN_WRITERS[writer](open_policy, value))
    assert f"public suffix '{suffix}'" in message
    assert not AllowedOrigin.objects.filter(origin__contains="*").exists()


@pytest.mark.parametrize(
    ("value", "stored"),
    [
        ("https://*.example.com", "https://*.example.com"),
        ("https://*.example.co.uk", "https://*.example.co.uk"),
        ("https://*.myproject.github.io", "https://*.myproject.github.io"),
        ("https://*.city.kawasaki.jp", "https://*.city.kawasaki.jp"),  # a "!" exception: a real domain
        ("HTTPS://*.Example.COM:443", "https://*.example.com"),
    ],
)
def test_wildcard_below_a_public_suffix_is_stored(open_policy, value, stored):
    assert AllowedOrigin.objects.create(policy=open_policy, origin=value).origin == stored


NESTED_SUFFIX_WILDCARDS = [
    ("https://*.amazonaws.com", "amazonaws.com"),
    ("https://*.core.windows.net", "core.windows.net"),
    ("https://*.rds.amazonaws.com", "rds.amazonaws.com"),
]


@pytest.mark.parametrize("writer", ORIGIN_WRITERS)
@pytest.mark.parametrize(("value", "base"), NESTED_SUFFIX_WILDCARDS)
def test_wildcard_above_a_nested_public_suffix_is_refused(open_policy, writer, value, base):
    message = refused(lambda: ORIGIN_WRITERS[writer](open_policy, value))
    assert "would also allow sites under the public suffix '" in message
    assert f"(and others below {base}), which belong to other people" in message
    assert not AllowedOrigin.objects.filter(origin__contains="*").exists()


@pytest.mark.parametrize(
    ("stored", "origin"),
    [
        ("https://*.amazonaws.com", "https://attacker-bucket.s3.amazonaws.com"),
        ("https://*.amazonaws.com", "https://app.amazonaws.com"),
        ("https://*.core.windows.net", "https://evil.blob.core.windows.net"),
    ],
)
def test_wildcard_above_a_nested_public_suffix_written_around_validation_is_not_honoured(
    client, caplog, stored, origin
):
    """Rows written before the rule (or by raw SQL) never allow a host under another public suffix."""
    policy = Policy.objects.create(name="creds", url_regex="^/demo/", priority=5, allow_credentials=True)
    AllowedOrigin.objects.create(policy=policy, origin="https://placeholder.example.com")
    with connection.cursor() as cursor:
        cursor.execute("UPDATE corsadmin_allowedorigin SET origin = %s", [stored])
    holder.reset()
    response = client.get("/demo/echo/", HTTP_ORIGIN=origin)
    assert not response.has_header("Access-Control-Allow-Origin")
    assert f"ignoring invalid stored origin '{stored}' in policy creds" in caplog.text


def test_wildcard_below_a_nested_public_suffix_is_stored(open_policy):
    entry = AllowedOrigin.objects.create(policy=open_policy, origin="https://*.mybucket.s3.amazonaws.com")
    assert entry.origin == "https://*.mybucket.s3.amazonaws.com"


# --- allow all origins with credentials -----------------------------------------------------------

ALL_WITH_CREDENTIALS = "cannot allow all origins and credentials together"

POLICY_WRITERS = {
    "full_clean": lambda: Policy(name="p", allow_all_origins=True, allow_credentials=True).full_clean(),
    "save": lambda: Policy(name="p", allow_all_origins=True, allow_credentials=True).save(),
    "create": lambda: Policy.objects.create(name="p", allow_all_origins=True, allow_credentials=True),
    "bulk_create": lambda: Policy.objects.bulk_create(
        [Policy(name="p", allow_all_origins=True, allow_credentials=True)]
    ),
    "turn on credentials": lambda: _change(
        Policy.objects.create(name="p", allow_all_origins=True), allow_credentials=True
    ),
    "turn on all origins": lambda: _change(
        Policy.objects.create(name="p", allow_credentials=True), allow_all_origins=True
    ),
}


def _change(policy: Policy, **changes) -> None:
    for name, value in changes.items():
        setattr(policy, name, value)
    policy.save()


@pytest.mark.parametrize("writer", POLICY_WRITERS)
def test_all_origins_with_credentials_is_refused(writer):
    assert ALL_WITH_CREDENTIALS in refused(POLICY_WRITERS[writer])
    assert not Policy.objects.filter(allow_all_origins=True, allow_credentials=True).exists()


def test_all_origins_with_credentials_is_refused_by_the_database_too():
    """QuerySet.update skips model validation; the CheckConstraint still holds."""
    Policy.objects.create(name="p", allow_all_origins=True)
    with pytest.raises(IntegrityError), transaction.atomic():
        Policy.objects.filter(name="p").update(allow_credentials=True)
    assert not Policy.objects.filter(allow_all_origins=True, allow_credentials=True).exists()


# --- null on a credentials policy --------------------------------------------------------------------

NULL_WRITERS = {
    "full_clean": lambda policy: AllowedOrigin(policy=policy, origin="null").full_clean(),
    "save": lambda policy: AllowedOrigin(policy=policy, origin="NULL").save(),
    "create": lambda policy: AllowedOrigin.objects.create(policy=policy, origin="null"),
    "bulk_create": lambda policy: AllowedOrigin.objects.bulk_create(
        [AllowedOrigin(policy=policy, origin="null")]
    ),
    "disabled": lambda policy: AllowedOrigin.objects.create(policy=policy, origin="null", enabled=False),
}


@pytest.mark.parametrize("writer", NULL_WRITERS)
def test_null_on_a_credentials_policy_is_refused(credentials_policy, writer):
    message = refused(lambda: NULL_WRITERS[writer](credentials_policy))
    assert "ALLOW_NULL_WITH_CREDENTIALS" in message
    assert not AllowedOrigin.objects.filter(origin="null").exists()


@pytest.mark.parametrize("writer", ["full_clean", "save"])
def test_credentials_on_a_policy_listing_null_are_refused(open_policy, writer):
    AllowedOrigin.objects.create(policy=open_policy, origin="null")
    open_policy.allow_credentials = True
    write = open_policy.full_clean if writer == "full_clean" else open_policy.save
    assert "ALLOW_NULL_WITH_CREDENTIALS" in refused(write)
    assert not Policy.objects.get(name="open").allow_credentials


def test_null_without_credentials_is_stored(open_policy):
    assert AllowedOrigin.objects.create(policy=open_policy, origin="Null").origin == "null"


def test_null_with_credentials_is_stored_when_the_override_says_so(settings, credentials_policy, open_policy):
    settings.CORSADMIN = {**settings.CORSADMIN, "ALLOW_NULL_WITH_CREDENTIALS": True}
    AllowedOrigin(policy=credentials_policy, origin="null").full_clean()
    AllowedOrigin.objects.create(policy=credentials_policy, origin="null")
    AllowedOrigin.objects.create(policy=open_policy, origin="null")
    open_policy.allow_credentials = True
    open_policy.full_clean()
    open_policy.save()
    assert AllowedOrigin.objects.filter(origin="null", policy__allow_credentials=True).count() == 2


BYPASSES = {
    "policy update": lambda policy: Policy.objects.filter(pk=policy.pk).update(allow_credentials=True),
    "origin update": lambda policy: AllowedOrigin.objects.filter(policy=policy).update(origin="NULL"),
}


@pytest.mark.parametrize("bypass", BYPASSES)
def test_null_written_around_validation_is_not_honoured_with_credentials(client, caplog, bypass):
    """QuerySet.update (like raw SQL or loaddata) skips model validation: the snapshot refuses the pair."""
    policy = Policy.objects.create(name="creds", url_regex="^/demo/", priority=5)
    AllowedOrigin.objects.create(
        policy=policy, origin="null" if bypass == "policy update" else "https://a.example.com"
    )
    if bypass == "origin update":
        Policy.objects.filter(pk=policy.pk).update(allow_credentials=True)
    BYPASSES[bypass](policy)
    holder.reset()
    response = client.get("/demo/echo/", HTTP_ORIGIN="null")
    assert not response.has_header("Access-Control-Allow-Origin")
    assert "ignoring null in policy creds, which allows credentials" in caplog.text


def test_null_written_around_validation_is_honoured_when_the_override_says_so(client, settings):
    settings.CORSADMIN = {**settings.CORSADMIN, "ALLOW_NULL_WITH_CREDENTIALS": True}
    policy = Policy.objects.create(name="creds", url_regex="^/demo/", priority=5)
    AllowedOrigin.objects.create(policy=policy, origin="null")
    Policy.objects.filter(pk=policy.pk).update(allow_credentials=True)
    holder.reset()
    response = client.get("/demo/echo/", HTTP_ORIGIN="null")
    assert response["Access-Control-Allow-Origin"] == "null"
    assert response["Access-Control-Allow-Credentials"] == "true"


# --- http:// on a credentials policy: a warning ------------------------------------------------------


@pytest.mark.parametrize(
    ("origin", "credentials", "warned"),
    [
        ("http://app.example.com", True, True),
        ("http://localhost:*", True, True),
        ("http://*.example.com", True, True),
        ("https://app.example.com", True, False),
        ("https://*.example.com", True, False),
        ("http://app.example.com", False, False),
        ("null", False, False),
    ],
)
def test_plain_http_on_a_credentials_policy_is_stored_with_a_warning(
    credentials_policy, open_policy, origin, credentials, warned
):
    entry = AllowedOrigin.objects.create(
        policy=credentials_policy if credentials else open_policy, origin=origin
    )
    warnings = entry.warnings()
    assert bool(warnings) == warned
    if warned:
        assert origin in warnings[0] and "credentials" in warnings[0]


# --- the same refusals through the REST API --------------------------------------------------------------


def test_api_refuses_a_public_suffix_wildcard(full_client):
    response = full_client.post(API + "origins/", {"origin": "https://*.co.uk"}, format="json")
    assert response.status_code == 400
    assert "public suffix 'co.uk'" in response.json()["origin"][0]
    assert not AllowedOrigin.objects.exists()


def test_api_refuses_all_origins_with_credentials(full_client):
    response = full_client.post(
        API + "policies/", {"name": "p", "allow_all_origins": True, "allow_credentials": True}, format="json"
    )
    assert response.status_code == 400
    assert ALL_WITH_CREDENTIALS in json.dumps(response.json())
    assert not Policy.objects.filter(name="p").exists()


def test_api_refuses_null_on_a_credentials_policy(full_client, credentials_policy):
    response = full_client.post(API + "origins/", {"origin": "null", "policy": "creds"}, format="json")
    assert response.status_code == 400
    assert "ALLOW_NULL_WITH_CREDENTIALS" in response.json()["origin"][0]
    assert not AllowedOrigin.objects.exists()


def test_api_warns_about_plain_http_on_a_credentials_policy(full_client, credentials_policy):
    response = full_client.post(
        API + "origins/", {"origin": "http://app.example.com", "policy": "creds"}, format="json"
    )
    assert response.status_code == 201
    assert "http://app.example.com" in response.json()["warnings"][0]


# --- and through the command line ---------------------------------------------------------------------------


def cors(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("cors", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_cli_refuses_a_public_suffix_wildcard():
    with pytest.raises(CommandError) as info:
        cors("add", "https://*.github.io")
    assert info.value.returncode != 0
    assert "public suffix 'github.io'" in str(info.value)
    assert not AllowedOrigin.objects.exists()


def test_cli_refuses_null_on_a_credentials_policy(credentials_policy):
    with pytest.raises(CommandError) as info:
        cors("add", "null", "--policy", "creds")
    assert info.value.returncode != 0
    assert "ALLOW_NULL_WITH_CREDENTIALS" in str(info.value)
    assert not AllowedOrigin.objects.exists()


def test_cli_import_refuses_all_origins_with_credentials(tmp_path):
    document = {
        "version": 1,
        "policies": [{"name": "p", "allow_all_origins": True, "allow_credentials": True}],
    }
    path = tmp_path / "cors.json"
    path.write_text(json.dumps(document))
    with pytest.raises(CommandError) as info:
        cors("import", str(path))
    assert info.value.returncode != 0
    assert ALL_WITH_CREDENTIALS in str(info.value)
    assert not Policy.objects.filter(name="p").exists()


def test_cli_warns_about_plain_http_on_a_credentials_policy(credentials_policy):
    out, err = cors("add", "http://app.example.com", "--policy", "creds")
    assert "Added http://app.example.com" in out
    assert (
        "Warning: Policy creds allows credentials and lists the plain http:// origin http://app.example.com:"
        in err
    )


def test_api_refuses_a_wildcard_above_a_nested_public_suffix(full_client):
    response = full_client.post(API + "origins/", {"origin": "https://*.amazonaws.com"}, format="json")
    assert response.status_code == 400
    assert "(and others below amazonaws.com), which belong to other people" in response.json()["origin"][0]
    assert not AllowedOrigin.objects.exists()


def test_api_refuses_a_non_web_scheme(full_client):
    response = full_client.post(API + "origins/", {"origin": "javascript://app.example.com"}, format="json")
    assert response.status_code == 400
    assert "'javascript://' is never the scheme of an origin" in response.json()["origin"][0]
    assert not AllowedOrigin.objects.exists()


# --- null is never CSRF-trusted -------------------------------------------------------------------

NULL_CSRF_WRITERS = {
    "full_clean": lambda policy: AllowedOrigin(policy=policy, origin="null", csrf_trusted=True).full_clean(),
    "save": lambda policy: AllowedOrigin(policy=policy, origin="null", csrf_trusted=True).save(),
    "bulk_create": lambda policy: AllowedOrigin.objects.bulk_create(
        [AllowedOrigin(policy=policy, origin="NULL", csrf_trusted=True)]
    ),
    "turn on": lambda policy: _change(
        AllowedOrigin.objects.create(policy=policy, origin="null"), csrf_trusted=True
    ),
}


@pytest.mark.parametrize("writer", NULL_CSRF_WRITERS)
def test_null_cannot_be_csrf_trusted(open_policy, writer):
    message = refused(lambda: NULL_CSRF_WRITERS[writer](open_policy))
    assert message == NULL_CSRF_TRUSTED
    assert not AllowedOrigin.objects.filter(csrf_trusted=True).exists()


def test_api_refuses_a_csrf_trusted_null(full_client, open_policy):
    response = full_client.post(
        API + "origins/", {"origin": "null", "policy": "open", "csrf_trusted": True}, format="json"
    )
    assert (response.status_code, response.json()) == (400, {"csrf_trusted": [NULL_CSRF_TRUSTED]})
    assert not AllowedOrigin.objects.exists()


def test_admin_refuses_a_csrf_trusted_null(admin_client, open_policy):
    response = admin_client.post(
        "/admin/corsadmin/allowedorigin/add/",
        {
            "origin": "null",
            "policy": str(open_policy.pk),
            "enabled": "on",
            "csrf_trusted": "on",
            "note": "",
            "expires_at_0": "",
            "expires_at_1": "",
        },
    )
    assert response.status_code == 200
    assert response.context["adminform"].form.errors == {"csrf_trusted": [NULL_CSRF_TRUSTED]}
    assert not AllowedOrigin.objects.exists()
