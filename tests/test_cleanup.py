"""Clean-up never widens access (issue 19, item 5): "unused" never picks an exception (deny
entry), a deny entry's hits count the requests it refused, and a bulk disable, delete or move
that removes exceptions names the origins that become allowed and asks first."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.messages import get_messages
from django.core.management import call_command
from django.utils import timezone

from corsadmin import usage
from corsadmin.models import AllowedOrigin, OriginUsage, Policy

from .cors_helpers import ECHO, cors_headers

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/corsadmin/allowedorigin/"
OVERVIEW = CHANGELIST + "overview/"
NOW = datetime(2026, 11, 26, 10, 15, tzinfo=UTC)
WILDCARD = "https://*.example.com"
UC = "https://usercontent.example.com"
APP = "https://app.example.com"


@pytest.fixture(autouse=True)
def clock(monkeypatch, settings):
    settings.CORSADMIN = {**settings.CORSADMIN, "USAGE_FLUSH": "manual"}
    monkeypatch.setattr(usage, "clock", NOW.timestamp)
    monkeypatch.setattr(usage, "_entries", {})
    monkeypatch.setattr(usage, "_policies", {})
    monkeypatch.setattr(usage, "_hour_end", 0.0)
    monkeypatch.setattr(usage, "_covering_for", (0, 0.0))


@pytest.fixture
def credentials_policy() -> Policy:
    policy, _ = Policy.objects.get_or_create(name="default", defaults={"url_regex": "^/"})
    Policy.objects.filter(pk=policy.pk).update(
        url_regex="^/", allow_credentials=True, allow_all_origins=False
    )
    policy.refresh_from_db()
    return policy


@pytest.fixture
def exception(credentials_policy) -> tuple[AllowedOrigin, AllowedOrigin]:
    """``https://*.example.com`` allowed (and used yesterday), ``usercontent`` denied."""
    allow = AllowedOrigin.objects.create(origin=WILDCARD, policy=credentials_policy)
    OriginUsage.objects.create(origin=allow, hits=40, last_seen=NOW - timedelta(days=1))
    deny = AllowedOrigin.objects.create(origin=UC, policy=credentials_policy, effect=AllowedOrigin.DENY)
    return allow, deny


def allow_origin(client, origin: str) -> str | None:
    return cors_headers(client.get(ECHO, HTTP_ORIGIN=origin)).get("Access-Control-Allow-Origin")


def selected(response) -> list[int]:
    return [obj.pk for obj in response.context["cl"].result_list]


# --- item 5, as reported ------------------------------------------------------------


def test_the_overview_s_disable_unused_leaves_a_denied_origin_refused(
    admin_client, client, exception, django_capture_on_commit_callbacks
):
    _allow, deny = exception
    assert allow_origin(client, UC) is None
    overview = admin_client.get(OVERVIEW).content.decode()
    link = re.search(r'href="([^"]*\?unused=30[^"]*)"', overview).group(1).replace("&amp;", "&")
    listing = admin_client.get(link)  # what the operator selects, and the exception too
    data = {"action": "disable_unused", "_selected_action": sorted({*selected(listing), deny.pk})}
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(CHANGELIST, data, follow=True)
    assert allow_origin(client, UC) is None
    assert allow_origin(client, APP) == APP
    assert dict(AllowedOrigin.objects.values_list("origin", "enabled")) == {WILDCARD: True, UC: True}
    kept = "Kept 1 exception(s) (deny entries): a clean-up never disables them."
    assert [str(m) for m in get_messages(response.wsgi_request)] == [
        f"Disabled 0 origin(s) unused for 30 days. {kept}"
    ]


def test_unused_never_lists_an_exception(admin_client, exception):
    _allow, deny = exception
    assert selected(admin_client.get(CHANGELIST, {"unused": "30"})) == []
    assert list(AllowedOrigin.objects.filter(usage.unused(30))) == []
    assert deny.pk in selected(admin_client.get(CHANGELIST, {"effect__exact": "deny"}))


