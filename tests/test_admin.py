"""The admin: shared validation, canonical storage, list tools, and invalidation on every admin write."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from corsadmin.models import AllowedOrigin, Generation, Policy, default_headers, default_methods

from .cors_helpers import (
    APP,
    ECHO,
    cors_headers,
)
from .test_origins import REJECTED

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("manual_telemetry")]

ORIGINS = "/admin/corsadmin/allowedorigin/"
POLICIES = "/admin/corsadmin/policy/"


@pytest.fixture
def default_policy():
    return Policy.objects.get(name="default")


def origin_form(policy: Policy, origin: str, **extra) -> dict[str, str]:
    data = {
        "origin": origin,
        "policy": str(policy.pk),
        "enabled": "on",
        "cors": "on",  # ticked by default, as a browser submits it
        "note": "",
        "expires_at_0": "",
        "expires_at_1": "",
    }
    data.update(extra)
    return data


def policy_form(
    policy: Policy | None = None, inline: list[dict[str, str]] | None = None, **changes
) -> dict[str, str]:
    values = {
        "name": policy.name if policy else "new",
        "url_regex": policy.url_regex if policy else "^/",
        "priority": str(policy.priority if policy else 0),
        "enabled": "on",
        "note": "",
        "allow_methods": "GET, POST",
        "allow_headers": "content-type",
        "expose_headers": "",
        "max_age": "7200",
    }
    values.update(changes)
    values = {key: value for key, value in values.items() if value is not False}
    existing = list(policy.origins.all()) if policy else []
    rows = inline or []
    values.update(
        {
            "origins-TOTAL_FORMS": str(len(existing) + len(rows)),
            "origins-INITIAL_FORMS": str(len(existing)),
            "origins-MIN_NUM_FORMS": "0",
            "origins-MAX_NUM_FORMS": "1000",
        }
    )
    for index, entry in enumerate(existing):
        values.update(
            {
                f"origins-{index}-id": str(entry.pk),
                f"origins-{index}-policy": str(policy.pk),
                f"origins-{index}-origin": entry.origin,
                f"origins-{index}-enabled": "on",
                f"origins-{index}-cors": "on",
            }
        )
    for offset, row in enumerate(rows):
        index = len(existing) + offset
        values[f"origins-{index}-cors"] = "on"  # ticked by default, as a browser submits it
        values.update({f"origins-{index}-{key}": value for key, value in row.items()})
        if policy:
            values[f"origins-{index}-policy"] = str(policy.pk)
    return values


def generation() -> int:
    return Generation.objects.get(pk=1).value


def allowed(client, origin: str = APP) -> bool:
    return client.get(ECHO, headers={"Origin": origin}).headers.get("Access-Control-Allow-Origin") == origin


def form_errors(response) -> dict:
    return response.context["adminform"].form.errors


# --- adding an origin ------------------------------------------------------------


def test_add_origin_is_stored_canonical(admin_client, admin_user, default_policy):
    response = admin_client.post(ORIGINS + "add/", origin_form(default_policy, "HTTPS://App.Example.COM:443"))
    assert response.status_code == 302
    entry = AllowedOrigin.objects.get()
    assert (entry.origin, entry.policy, entry.created_by) == (APP, default_policy, admin_user)


def test_add_idn_origin_is_stored_as_punycode(admin_client, default_policy):
    admin_client.post(ORIGINS + "add/", origin_form(default_policy, "https://bücher.de"))
    assert AllowedOrigin.objects.get().origin == "https://xn--bcher-kva.de"


def test_add_bad_origin_shows_a_form_error(admin_client, default_policy):
    response = admin_client.post(
        ORIGINS + "add/", origin_form(default_policy, "https://app.example.com/login")
    )
    assert response.status_code == 200
    assert form_errors(response)["origin"] == [
        "'https://app.example.com/login' has a path; an origin has none. Write it as https://app.example.com."
    ]
    assert not AllowedOrigin.objects.exists()


# Django's form CharField strips surrounding whitespace before the validator sees the
# value, as DRF's does; whitespace inside an origin is still refused.
TRIMMED = [(value, message) for value, message in REJECTED if value != value.strip()]
REFUSED = [(value, message) for value, message in REJECTED if value == value.strip()]


@pytest.mark.parametrize(("value", "message"), REFUSED, ids=[repr(v)[:60] for v, _ in REFUSED])
def test_add_form_refuses(admin_client, default_policy, value, message):
    response = admin_client.post(ORIGINS + "add/", origin_form(default_policy, value))
    assert response.status_code == 200
    assert "origin" in form_errors(response)
    assert not AllowedOrigin.objects.exists()


@pytest.mark.parametrize("value", [value for value, _ in TRIMMED], ids=[repr(v)[:60] for v, _ in TRIMMED])
def test_add_form_trims_surrounding_whitespace(admin_client, default_policy, value):
    response = admin_client.post(ORIGINS + "add/", origin_form(default_policy, value))
    assert response.status_code == 302
    assert AllowedOrigin.objects.get().origin == APP


def test_add_duplicate_shows_a_form_error(admin_client, default_policy):
    AllowedOrigin.objects.create(origin=APP)
    response = admin_client.post(ORIGINS + "add/", origin_form(default_policy, "https://APP.example.com"))
    assert response.status_code == 200
    assert "This origin is already listed in this policy." in form_errors(response).as_text()
    assert AllowedOrigin.objects.count() == 1


def test_add_form_for_an_origin_its_policy_denies_names_the_exception_and_links_to_it(
    admin_client, default_policy
):
    deny = AllowedOrigin.objects.create(origin=APP, effect=AllowedOrigin.DENY)
    response = admin_client.post(ORIGINS + "add/", origin_form(default_policy, APP))
    assert response.status_code == 200
    assert form_errors(response)["__all__"] == [
        (
            "Policy default already lists this origin as an exception (deny entry), which refuses it. To "
            "allow it, change that entry instead of adding another: make it an allow entry, or disable or "
            f'delete it. <a href="/admin/corsadmin/allowedorigin/{deny.pk}/change/">change {APP} in policy '
            "default</a>"
        )
    ]
    assert AllowedOrigin.objects.count() == 1


PAST_EXPIRY = (
    "This expiry is in the past: the entry would never match. Give a later date and time, or leave it "
    "empty to never expire."
)


def test_add_form_refuses_an_expiry_in_the_past(admin_client, default_policy):
    data = origin_form(default_policy, APP, expires_at_0="2020-01-01", expires_at_1="00:00:00")
    response = admin_client.post(ORIGINS + "add/", data)
    assert response.status_code == 200
    assert form_errors(response)["expires_at"] == [PAST_EXPIRY]
    assert not AllowedOrigin.objects.exists()


def test_add_page_loads(admin_client):
    response = admin_client.get(ORIGINS + "add/")
    assert response.status_code == 200


# --- policies --------------------------------------------------------------------


def test_policy_all_origins_with_credentials_is_a_form_error(admin_client):
    response = admin_client.post(
        POLICIES + "add/", policy_form(name="open", allow_all_origins="on", allow_credentials="on")
    )
    assert response.status_code == 200
    assert "A policy cannot allow all origins and credentials together" in str(form_errors(response))
    assert not Policy.objects.filter(name="open").exists()


@pytest.mark.parametrize(
    ("page", "field", "label"),
    [(POLICIES + "add/", "url_regex", "URL regex"), (ORIGINS + "add/", "csrf_trusted", "CSRF trusted")],
)
def test_labels_spell_acronyms_in_capitals(admin_client, page, field, label):
    response = admin_client.get(page)
    assert response.context["adminform"].form.fields[field].label == label
    assert f'for="id_{field}">{label}' in response.content.decode()


def test_policy_form_warns_about_http_origins_when_credentials_are_ticked(admin_client, default_policy):
    from django.contrib.messages import WARNING, get_messages

    for origin in ("http://b.example.com", "http://a.example.com"):
        AllowedOrigin.objects.create(origin=origin)
    data = policy_form(default_policy, allow_credentials="on")
    response = admin_client.post(POLICIES + f"{default_policy.pk}/change/", data, follow=True)
    assert [str(m) for m in get_messages(response.wsgi_request) if m.level == WARNING] == [
        f"Policy default allows credentials and lists the plain http:// origin {origin}: anyone on the "
        "network path can impersonate it and read your users' data. Prefer https://."
        for origin in ("http://a.example.com", "http://b.example.com")
    ]
    assert Policy.objects.get(pk=default_policy.pk).allow_credentials


def test_policy_add(admin_client):
    response = admin_client.post(POLICIES + "add/", policy_form(name="api", url_regex="^/api/", priority="5"))
    assert response.status_code == 302
    policy = Policy.objects.get(name="api")
    assert (policy.url_regex, policy.priority, policy.allow_methods) == ("^/api/", 5, ["GET", "POST"])


def test_policy_add_form_shows_the_default_methods_and_headers(admin_client):
    form = admin_client.get(POLICIES + "add/").context["adminform"].form
    assert (form["allow_methods"].value(), form["allow_headers"].value()) == (
        "DELETE, GET, OPTIONS, PATCH, POST, PUT",
        "accept, authorization, content-type, user-agent, x-csrftoken, x-requested-with",
    )


def test_policy_added_with_the_form_as_shown_answers_preflights(
    admin_client, django_capture_on_commit_callbacks
):
    form = admin_client.get(POLICIES + "add/").context["adminform"].form
    shown = {name: form[name].value() or "" for name in ("allow_methods", "allow_headers", "expose_headers")}
    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post(
            POLICIES + "add/", policy_form(name="api", url_regex="^/api/", priority="5", **shown)
        )
        AllowedOrigin.objects.create(origin=APP, policy=Policy.objects.get(name="api"))
    response = admin_client.options("/api/x", headers={"Origin": APP, "Access-Control-Request-Method": "PUT"})
    assert cors_headers(response) == {
        "Access-Control-Allow-Origin": APP,
        "Access-Control-Allow-Methods": "DELETE, GET, OPTIONS, PATCH, POST, PUT",
        "Access-Control-Allow-Headers": (
            "accept, authorization, content-type, user-agent, x-csrftoken, x-requested-with"
        ),
        "Access-Control-Max-Age": "7200",
    }


def test_policy_added_with_empty_methods_and_headers_gets_the_defaults(admin_client):
    admin_client.post(POLICIES + "add/", policy_form(name="api", allow_methods="", allow_headers=""))
    policy = Policy.objects.get(name="api")
    assert (policy.allow_methods, policy.allow_headers) == (default_methods(), default_headers())


def test_policy_bad_regex_is_a_form_error(admin_client):
    response = admin_client.post(POLICIES + "add/", policy_form(name="bad", url_regex="^/api/("))
    assert response.status_code == 200
    assert "url_regex" in form_errors(response)


def test_policy_change_page_with_inline_loads(admin_client, default_policy):
    AllowedOrigin.objects.create(origin=APP)
    response = admin_client.get(f"{POLICIES}{default_policy.pk}/change/")
    assert response.status_code == 200
    assert [formset.formset.prefix for formset in response.context["inline_admin_formsets"]] == ["origins"]
    assert f'value="{APP}"'.encode() in response.content


def test_policy_changelist_loads(admin_client):
    AllowedOrigin.objects.create(origin=APP)
    AllowedOrigin.objects.create(
        origin="https://gone.example.com", expires_at=timezone.now() - timedelta(days=1)
    )
    response = admin_client.get(POLICIES)
    assert response.status_code == 200
    [row] = response.context["cl"].result_list
    assert (row.name, row._active) == ("default", 1)


def test_policy_inline_add_is_stored_canonical(admin_client, admin_user, default_policy):
    data = policy_form(default_policy, inline=[{"origin": "HTTPS://New.Example.com:443", "enabled": "on"}])
    response = admin_client.post(f"{POLICIES}{default_policy.pk}/change/", data)
    assert response.status_code == 302
    entry = AllowedOrigin.objects.get()
    assert (entry.origin, entry.created_by) == ("https://new.example.com", admin_user)


def test_policy_inline_bad_origin_is_a_form_error(admin_client, default_policy):
    data = policy_form(default_policy, inline=[{"origin": "https://*.co.uk", "enabled": "on"}])
    response = admin_client.post(f"{POLICIES}{default_policy.pk}/change/", data)
    assert response.status_code == 200
    [formset] = response.context["inline_admin_formsets"]
    assert "public suffix 'co.uk'" in str(formset.formset.errors)
    assert not AllowedOrigin.objects.exists()


def test_policy_inline_duplicates_after_canonicalisation_are_a_form_error(admin_client, default_policy):
    rows = [{"origin": APP, "enabled": "on"}, {"origin": "HTTPS://App.Example.com:443", "enabled": "on"}]
    response = admin_client.post(
        f"{POLICIES}{default_policy.pk}/change/", policy_form(default_policy, inline=rows)
    )
    assert response.status_code == 200
    [formset] = response.context["inline_admin_formsets"]
    assert formset.formset.non_form_errors() == ["Please correct the duplicate data for origin."]
    assert not AllowedOrigin.objects.exists()


def test_new_policy_inline_duplicates_are_a_form_error(admin_client):
    rows = [{"origin": APP, "enabled": "on"}, {"origin": "https://APP.example.com", "enabled": "on"}]
    response = admin_client.post(POLICIES + "add/", policy_form(name="fresh", inline=rows))
    assert response.status_code == 200
    assert not Policy.objects.filter(name="fresh").exists()


def test_policy_inline_duplicate_of_a_stored_origin_is_a_form_error(admin_client, default_policy):
    AllowedOrigin.objects.create(origin=APP)
    rows = [{"origin": "https://App.example.com", "enabled": "on"}]
    response = admin_client.post(
        f"{POLICIES}{default_policy.pk}/change/", policy_form(default_policy, inline=rows)
    )
    assert response.status_code == 200
    assert AllowedOrigin.objects.count() == 1


# --- the origin list -----------------------------------------------------------


@pytest.fixture
def origins(default_policy):
    other = Policy.objects.create(name="api", url_regex="^/api/")
    return {
        "app": AllowedOrigin.objects.create(origin=APP, note="main app"),
        "disabled": AllowedOrigin.objects.create(origin="https://old.example.com", enabled=False),
        "expired": AllowedOrigin.objects.create(
            origin="https://trial.example.org", expires_at=timezone.now() - timedelta(hours=1)
        ),
        "api": AllowedOrigin.objects.create(origin="https://partner.example.net", policy=other),
    }


def listed(response) -> set[str]:
    assert response.status_code == 200
    return {entry.origin for entry in response.context["cl"].result_list}


def test_list_shows_everything(admin_client, origins):
    assert listed(admin_client.get(ORIGINS)) == {entry.origin for entry in origins.values()}


def test_list_search_by_origin(admin_client, origins):
    assert listed(admin_client.get(ORIGINS, {"q": "partner"})) == {"https://partner.example.net"}


def test_list_search_by_note(admin_client, origins):
    assert listed(admin_client.get(ORIGINS, {"q": "main app"})) == {APP}


def test_list_filter_enabled(admin_client, origins):
    assert listed(admin_client.get(ORIGINS, {"enabled__exact": "0"})) == {"https://old.example.com"}


def test_list_filter_expired(admin_client, origins):
    assert listed(admin_client.get(ORIGINS, {"expired": "yes"})) == {"https://trial.example.org"}


def test_list_filter_not_expired(admin_client, origins):
    assert listed(admin_client.get(ORIGINS, {"expired": "no"})) == {
        APP,
        "https://old.example.com",
        "https://partner.example.net",
    }


def test_list_filter_policy(admin_client, origins):
    api = Policy.objects.get(name="api")
    assert listed(admin_client.get(ORIGINS, {"policy__id__exact": str(api.pk)})) == {
        "https://partner.example.net"
    }


def test_list_shows_status(admin_client, origins):
    response = admin_client.get(ORIGINS)
    for word in (b"active", b"disabled", b"expired"):
        assert word in response.content


# --- every admin write invalidates at once ------------------------------------------
#
# The interval is an hour: the next request sees the change only through the
# invalidation after commit, and the generation other processes read has moved.


def admin_write(client, capture, write, *, allowed_after: bool) -> None:
    allowed(client)  # this process now holds a snapshot
    before = generation()
    with capture(execute=True):
        response = write()
    assert response.status_code == 302
    assert generation() > before
    assert allowed(client) is allowed_after


def test_admin_add_invalidates(
    admin_client, default_policy, long_interval, django_capture_on_commit_callbacks
):
    admin_write(
        admin_client,
        django_capture_on_commit_callbacks,
        lambda: admin_client.post(ORIGINS + "add/", origin_form(default_policy, APP)),
        allowed_after=True,
    )


def test_admin_change_invalidates(
    admin_client, default_policy, long_interval, django_capture_on_commit_callbacks
):
    entry = AllowedOrigin.objects.create(origin="https://before.example.com")
    admin_write(
        admin_client,
        django_capture_on_commit_callbacks,
        lambda: admin_client.post(f"{ORIGINS}{entry.pk}/change/", origin_form(default_policy, APP)),
        allowed_after=True,
    )


def test_admin_delete_invalidates(admin_client, long_interval, django_capture_on_commit_callbacks):
    entry = AllowedOrigin.objects.create(origin=APP)
    admin_write(
        admin_client,
        django_capture_on_commit_callbacks,
        lambda: admin_client.post(f"{ORIGINS}{entry.pk}/delete/", {"post": "yes"}),
        allowed_after=False,
    )
    assert not AllowedOrigin.objects.exists()


def test_admin_disable_action_invalidates(admin_client, long_interval, django_capture_on_commit_callbacks):
    entry = AllowedOrigin.objects.create(origin=APP)
    admin_write(
        admin_client,
        django_capture_on_commit_callbacks,
        lambda: admin_client.post(ORIGINS, {"action": "disable", "_selected_action": [str(entry.pk)]}),
        allowed_after=False,
    )
    entry.refresh_from_db()
    assert entry.enabled is False


def test_admin_enable_action_invalidates(admin_client, long_interval, django_capture_on_commit_callbacks):
    entry = AllowedOrigin.objects.create(origin=APP, enabled=False)
    admin_write(
        admin_client,
        django_capture_on_commit_callbacks,
        lambda: admin_client.post(ORIGINS, {"action": "enable", "_selected_action": [str(entry.pk)]}),
        allowed_after=True,
    )
    entry.refresh_from_db()
    assert entry.enabled is True


def test_admin_delete_selected_action_invalidates(
    admin_client, long_interval, django_capture_on_commit_callbacks
):
    entry = AllowedOrigin.objects.create(origin=APP)
    AllowedOrigin.objects.create(origin="https://other.example.com")
    admin_write(
        admin_client,
        django_capture_on_commit_callbacks,
        lambda: admin_client.post(
            ORIGINS, {"action": "delete_selected", "_selected_action": [str(entry.pk)], "post": "yes"}
        ),
        allowed_after=False,
    )
    assert list(AllowedOrigin.objects.values_list("origin", flat=True)) == ["https://other.example.com"]


def test_admin_policy_change_invalidates(
    admin_client, default_policy, long_interval, django_capture_on_commit_callbacks
):
    AllowedOrigin.objects.create(origin=APP)
    admin_write(
        admin_client,
        django_capture_on_commit_callbacks,
        lambda: admin_client.post(
            f"{POLICIES}{default_policy.pk}/change/", policy_form(default_policy, enabled=False)
        ),
        allowed_after=False,
    )


def test_admin_policy_inline_add_invalidates(
    admin_client, default_policy, long_interval, django_capture_on_commit_callbacks
):
    admin_write(
        admin_client,
        django_capture_on_commit_callbacks,
        lambda: admin_client.post(
            f"{POLICIES}{default_policy.pk}/change/",
            policy_form(default_policy, inline=[{"origin": APP, "enabled": "on"}]),
        ),
        allowed_after=True,
    )


def test_admin_policy_inline_delete_invalidates(
    admin_client, default_policy, long_interval, django_capture_on_commit_callbacks
):
    AllowedOrigin.objects.create(origin=APP)

    def write():
        data = policy_form(default_policy)
        data["origins-0-DELETE"] = "on"
        return admin_client.post(f"{POLICIES}{default_policy.pk}/change/", data)

    admin_write(admin_client, django_capture_on_commit_callbacks, write, allowed_after=False)
    assert not AllowedOrigin.objects.exists()


def test_admin_policy_delete_invalidates(
    admin_client, default_policy, long_interval, django_capture_on_commit_callbacks
):
    AllowedOrigin.objects.create(origin=APP)
    admin_write(
        admin_client,
        django_capture_on_commit_callbacks,
        lambda: admin_client.post(f"{POLICIES}{default_policy.pk}/delete/", {"post": "yes"}),
        allowed_after=False,
    )
    response = admin_client.get(ECHO, headers={"Origin": APP})
    assert cors_headers(response) == {}
