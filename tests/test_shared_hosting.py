"""Wildcards on shared hosting and the schemes of origins (issue 19, item 11).

A wildcard on a shared hosting platform (``corsadmin.hosting``) is refused on a policy that
allows credentials (API 400, admin form error, CLI non-zero, import refused, and a policy
holding one cannot turn credentials on) and accepted with a warning elsewhere (the API's
``warnings``, an admin message, CLI stderr, ``manage.py check`` corsadmin.W015). Platforms the
Public Suffix List names are refused everywhere, as any public suffix. Schemes are an
allow-list; a stored row with another scheme is skipped by the loader with a log line.
"""

from __future__ import annotations

import io
import logging

import pytest
from django.contrib.messages import get_messages
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from corsadmin import documents
from corsadmin.checks import check_shared_hosting_wildcards
from corsadmin.hosting import SHARED_HOSTING_PLATFORMS
from corsadmin.loader import load_snapshot
from corsadmin.models import AllowedOrigin, Policy
from corsadmin.origins import (
    ACCEPTED_SCHEMES,
    canonical_origin,
    shared_hosting_refusal,
    shared_hosting_warning,
)

API = "/api/cors/"
PLATFORMS = sorted(SHARED_HOSTING_PLATFORMS)
# Hosting platforms in the Public Suffix List's private section: a wildcard on them is refused
# everywhere (a public suffix), with or without credentials.
PSL_PLATFORMS = [
    "appspot.com",
    "azurewebsites.net",
    "cloudfront.net",
    "csb.app",
    "firebaseapp.com",
    "fly.dev",
    "github.io",
    "herokuapp.com",
    "netlify.app",
    "ngrok-free.app",
    "ngrok.io",
    "onrender.com",
    "pages.dev",
    "repl.co",
    "vercel.app",
    "web.app",
]


@pytest.fixture
def with_credentials(db) -> Policy:
    return Policy.objects.create(name="api", url_regex="^/api/", allow_credentials=True)


@pytest.fixture
def without_credentials(db) -> Policy:
    return Policy.objects.create(name="public", url_regex="^/public/")


def entry(origin: str, policy: Policy, **fields) -> AllowedOrigin:
    obj = AllowedOrigin(origin=origin, policy=policy, **fields)
    obj.full_clean()
    obj.save()
    return obj


# --- the rule, over the whole list ------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("platform", PLATFORMS)
def test_a_hosting_wildcard_is_refused_on_a_credentials_policy(platform, with_credentials):
    origin = f"https://*.{platform}"
    with pytest.raises(ValidationError) as refused:
        entry(origin, with_credentials)
    assert refused.value.message_dict == {"origin": [shared_hosting_refusal(origin, platform)]}
    assert not AllowedOrigin.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("platform", PLATFORMS)
def test_a_hosting_wildcard_is_accepted_with_a_warning_without_credentials(platform, without_credentials):
    origin = f"https://*.{platform}"
    assert entry(origin, without_credentials).warnings() == [shared_hosting_warning(origin, platform)]


@pytest.mark.parametrize("platform", PSL_PLATFORMS)
def test_a_hosting_platform_on_the_public_suffix_list_is_refused_everywhere(platform):
    with pytest.raises(ValidationError, match="public suffix"):
        canonical_origin(f"https://*.{platform}")


def test_the_list_names_the_reported_platforms():
    reported = {"glitch.me", "loca.lt", "codepen.io", "codesandbox.io", "stackblitz.io", "github.dev"}
    reported |= {"gitpod.io", "gradio.live", "neocities.org"}
    assert reported <= SHARED_HOSTING_PLATFORMS


@pytest.mark.django_db
def test_a_wildcard_below_a_platform_is_one_too(with_credentials):
    with pytest.raises(ValidationError) as refused:
        entry("https://*.app.github.dev", with_credentials)
    assert refused.value.message_dict == {
        "origin": [shared_hosting_refusal("https://*.app.github.dev", "github.dev")]
    }


@pytest.mark.django_db
@pytest.mark.parametrize(
    "origin", ["https://myapp.glitch.me", "http://myapp.glitch.me:*", "https://*.example.com"]
)
def test_one_host_on_a_platform_or_another_wildcard_is_fine(origin, with_credentials):
    assert "shared hosting" not in " ".join(entry(origin, with_credentials).warnings())


@pytest.mark.django_db
def test_a_deny_entry_on_a_platform_is_fine_with_credentials(with_credentials):
    assert entry("https://*.glitch.me", with_credentials, effect=AllowedOrigin.DENY).warnings() == []


# --- the front ends ---------------------------------------------------------------------


@pytest.mark.django_db
def test_api_refuses_it_on_a_credentials_policy_with_400(full_client, with_credentials):
    response = full_client.post(
        API + "origins/", {"origin": "https://*.glitch.me", "policy": "api"}, format="json"
    )
    assert response.status_code == 400
    assert response.json() == {"origin": [shared_hosting_refusal("https://*.glitch.me", "glitch.me")]}


