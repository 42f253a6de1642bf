"""The one validator: canonical form, rejections, and the model that stores its output."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from corsadmin.models import AllowedOrigin, Policy
from corsadmin.origins import canonical_origin, parse_entry, split_request_origin

NORMALISED = [
    ("https://app.example.com", "https://app.example.com"),
    ("HTTPS://App.Example.COM", "https://app.example.com"),
    ("https://bücher.de", "https://xn--bcher-kva.de"),
    ("https://BÜCHER.de", "https://xn--bcher-kva.de"),
    ("https://xn--bcher-kva.de", "https://xn--bcher-kva.de"),
    ("https://app.example.com:443", "https://app.example.com"),
    ("http://app.example.com:80", "http://app.example.com"),
    ("https://app.example.com:80", "https://app.example.com:80"),
    ("http://app.example.com:443", "http://app.example.com:443"),
    ("https://app.example.com:08443", "https://app.example.com:8443"),
    ("http://localhost:8000", "http://localhost:8000"),
    ("http://127.0.0.1:8000", "http://127.0.0.1:8000"),
    ("http://[0:0:0:0:0:0:0:1]:8000", "http://[::1]:8000"),
    ("https://*.Example.COM", "https://*.example.com"),
    ("https://*.example.com:443", "https://*.example.com"),
    ("https://*.bücher.de:8443", "https://*.xn--bcher-kva.de:8443"),
    ("https://*.example.com:*", "https://*.example.com:*"),
    ("http://localhost:*", "http://localhost:*"),
    ("HTTP://LocalHost:*", "http://localhost:*"),
    ("null", "null"),
    ("NULL", "null"),
    ("chrome-extension://abcdefghijklmnop", "chrome-extension://abcdefghijklmnop"),
    (
        "moz-extension://0b9e6c2a-4c2f-4f7e-9d1a-2f1e0c8d7b6a",
        "moz-extension://0b9e6c2a-4c2f-4f7e-9d1a-2f1e0c8d7b6a",
    ),
    ("safari-web-extension://abcdef", "safari-web-extension://abcdef"),
    ("ms-browser-extension://abcdef", "ms-browser-extension://abcdef"),
]

# (entry, a fragment of the message that says what is wrong)
REJECTED = [
    (
        "https://app.example.com/",
        "'https://app.example.com/' has a path; an origin has none. Write it as https://app.example.com.",
    ),
    ("https://app.example.com/api/v1", "has a path"),
    ("https://app.example.com?x=1", "has a query"),
    ("https://app.example.com#top", "has a fragment"),
    ("https://user@app.example.com", "has user information"),
    ("https://user:secret@app.example.com", "Write it as https://app.example.com."),
    (" https://app.example.com", "contains whitespace"),
    ("https://app.example.com ", "contains whitespace"),
    ("https://app .example.com", "contains whitespace"),
    ("https://app.example.com\u00a0", "contains whitespace"),
    ("https://app.example.com\n", "contains a control character"),
    ("https://app.example.com\r\nX-Evil: 1", "contains a control character"),
    ("https://app.example.com\x00", "contains a control character"),
    ("https://app\x7f.example.com", "contains a control character"),
    ("https://app.example.com\t", "contains a control character"),
    ("https://app.example.com:0", "'0' is not a valid port"),
    ("https://app.example.com:65536", "'65536' is not a valid port"),
    ("https://app.example.com:99999999", "is not a valid port"),
    ("https://app.example.com:-1", "is not a valid port"),
    ("https://app.example.com:http", "is not a valid port"),
    ("https://app.example.com:", "is not a valid port"),
    ("*", "A bare '*' is not an origin"),
    ("https://app..example.com", "has an empty label"),
    ("https://.example.com", "has an empty label"),
    ("https://app.example.com.", "ends its host with a dot"),
    ("https://api.*.example.com", "has a '*' inside the host"),
    ("https://*api.example.com", "has a '*' inside the host"),
    ("https://*.*.example.com", "has a '*' inside the host"),
    ("https://*", "has a '*' inside the host"),
    ("https://*.com", "public suffix 'com'"),
    ("https://*.co.uk", "public suffix 'co.uk'"),
    ("https://*.github.io", "public suffix 'github.io'"),
    ("https://*.192.0.2.1", "wildcard on an IP address"),
    ("", "The origin is empty"),
    ("app.example.com", "has no scheme"),
    ("https://", "has no host"),
    ("https://:8443", "has no host"),
    ("https://app_1.example.com", "is not a valid host name"),
    ("https://-app.example.com", "is not a valid host name"),
    ("https://" + "a" * 64 + ".example.com", "is not a valid host name"),
    ("http://999.0.2.1", "is not a valid IPv4 address"),
    ("http://[::1", "unclosed '['"),
    ("http://[nope]", "is not a valid IPv6 address"),
    ("https://app\\example.com", "backslash"),
    ("file:///etc/passwd", "add the entry null instead"),
    ("1http://app.example.com", "is not a valid URL scheme"),
    ("https://" + "a" * 300 + ".com", "longer than 300 characters"),
    ("javascript://app.example.com", "'javascript://' is never the scheme of an origin a browser sends"),
    ("vbscript://app.example.com", "'vbscript://' is never the scheme"),
    ("data://app.example.com", "'data://' is never the scheme"),
    ("about://blank", "'about://' is never the scheme"),
    ("blob://app.example.com", "'blob://' is never the scheme"),
    ("ws://app.example.com", "WebSocket connections carry the page's http:// or https:// origin"),
    ("wss://app.example.com:443", "'wss://' is never the scheme"),
    ("JavaScript://app.example.com", "'javascript://' is never the scheme"),
    ("https://*.amazonaws.com", "would also allow sites under the public suffix"),
    ("https://*.core.windows.net", "public suffix 'blob.core.windows.net'"),
    ("https://*.googleusercontent.com", "public suffix 'googleusercontent.com'"),
]


def _ids(table):
    return [repr(value)[:60] for value, _ in table]


@pytest.fixture
def default_policy(db):
    return Policy.objects.get(name="default")


# --- the validator ----------------------------------------------------------


@pytest.mark.parametrize(("value", "expected"), NORMALISED, ids=_ids(NORMALISED))
def test_entry_is_canonicalised(value, expected):
    assert canonical_origin(value) == expected


@pytest.mark.parametrize(("value", "expected"), NORMALISED, ids=_ids(NORMALISED))
def test_canonical_form_is_stable(value, expected):
    assert canonical_origin(expected) == expected


@pytest.mark.parametrize(("value", "message"), REJECTED, ids=_ids(REJECTED))
def test_entry_is_rejected_with_a_message(value, message):
    with pytest.raises(ValidationError) as excinfo:
        parse_entry(value)
    assert excinfo.value.code == "invalid_origin"
    assert message in excinfo.value.messages[0]


def test_non_text_entry_is_rejected():
    with pytest.raises(ValidationError, match="must be text"):
        parse_entry(None)  # type: ignore[arg-type]


def test_public_suffix_message_suggests_a_domain_you_control():
    with pytest.raises(ValidationError) as excinfo:
        parse_entry("https://*.co.uk")
    assert "Use a domain you control, e.g. https://*.example.co.uk." in excinfo.value.messages[0]


def test_shape_message_shows_how_to_write_an_origin():
    with pytest.raises(ValidationError) as excinfo:
        parse_entry("app.example.com")
    assert "scheme://host[:port] (e.g. https://app.example.com)" in excinfo.value.messages[0]


def test_wildcard_entry_records_its_base():
    entry = parse_entry("https://*.example.com")
    assert (entry.scheme, entry.host, entry.port, entry.wildcard) == ("https", "example.com", "", True)


def test_port_wildcard_entry_is_not_exact():
    entry = parse_entry("http://localhost:*")
    assert (entry.host, entry.port, entry.wildcard, entry.is_exact) == ("localhost", "*", False, False)


def test_null_entry_is_exact():
    entry = parse_entry("null")
    assert entry.is_null and entry.is_exact


# --- what a request's Origin header may look like -----------------------------


@pytest.mark.parametrize(
    ("origin", "expected"),
    [
        ("https://app.example.com", ("https", "app.example.com", "")),
        ("http://localhost:3000", ("http", "localhost", "3000")),
        ("http://[::1]:8000", ("http", "[::1]", "8000")),
        ("https://xn--bcher-kva.de", ("https", "xn--bcher-kva.de", "")),
    ],
)
def test_request_origin_is_split(origin, expected):
    assert split_request_origin(origin) == expected


@pytest.mark.parametrize(
    "origin",
    [
        "https://App.example.com",
        "https://app.example.com:443",
        "http://app.example.com:80",
        "https://app.example.com/",
        "https://app.example.com.",
        "https://app.example.com ",
        "https://bücher.de",
        "https://app.example.com:0",
        "https://app.example.com:65536",
        "https://user@app.example.com",
        "null",
        "",
        "app.example.com",
        "https://-.example.com",
        "https://-app.example.com",
        "https://app-.example.com",
        "https://" + "a" * 64 + ".example.com",
        "https://" + "a." * 126 + "example.com",  # 11 + 252 = 263 characters of host
        "https://" + "a" * 2000 + ".example.com",
    ],
)
def test_non_canonical_request_origin_is_not_split(origin):
    assert split_request_origin(origin) is None


# --- the model refuses what the validator refuses -----------------------------


@pytest.mark.parametrize(("value", "message"), REJECTED, ids=_ids(REJECTED))
def test_model_full_clean_rejects(default_policy, value, message):
    entry = AllowedOrigin(origin=value, policy=default_policy)
    with pytest.raises(ValidationError) as excinfo:
        entry.full_clean()
    assert "origin" in excinfo.value.message_dict


@pytest.mark.parametrize(("value", "message"), REJECTED, ids=_ids(REJECTED))
def test_model_save_rejects(default_policy, value, message):
    with pytest.raises(ValidationError):
        AllowedOrigin.objects.create(origin=value, policy=default_policy)
    assert not AllowedOrigin.objects.exists()


def test_model_full_clean_message_is_the_validators(default_policy):
    entry = AllowedOrigin(origin="https://*.github.io", policy=default_policy)
    with pytest.raises(ValidationError) as excinfo:
        entry.full_clean()
    assert "public suffix 'github.io'" in excinfo.value.message_dict["origin"][0]


def test_model_full_clean_canonicalises(default_policy):
    entry = AllowedOrigin(origin="HTTPS://App.Example.com:443", policy=default_policy)
    entry.full_clean()
    assert entry.origin == "https://app.example.com"


def test_model_save_stores_canonical_form(default_policy):
    entry = AllowedOrigin.objects.create(origin="https://Bücher.de:443", policy=default_policy)
    entry.refresh_from_db()
    assert entry.origin == "https://xn--bcher-kva.de"


def test_origin_defaults_to_the_default_policy(db):
    entry = AllowedOrigin.objects.create(origin="https://app.example.com")
    assert entry.policy.name == "default"


def test_queryset_update_canonicalises(default_policy):
    entry = AllowedOrigin.objects.create(origin="https://old.example.com", policy=default_policy)
    AllowedOrigin.objects.filter(pk=entry.pk).update(origin="HTTPS://New.Example.com:443")
    entry.refresh_from_db()
    assert entry.origin == "https://new.example.com"


def test_queryset_update_rejects(default_policy):
    entry = AllowedOrigin.objects.create(origin="https://old.example.com", policy=default_policy)
    with pytest.raises(ValidationError, match="has a path"):
        AllowedOrigin.objects.filter(pk=entry.pk).update(origin="https://new.example.com/path")
    entry.refresh_from_db()
    assert entry.origin == "https://old.example.com"


def test_bulk_create_canonicalises(default_policy):
    AllowedOrigin.objects.bulk_create([AllowedOrigin(origin="HTTPS://A.example.com", policy=default_policy)])
    assert list(AllowedOrigin.objects.values_list("origin", flat=True)) == ["https://a.example.com"]


def test_bulk_create_rejects(default_policy):
    with pytest.raises(ValidationError, match="public suffix 'com'"):
        AllowedOrigin.objects.bulk_create([AllowedOrigin(origin="https://*.com", policy=default_policy)])
    assert not AllowedOrigin.objects.exists()


def test_bulk_update_rejects(default_policy):
    entry = AllowedOrigin.objects.create(origin="https://a.example.com", policy=default_policy)
    entry.origin = "https://*.co.uk"
    with pytest.raises(ValidationError, match=r"public suffix 'co\.uk'"):
        AllowedOrigin.objects.bulk_update([entry], ["origin"])
    assert AllowedOrigin.objects.get().origin == "https://a.example.com"


def test_duplicate_after_canonicalisation_is_refused_by_full_clean(default_policy):
    AllowedOrigin.objects.create(origin="https://app.example.com", policy=default_policy)
    duplicate = AllowedOrigin(origin="HTTPS://APP.example.com:443", policy=default_policy)
    with pytest.raises(ValidationError) as excinfo:
        duplicate.full_clean()
    assert "This origin is already listed in this policy." in excinfo.value.messages


def test_duplicate_is_refused_by_the_database(default_policy):
    AllowedOrigin.objects.create(origin="https://app.example.com", policy=default_policy)
    with pytest.raises(IntegrityError), transaction.atomic():
        AllowedOrigin.objects.create(origin="https://App.example.com", policy=default_policy)
    assert AllowedOrigin.objects.count() == 1


def test_same_origin_in_two_policies_is_allowed(default_policy):
    other = Policy.objects.create(name="api", url_regex="^/api/")
    AllowedOrigin.objects.create(origin="https://app.example.com", policy=default_policy)
    entry = AllowedOrigin(origin="https://app.example.com", policy=other)
    entry.full_clean()
    entry.save()
    assert AllowedOrigin.objects.filter(origin="https://app.example.com").count() == 2


# --- policies ---------------------------------------------------------------

ALL_WITH_CREDENTIALS = "A policy cannot allow all origins and credentials together"


def test_policy_all_origins_with_credentials_refused_by_full_clean(db):
    policy = Policy(name="open", allow_all_origins=True, allow_credentials=True)
    with pytest.raises(ValidationError) as excinfo:
        policy.full_clean()
    assert any(ALL_WITH_CREDENTIALS in message for message in excinfo.value.messages)


def test_policy_all_origins_with_credentials_refused_by_save(db):
    with pytest.raises(ValidationError, match=ALL_WITH_CREDENTIALS):
        Policy.objects.create(name="open", allow_all_origins=True, allow_credentials=True)
    assert not Policy.objects.filter(name="open").exists()


def test_policy_all_origins_with_credentials_refused_by_the_database(db):
    Policy.objects.create(name="open", allow_all_origins=True)
    with pytest.raises(IntegrityError), transaction.atomic():
        Policy.objects.filter(name="open").update(allow_credentials=True)
    assert Policy.objects.get(name="open").allow_credentials is False


def test_policy_all_origins_without_credentials_is_fine(db):
    policy = Policy(name="open", allow_all_origins=True)
    policy.full_clean()


def test_policy_credentials_with_listed_origins_is_fine(db):
    policy = Policy(name="private", allow_credentials=True)
    policy.full_clean()


def test_policy_bad_url_regex_refused(db):
    policy = Policy(name="bad", url_regex="^/api/(")
    with pytest.raises(ValidationError) as excinfo:
        policy.full_clean()
    assert "Not a valid regular expression" in excinfo.value.message_dict["url_regex"][0]


def test_policy_bad_method_refused(db):
    policy = Policy(name="bad", allow_methods=["GET", "PO ST"])
    with pytest.raises(ValidationError) as excinfo:
        policy.full_clean()
    assert "'PO ST' is not a valid method" in excinfo.value.message_dict["allow_methods"][0]


def test_policy_token_lists_are_normalised(db):
    policy = Policy(name="norm", allow_methods=["get", "GET", "post"], allow_headers=["X-Token", "x-token"])
    policy.full_clean()
    assert (policy.allow_methods, policy.allow_headers) == (["GET", "POST"], ["x-token"])


def test_policy_defaults(db):
    policy = Policy.objects.create(name="fresh")
    assert (
        policy.url_regex,
        policy.max_age,
        policy.allow_private_network,
        policy.enabled,
        policy.allow_methods,
    ) == ("^/", 7200, False, True, ["DELETE", "GET", "OPTIONS", "PATCH", "POST", "PUT"])


# --- messages: never an origin first (the admin capitalises a message's first letter) -------


def test_no_warning_begins_with_an_origin(default_policy):
    from corsadmin.widening import Opening, messages

    Policy.objects.filter(pk=default_policy.pk).update(allow_credentials=True)
    entry = AllowedOrigin.objects.create(origin="http://legacy.example.org", policy=default_policy)
    entry.refresh_from_db()
    opened = Opening("https://uc.example.com", "https://uc.example.com", "https://*.example.com", "default")
    said = [*entry.warnings(), *messages([opened]), *messages([opened], entry.created_at)]
    assert len(said) == 3
    assert [text.split(" ", 1)[0] for text in said] == ["Policy", "The", "Once"]


def test_a_past_expiry_is_refused_only_when_the_write_sets_it(default_policy):
    from datetime import UTC, datetime

    past = datetime(2020, 1, 1, tzinfo=UTC)
    with pytest.raises(ValidationError) as excinfo:
        AllowedOrigin(origin="https://new.example.com", policy=default_policy, expires_at=past).full_clean()
    assert excinfo.value.message_dict == {
        "expires_at": [
            (
                "This expiry is in the past: the entry would never match. Give a later date and time, or "
                "leave it empty to never expire."
            )
        ]
    }
    # An entry that has expired keeps its expiry through other edits (raw write: stored as is).
    stored = AllowedOrigin.objects.create(
        origin="https://old.example.com", policy=default_policy, expires_at=past
    )
    stored.note = "kept for the record"
    stored.full_clean()