def test_the_api_s_unused_filter_never_lists_an_exception(exception, django_user_model):
    from rest_framework.test import APIClient

    api = APIClient()
    api.force_authenticate(django_user_model.objects.create_superuser("root", password="pw"))
    never = AllowedOrigin.objects.create(origin="https://old.example.net", policy=exception[0].policy)
    body = api.get("/api/cors/origins/", {"unused_days": 30}).json()
    assert [row["id"] for row in body["results"]] == [never.pk]


def test_the_cli_s_unused_list_never_lists_an_exception(exception, capsys):
    call_command("cors", "list", "--unused-days", "30", "--json")
    assert capsys.readouterr().out.strip() == "[]"


# --- deny entries count their hits ----------------------------------------------------


def test_a_deny_entry_counts_the_requests_it_refused(client, exception):
    allow, deny = exception
    for _ in range(3):
        client.get(ECHO, HTTP_ORIGIN=UC)
    client.get(ECHO, HTTP_ORIGIN=APP)
    usage.flush()
    hits = dict(OriginUsage.objects.values_list("origin_id", "hits"))
    assert hits == {allow.pk: 41, deny.pk: 3}
    assert OriginUsage.objects.get(origin=deny).last_seen == NOW


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
async def test_the_async_path_counts_a_deny_entry_the_same(async_client):
    from asgiref.sync import sync_to_async

    def setup() -> AllowedOrigin:
        policy, _ = Policy.objects.get_or_create(name="default", defaults={"url_regex": "^/"})
        AllowedOrigin.objects.create(origin=WILDCARD, policy=policy)
        return AllowedOrigin.objects.create(origin=UC, policy=policy, effect=AllowedOrigin.DENY)

    deny = await sync_to_async(setup)()
    response = await async_client.get(ECHO, headers={"Origin": UC})
    assert "Access-Control-Allow-Origin" not in response.headers
    assert usage._entries == {int(NOW.timestamp()) // 3600: {deny.pk: [1, NOW.timestamp()]}}


def test_a_deny_entry_counts_when_a_lower_policy_then_allows(client, exception):
    _allow, deny = exception
    Policy.objects.create(name="open", url_regex="^/", priority=-1, allow_all_origins=True)
    assert allow_origin(client, UC) == "*"
    usage.flush()
    assert OriginUsage.objects.get(origin=deny).hits == 1


def test_the_overview_shows_how_often_each_exception_denied(admin_client, client, exception):
    client.get(ECHO, HTTP_ORIGIN=UC)
    client.get(ECHO, HTTP_ORIGIN=UC)
    usage.flush()
    html = admin_client.get(OVERVIEW).content.decode()
    section = html[html.index('id="overview-denials"') : html.index('id="overview-changes"')]
    assert f'title="{UC}">{UC}</span></a></td>' in section
    assert "<td>default</td><td>denied 2 times</td>" in section


def test_the_list_says_denied_on_hover_for_an_exception(admin_client, client, exception):
    client.get(ECHO, HTTP_ORIGIN=UC)
    usage.flush()
    html = admin_client.get(CHANGELIST).content.decode()
    assert '<span title="denied 1 requests, last Nov. 26, 2026, 10:15 a.m.">1</span>' in html


# --- bulk disable / delete / move of an exception asks first ---------------------------


def test_disabling_an_exception_shows_what_becomes_allowed_and_changes_nothing(
    admin_client, client, exception
):
    _allow, deny = exception
    response = admin_client.post(CHANGELIST, {"action": "disable", "_selected_action": [deny.pk]})
    assert response.status_code == 200
    assert response.templates[0].name == "admin/corsadmin/confirm_widening.html"
    html = response.content.decode()
    assert f"<li>{UC}: allowed by {WILDCARD} in policy default (denied today by {UC})</li>" in html
    assert AllowedOrigin.objects.get(pk=deny.pk).enabled
    assert allow_origin(client, UC) is None


def test_disabling_an_exception_proceeds_once_confirmed(
    admin_client, client, exception, django_capture_on_commit_callbacks
):
    _allow, deny = exception
    data = {"action": "disable", "_selected_action": [deny.pk], "confirm_widening": "1"}
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(CHANGELIST, data, follow=True)
    assert [str(m) for m in get_messages(response.wsgi_request)] == ["Disabled 1 origin(s)."]
    assert not AllowedOrigin.objects.get(pk=deny.pk).enabled
    assert allow_origin(client, UC) == UC


def test_disabling_only_allow_entries_asks_nothing(admin_client, exception):
    allow, _deny = exception
    response = admin_client.post(
        CHANGELIST, {"action": "disable", "_selected_action": [allow.pk]}, follow=True
    )
    assert [str(m) for m in get_messages(response.wsgi_request)] == ["Disabled 1 origin(s)."]


def test_disabling_the_allow_entry_with_its_exception_opens_nothing(admin_client, exception):
    allow, deny = exception
    response = admin_client.post(CHANGELIST, {"action": "disable", "_selected_action": [allow.pk, deny.pk]})
    html = response.content.decode()
    assert '<p id="widening-origins">No origin becomes allowed now' in html
    assert AllowedOrigin.objects.filter(enabled=True).count() == 2


def test_delete_selected_names_what_becomes_allowed_before_deleting(
    admin_client, client, exception, django_capture_on_commit_callbacks
):
    _allow, deny = exception
    data = {"action": "delete_selected", "_selected_action": [deny.pk]}
    page = admin_client.post(CHANGELIST, data)
    assert f"{UC}: allowed by {WILDCARD} in policy default (denied today by {UC})" in page.content.decode()
    assert AllowedOrigin.objects.filter(pk=deny.pk).exists()
    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post(CHANGELIST, {**data, "post": "yes"})
    assert not AllowedOrigin.objects.filter(pk=deny.pk).exists()
    assert allow_origin(client, UC) == UC


def test_the_delete_page_of_one_exception_names_what_becomes_allowed(admin_client, exception):
    _allow, deny = exception
    html = admin_client.get(f"{CHANGELIST}{deny.pk}/delete/").content.decode()
    assert f"{UC}: allowed by {WILDCARD} in policy default (denied today by {UC})" in html


def test_moving_an_exception_names_what_becomes_allowed(admin_client, exception):
    _allow, deny = exception
    Policy.objects.create(name="other", url_regex="^/other/")
    html = admin_client.post(
        CHANGELIST, {"action": "move_to_policy", "_selected_action": [deny.pk]}
    ).content.decode()
    assert f"{UC}: allowed by {WILDCARD} in policy default (denied today by {UC})" in html


def test_a_wildcard_exception_names_the_overlap_and_skips_what_another_exception_refuses(
    admin_client, credentials_policy
):
    def add(origin: str, effect: str = "allow") -> AllowedOrigin:
        return AllowedOrigin.objects.create(origin=origin, policy=credentials_policy, effect=effect)

    add("https://*.example.com")
    add("https://a.uc.example.com")
    add("https://c.uc.example.com:8443")
    add("https://c.uc.example.com:*", effect="deny")  # stays: still refuses c.uc on any port
    add("https://other.example.net")
    deny = add("https://*.uc.example.com", effect="deny")
    html = admin_client.post(
        CHANGELIST, {"action": "disable", "_selected_action": [deny.pk]}
    ).content.decode()
    items = re.findall(r"<li>([^<]*allowed by[^<]*)</li>", html)
    denied = "(denied today by https://*.uc.example.com)"
    assert items == [
        f"https://*.uc.example.com: allowed by https://*.example.com in policy default {denied}",
        f"https://a.uc.example.com: allowed by https://a.uc.example.com in policy default {denied}",
    ]


# --- the CLI and the API act on an exception by its name: explicit, and said ----------


def test_cli_disable_of_an_exception_proceeds_and_says_what_becomes_allowed(exception, capsys):
    call_command("cors", "disable", UC)
    out, err = capsys.readouterr()
    assert out.splitlines()[0] == f"Disabled {UC} in policy 'default'."
    assert err.strip() == (
        f"Warning: The exception {UC} no longer refuses {UC}: allowed by {WILDCARD} in policy 'default'."
    )
    assert not AllowedOrigin.objects.get(origin=UC).enabled


def test_cli_remove_of_an_exception_proceeds_and_says_what_becomes_allowed(exception, capsys):
    call_command("cors", "remove", UC)
    out, err = capsys.readouterr()
    assert out.splitlines()[0] == f"Removed {UC} from policy 'default'."
    assert f"The exception {UC} no longer refuses {UC}" in err
    assert not AllowedOrigin.objects.filter(origin=UC).exists()


# --- set expiry of an exception, and the policy page's inline delete -------------------


def test_setting_an_expiry_on_an_exception_names_what_becomes_allowed_when_it_passes(admin_client, exception):
    _allow, deny = exception
    response = admin_client.post(CHANGELIST, {"action": "set_expiry", "_selected_action": [deny.pk]})
    html = response.content.decode()
    assert response.templates[0].name == "admin/corsadmin/action_form.html"
    assert "<h2>An exception that expires widens what is allowed</h2>" in html
    assert "With an expiry set, these origins become allowed when it passes:" in html
    assert f"<li>{UC}: allowed by {WILDCARD} in policy default (denied today by {UC})</li>" in html
    assert AllowedOrigin.objects.get(pk=deny.pk).expires_at is None


def test_setting_an_expiry_on_allow_entries_names_nothing(admin_client, exception):
    allow, _deny = exception
    response = admin_client.post(CHANGELIST, {"action": "set_expiry", "_selected_action": [allow.pk]})
    assert 'id="widening"' not in response.content.decode()


def inline_delete(policy: Policy, doomed: AllowedOrigin) -> dict[str, str]:
    from .test_admin import policy_form

    data = policy_form(policy, allow_credentials="on")
    for index, entry in enumerate(policy.origins.all()):
        assert data[f"origins-{index}-id"] == str(entry.pk)
        data[f"origins-{index}-effect"] = entry.effect
        if entry.pk == doomed.pk:
            data[f"origins-{index}-DELETE"] = "on"
    return data


def test_deleting_an_exception_in_the_policy_inline_is_refused_naming_where_to_do_it(
    admin_client, client, credentials_policy, exception, django_capture_on_commit_callbacks
):
    _allow, deny = exception
    url = f"/admin/corsadmin/policy/{credentials_policy.pk}/change/"
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(url, inline_delete(credentials_policy, deny))
    assert response.status_code == 200
    [formset] = response.context["inline_admin_formsets"]
    assert formset.formset.non_form_errors() == [
        (
            f"The exception (deny entry) {UC} is in force: deleting it allows what it refuses. Delete it "
            'from the list of allowed origins (select it, then "Delete selected"), which names the origins '
            "that become allowed and asks first; or untick Delete to keep it. Nothing was saved."
        )
    ]
    assert AllowedOrigin.objects.filter(pk=deny.pk).exists()
    assert allow_origin(client, UC) is None


def test_deleting_an_allow_entry_in_the_policy_inline_still_works(
    admin_client, credentials_policy, exception
):
    allow, _deny = exception
    url = f"/admin/corsadmin/policy/{credentials_policy.pk}/change/"
    response = admin_client.post(url, inline_delete(credentials_policy, allow))
    assert response.status_code == 302
    assert not AllowedOrigin.objects.filter(pk=allow.pk).exists()


# --- the API's PATCH/PUT of an exception proceeds and says what becomes allowed ----------

OPENED = f"The exception {UC} no longer refuses {UC}: allowed by {WILDCARD} in policy 'default'."


@pytest.mark.parametrize(
    "change",
    [{"enabled": False}, {"effect": "allow"}],
    ids=["disable", "deny-to-allow"],
)
def test_api_patch_that_lifts_an_exception_proceeds_with_warnings(
    full_client, client, exception, change, django_capture_on_commit_callbacks
):
    _allow, deny = exception
    with django_capture_on_commit_callbacks(execute=True):
        response = full_client.patch(f"/api/cors/origins/{deny.pk}/", change, format="json")
    assert response.status_code == 200
    assert response.json()["warnings"] == [OPENED]
    assert allow_origin(client, UC) == UC


def test_api_patch_setting_an_exception_s_expiry_warns_what_it_opens_then(full_client, client, exception):
    _allow, deny = exception
    later = (timezone.now() + timedelta(days=30)).replace(microsecond=0)
    response = full_client.patch(
        f"/api/cors/origins/{deny.pk}/", {"expires_at": later.isoformat()}, format="json"
    )
    assert response.status_code == 200
    assert response.json()["warnings"] == [
        (
            f"Once the exception {UC} expires at {later.isoformat()}, it no longer refuses {UC}: "
            f"allowed by {WILDCARD} in policy 'default'."
        )
    ]
    assert allow_origin(client, UC) is None


def test_api_patch_of_an_exception_that_opens_nothing_has_no_warnings(full_client, exception):
    _allow, deny = exception
    response = full_client.patch(f"/api/cors/origins/{deny.pk}/", {"note": "kept"}, format="json")
    assert response.status_code == 200
    assert "warnings" not in response.json()


def test_api_delete_of_an_exception_keeps_its_contract(full_client, exception):
    """204 and no body, as every DELETE (documented: not warned; the CLI's remove prints it)."""
    _allow, deny = exception
    response = full_client.delete(f"/api/cors/origins/{deny.pk}/")
    assert (response.status_code, response.content) == (204, b"")


# --- the admin's forms warn as the API does (issue 21, item 5) ------------------------------


def test_the_origin_change_form_warns_what_disabling_an_exception_opens(admin_client, exception):
    from django.contrib.messages import WARNING

    _allow, deny = exception
    data = {"origin": UC, "policy": str(deny.policy_id), "effect": "deny", "note": "", "cors": "on"}
    data.update({"expires_at_0": "", "expires_at_1": ""})  # "enabled" left out: unticked
    response = admin_client.post(CHANGELIST + f"{deny.pk}/change/", data, follow=True)
    assert [str(m) for m in get_messages(response.wsgi_request) if m.level == WARNING] == [OPENED]
    assert not AllowedOrigin.objects.get(pk=deny.pk).enabled


REFUSED_BY_DENY = (
    "The exception (deny entry) https://*.example.org in policy 'default' refuses https://a.example.org: "
    "this entry allows nothing there until that exception is disabled, deleted or expires."
)


def test_the_origin_add_form_warns_when_an_exception_refuses_the_new_entry(admin_client, credentials_policy):
    from django.contrib.messages import WARNING

    AllowedOrigin.objects.create(origin="https://*.example.org", policy=credentials_policy, effect="deny")
    data = {
        "origin": "https://a.example.org",
        "policy": str(credentials_policy.pk),
        "enabled": "on",
        "cors": "on",
    }
    data.update({"effect": "allow", "note": "", "expires_at_0": "", "expires_at_1": ""})
    response = admin_client.post(CHANGELIST + "add/", data, follow=True)
    assert [str(m) for m in get_messages(response.wsgi_request) if m.level == WARNING] == [REFUSED_BY_DENY]
    assert AllowedOrigin.objects.filter(origin="https://a.example.org").exists()


def test_the_api_warns_when_an_exception_refuses_the_new_entry(full_client, credentials_policy):
    AllowedOrigin.objects.create(origin="https://*.example.org", policy=credentials_policy, effect="deny")
    response = full_client.post(
        "/api/cors/origins/", {"origin": "https://a.example.org", "policy": "default"}, format="json"
    )
    assert response.status_code == 201
    assert response.json()["warnings"] == [REFUSED_BY_DENY]


def test_disabling_an_exception_in_the_policy_inline_warns_what_it_opens(
    admin_client, credentials_policy, exception
):
    from django.contrib.messages import WARNING

    from .test_admin import policy_form

    _allow, deny = exception
    data = policy_form(credentials_policy, allow_credentials="on")
    for index, entry in enumerate(credentials_policy.origins.all()):
        data[f"origins-{index}-effect"] = entry.effect
        if entry.pk == deny.pk:
            del data[f"origins-{index}-enabled"]
    url = f"/admin/corsadmin/policy/{credentials_policy.pk}/change/"
    response = admin_client.post(url, data, follow=True)
    assert [str(m) for m in get_messages(response.wsgi_request) if m.level == WARNING] == [OPENED]
    assert not AllowedOrigin.objects.get(pk=deny.pk).enabled


def test_cors_add_warns_when_an_exception_refuses_the_new_entry(credentials_policy):
    from .cli_runner import run_cors

    AllowedOrigin.objects.create(origin="https://*.example.org", policy=credentials_policy, effect="deny")
    ran = run_cors("add", "https://a.example.org", "--policy", "default")
    assert ran.returncode == 0
    assert ran.stderr.splitlines() == [f"Warning: {REFUSED_BY_DENY}"]