@pytest.mark.django_db
def test_api_accepts_it_elsewhere_with_a_warning(full_client, without_credentials):
    response = full_client.post(
        API + "origins/", {"origin": "https://*.glitch.me", "policy": "public"}, format="json"
    )
    assert response.status_code == 201
    assert response.json()["warnings"] == [shared_hosting_warning("https://*.glitch.me", "glitch.me")]


@pytest.mark.django_db
def test_api_refuses_turning_credentials_on_while_the_policy_holds_one(full_client, without_credentials):
    entry("https://*.loca.lt", without_credentials)
    response = full_client.patch(API + "policies/public/", {"allow_credentials": True}, format="json")
    assert response.status_code == 400
    assert response.json() == {"allow_credentials": [shared_hosting_refusal("https://*.loca.lt", "loca.lt")]}
    assert not Policy.objects.get(name="public").allow_credentials


@pytest.mark.django_db
def test_an_import_refuses_it_on_a_credentials_policy(full_client):
    document = {
        "version": 1,
        "policies": [
            {"name": "api", "allow_credentials": True, "origins": [{"origin": "https://*.gitpod.io"}]}
        ],
    }
    response = full_client.post(API + "import/", document, format="json")
    assert response.status_code == 400
    assert response.json()["policies"]["0"]["origins"]["0"]["origin"] == [
        shared_hosting_refusal("https://*.gitpod.io", "gitpod.io")
    ]
    assert not Policy.objects.filter(name="api").exists()


@pytest.mark.django_db
def test_an_import_warns_about_it_elsewhere():
    document = {
        "version": 1,
        "policies": [{"name": "public", "origins": [{"origin": "https://*.gitpod.io"}]}],
    }
    result = documents.import_document(document)
    assert result.warnings == [shared_hosting_warning("https://*.gitpod.io", "gitpod.io")]


def cors(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("cors", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


@pytest.mark.django_db
def test_cli_refuses_it_on_a_credentials_policy_with_a_non_zero_exit(with_credentials):
    with pytest.raises(CommandError) as refused:
        cors("add", "https://*.codepen.io", "--policy", "api")
    assert refused.value.returncode == 2
    assert shared_hosting_refusal("https://*.codepen.io", "codepen.io") in str(refused.value)
    assert not AllowedOrigin.objects.exists()


@pytest.mark.django_db
def test_cli_accepts_it_elsewhere_with_a_warning_on_stderr(without_credentials):
    out, err = cors("add", "https://*.codepen.io", "--policy", "public")
    assert out.startswith("Added https://*.codepen.io to policy 'public'")
    assert err.strip() == f"Warning: {shared_hosting_warning('https://*.codepen.io', 'codepen.io')}"


@pytest.mark.django_db
def test_cli_refuses_turning_credentials_on_while_the_policy_holds_one(without_credentials):
    entry("https://*.neocities.org", without_credentials)
    with pytest.raises(CommandError) as refused:
        cors("policy", "edit", "public", "--credentials")
    assert refused.value.returncode == 2
    assert shared_hosting_refusal("https://*.neocities.org", "neocities.org") in str(refused.value)
    assert not Policy.objects.get(name="public").allow_credentials


ADD = "/admin/corsadmin/allowedorigin/add/"


@pytest.mark.django_db
def test_admin_form_refuses_it_on_a_credentials_policy(admin_client, with_credentials):
    response = admin_client.post(
        ADD,
        {"origin": "https://*.gradio.live", "policy": with_credentials.pk, "effect": "allow", "cors": "on"},
    )
    assert response.status_code == 200
    assert response.context["adminform"].form.errors == {
        "origin": [shared_hosting_refusal("https://*.gradio.live", "gradio.live")]
    }
    assert not AllowedOrigin.objects.exists()


@pytest.mark.django_db
def test_admin_accepts_it_elsewhere_with_a_warning_message(admin_client, without_credentials):
    data = {
        "origin": "https://*.gradio.live",
        "policy": without_credentials.pk,
        "effect": "allow",
        "cors": "on",
    }
    response = admin_client.post(ADD, data, follow=True)
    warnings = [str(m) for m in get_messages(response.wsgi_request) if m.level_tag == "warning"]
    assert warnings == [shared_hosting_warning("https://*.gradio.live", "gradio.live")]


@pytest.mark.django_db
def test_admin_policy_form_refuses_credentials_with_a_hosting_wildcard_inline(admin_client):
    response = admin_client.post(
        "/admin/corsadmin/policy/add/",
        {
            "name": "api",
            "url_regex": "^/api/",
            "priority": 0,
            "mode": "enforce",
            "enabled": "on",
            "allow_credentials": "on",
            "allow_methods": '["GET"]',
            "allow_headers": "[]",
            "expose_headers": "[]",
            "hosts": "[]",
            "max_age": 0,
            "origins-TOTAL_FORMS": 1,
            "origins-INITIAL_FORMS": 0,
            "origins-0-origin": "https://*.stackblitz.io",
            "origins-0-effect": "allow",
            "origins-0-enabled": "on",
            "origins-0-cors": "on",
        },
    )
    assert response.status_code == 200
    errors = [form.errors for form in response.context["inline_admin_formsets"][0].formset.forms]
    assert errors == [{"origin": [shared_hosting_refusal("https://*.stackblitz.io", "stackblitz.io")]}]
    assert not Policy.objects.filter(name="api").exists()


@pytest.mark.django_db
def test_manage_py_check_warns_about_stored_ones(without_credentials, with_credentials):
    entry("https://*.glitch.me", without_credentials)
    AllowedOrigin.objects.filter(pk=entry("https://x.example.com", with_credentials).pk).update(
        origin="https://*.loca.lt"
    )  # stored on a credentials policy before the rule
    messages = check_shared_hosting_wildcards(databases=["default"])
    assert [(m.id, m.msg) for m in messages] == [
        (
            "corsadmin.W015",
            (
                "Policy 'api' lists 'https://*.loca.lt', but allows credentials: a wildcard on loca.lt, a "
                "shared hosting platform where anyone can publish, is not honoured there (no page is allowed "
                "by it)."
            ),
        ),
        (
            "corsadmin.W015",
            (
                "Policy 'public' allows 'https://*.glitch.me': every page on glitch.me, a shared hosting "
                "platform where anyone can publish, may read its responses."
            ),
        ),
    ]
    assert check_shared_hosting_wildcards(databases=None) == []


# --- schemes: an allow-list -------------------------------------------------------------

ACCEPTED = [
    ("http://app.example.com", "http://app.example.com"),
    ("https://app.example.com", "https://app.example.com"),
    (
        "chrome-extension://abcdefghijklmnopabcdefghijklmnop",
        "chrome-extension://abcdefghijklmnopabcdefghijklmnop",
    ),
    (
        "moz-extension://0a1b2c3d-1111-2222-3333-444455556666",
        "moz-extension://0a1b2c3d-1111-2222-3333-444455556666",
    ),
    ("safari-web-extension://e1f2", "safari-web-extension://e1f2"),
    ("ms-browser-extension://e1f2", "ms-browser-extension://e1f2"),
    ("capacitor://localhost", "capacitor://localhost"),
    ("ionic://localhost", "ionic://localhost"),
    ("tauri://localhost", "tauri://localhost"),
    ("app://localhost", "app://localhost"),
    ("Capacitor://LOCALHOST", "capacitor://localhost"),
]


@pytest.mark.parametrize(("value", "expected"), ACCEPTED)
def test_accepted_schemes(value, expected):
    assert canonical_origin(value) == expected


@pytest.mark.parametrize("scheme", ["gopher", "jar", "intent", "x-evil", "itms-services", "custom+app"])
def test_other_schemes_are_refused_naming_what_is_accepted(scheme):
    with pytest.raises(ValidationError) as refused:
        canonical_origin(f"{scheme}://app.example.com")
    assert refused.value.messages == [
        (
            f"'{scheme}://' is not a scheme browsers send in an Origin header for a page that may be "
            f"allowed. Accepted schemes: {ACCEPTED_SCHEMES}."
        )
    ]
    assert "http, https; browser extensions: chrome-extension, moz-extension" in ACCEPTED_SCHEMES
    assert "app webviews: app, capacitor, ionic, tauri" in ACCEPTED_SCHEMES


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("javascript://x.example.com", "'javascript://' is never the scheme"),
        ("data://x.example.com", "'data://' is never the scheme"),
        ("about://blank", "'about://' is never the scheme"),
        ("blob://x.example.com", "'blob://' is never the scheme"),
        ("file:///etc/passwd", "add the entry null instead"),
    ],
)
def test_the_contract_s_refusals_keep_their_messages(value, message):
    with pytest.raises(ValidationError, match=message):
        canonical_origin(value)


@pytest.mark.django_db
@pytest.mark.parametrize(
    "origin", ["gopher://app.example.com", "x-evil://app.example.com", "jar://*.example.com"]
)
def test_a_stored_row_with_a_refused_scheme_is_skipped_by_the_loader(origin, caplog, without_credentials):
    row = entry("https://placeholder.example.com", without_credentials)
    with connection.cursor() as cursor:  # written around validation
        cursor.execute(
            f"UPDATE {AllowedOrigin._meta.db_table} SET origin = %s WHERE id = %s", [origin, row.pk]
        )
    entry("https://app.example.com", without_credentials)
    with caplog.at_level(logging.WARNING, logger="corsadmin"):
        snapshot = load_snapshot()
    assert snapshot.decide(origin.replace("*.", "a."), "/public/").allowed is False
    assert snapshot.decide("https://app.example.com", "/public/").allowed is True
    assert [r.getMessage() for r in caplog.records if getattr(r, "event", "") == "ignored_origin"] == [
        f"corsadmin: ignoring invalid stored origin {origin!r} in policy public"
    ]
