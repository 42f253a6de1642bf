"""The admin leads to the right fix: check linked everywhere, coloured, with the right button."""

from __future__ import annotations

import pytest

from corsadmin.models import AllowedOrigin, Policy
from corsadmin.refresh import holder

pytestmark = pytest.mark.django_db

CHECK = "/admin/corsadmin/allowedorigin/check/"
APP = "https://app.example.com"


def test_check_is_reached_from_the_admin_home_through_the_app_list(admin_client):
    assert b'href="/admin/corsadmin/"' in admin_client.get("/admin/").content
    assert f'href="{CHECK}"'.encode() in admin_client.get("/admin/corsadmin/").content


def test_the_host_site_keeps_its_own_admin_index(admin_client):
    from django.contrib import admin

    assert (admin.site.index_template, admin.site.app_index_template) == (None, None)
    response = admin_client.get("/admin/")
    assert response.templates[0].name == "admin/index.html"
    assert CHECK.encode() not in response.content


@pytest.mark.parametrize(
    "changelist",
    ["/admin/corsadmin/allowedorigin/", "/admin/corsadmin/policy/", "/admin/corsadmin/refusedorigin/"],
)
def test_check_is_linked_from_every_cors_list(admin_client, changelist):
    assert f'<a href="{CHECK}" id="corsadmin-check-link">'.encode() in admin_client.get(changelist).content


@pytest.mark.parametrize(
    ("origin", "css_class"),
    [(APP, b'<h2 class="allowed">'), ("https://evil.example", b'<h2 class="refused">')],
)
def test_check_result_is_coloured_by_the_verdict(admin_client, origin, css_class):
    AllowedOrigin.objects.create(origin=APP)
    holder.reset()
    content = admin_client.get(CHECK, {"origin": origin, "path": "/", "method": "GET"}).content
    assert css_class in content
    assert b"#check-result h2.refused { background: #c62828" in content


def test_a_listed_origin_refused_for_a_header_is_fixed_by_editing_the_policy(admin_client):
    AllowedOrigin.objects.create(origin=APP)
    holder.reset()
    response = admin_client.get(
        CHECK, {"origin": APP, "path": "/", "method": "PUT", "request_headers": "x-api-key"}
    )
    default = Policy.objects.get(name="default")
    assert (response.context["edit_url"], response.context["allow_url"]) == (
        f"/admin/corsadmin/policy/{default.pk}/change/",
        None,
    )
    assert b'id="check-edit-policy"' in response.content


def test_allow_link_preselects_the_policy_covering_the_path(admin_client):
    api = Policy.objects.create(name="api", url_regex="^/api/", priority=10)
    holder.reset()
    response = admin_client.get(CHECK, {"origin": APP, "path": "/api/items/", "method": "GET"})
    assert response.context["allow_url"] == (
        f"/admin/corsadmin/allowedorigin/add/?origin=https%3A%2F%2Fapp.example.com&policy={api.pk}"
    )
    add_page = admin_client.get(response.context["allow_url"])
    assert add_page.context["adminform"].form.initial["policy"] == str(api.pk)


# --- refused origins: allowed since, Check and Allow on the detail page ----------------------------

REFUSED = "/admin/corsadmin/refusedorigin/"


@pytest.fixture
def refused_rows():
    from django.utils import timezone

    from corsadmin.models import RefusedOrigin

    now = timezone.now()
    rows = {
        origin: RefusedOrigin.objects.create(
            origin=origin, path_prefix="/demo/", count=count, first_seen=now, last_seen=now
        )
        for origin, count in ((APP, 5), ("https://evil.example", 9))
    }
    AllowedOrigin.objects.create(origin=APP)  # allowed since it was refused
    holder.reset()
    return rows


def test_refused_list_marks_origins_allowed_since(admin_client, refused_rows):
    response = admin_client.get(REFUSED)
    marks = {
        row.origin: response.context["cl"].model_admin.allowed_now(row)
        for row in response.context["cl"].result_list
    }
    assert marks == {APP: True, "https://evil.example": False}


def test_refused_list_can_hide_origins_allowed_since(admin_client, refused_rows):
    response = admin_client.get(REFUSED, {"allowed_now": "no"})
    assert [row.origin for row in response.context["cl"].result_list] == ["https://evil.example"]


def test_refused_list_sorts_by_count(admin_client, refused_rows):
    response = admin_client.get(REFUSED, {"o": "-3"})  # the third column, count, descending
    assert [row.origin for row in response.context["cl"].result_list] == ["https://evil.example", APP]


def test_refused_detail_page_offers_check_and_allow(admin_client, refused_rows):
    row = refused_rows["https://evil.example"]
    content = admin_client.get(f"{REFUSED}{row.pk}/change/").content.decode()
    assert (
        '<a class="button" id="refused-check" href="/admin/corsadmin/allowedorigin/check/'
        '?origin=https%3A%2F%2Fevil.example&amp;path=%2Fdemo%2F&amp;method=GET">Check</a>'
    ) in content
    assert (
        '<a class="button" id="refused-allow" href="/admin/corsadmin/allowedorigin/add/'
        '?origin=https%3A%2F%2Fevil.example">Allow…</a>'
    ) in content


# --- advice in the forms ---------------------------------------------------------------------------


def test_an_origin_that_looks_like_a_regex_gets_a_hint_about_wildcards(admin_client):
    response = admin_client.post(
        "/admin/corsadmin/allowedorigin/add/",
        {
            "origin": "^https://.*\\.example\\.com$",
            "policy": str(Policy.objects.get(name="default").pk),
            "enabled": "on",
            "cors": "on",
            "note": "",
            "expires_at_0": "",
            "expires_at_1": "",
        },
    )
    assert response.context["adminform"].form.errors["origin"] == [
        (
            "'^https://.*\\.example\\.com$' looks like a regular expression; entries are origins, not "
            "patterns. For every subdomain write a wildcard (https://*.example.com), for any port "
            "http://localhost:*; a regex can stay in CORS_ALLOWED_ORIGIN_REGEXES."
        )
    ]
    assert not AllowedOrigin.objects.exists()


def test_a_bare_star_on_a_credentials_policy_gets_advice_that_is_not_circular(admin_client):
    from corsadmin.models import EVERY_ORIGIN_WITH_CREDENTIALS

    creds = Policy.objects.create(name="creds", allow_credentials=True)
    response = admin_client.post(
        "/admin/corsadmin/allowedorigin/add/",
        {
            "origin": "*",
            "policy": str(creds.pk),
            "enabled": "on",
            "note": "",
            "expires_at_0": "",
            "expires_at_1": "",
        },
    )
    assert response.context["adminform"].form.errors["origin"] == [EVERY_ORIGIN_WITH_CREDENTIALS]
    assert "allow all origins" not in EVERY_ORIGIN_WITH_CREDENTIALS


def test_expiry_says_its_time_zone(admin_client):
    form = admin_client.get("/admin/corsadmin/allowedorigin/add/").context["adminform"].form
    assert form.fields["expires_at"].help_text == "Date and time in UTC; leave empty to never expire."


# --- methods picked from a list ------------------------------------------------------------------------


def test_policy_form_offers_the_methods_as_checkboxes_ticked_with_the_defaults(admin_client):
    content = admin_client.get("/admin/corsadmin/policy/add/").content.decode()
    boxes = {
        method: f'<input type="checkbox" name="allow_methods" value="{method}" id="id_allow_methods_{index}"'
        for index, method in enumerate(("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"))
    }
    ticked = {method for method, box in boxes.items() if box + " checked>" in content}
    unticked = {method for method, box in boxes.items() if box + ">" in content}
    assert (ticked, unticked) == ({"GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}, {"HEAD"})
    assert '<input type="text" name="allow_methods_other" id="id_allow_methods_other" value=""' in content


def test_policy_methods_from_the_checkboxes_and_the_other_box(admin_client):
    from tests.test_admin import policy_form

    data = policy_form()
    data.pop("allow_methods")
    response = admin_client.post(
        "/admin/corsadmin/policy/add/",
        {**data, "allow_methods": ["GET", "PUT"], "allow_methods_other": "propfind"},
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    assert Policy.objects.get(name="new").allow_methods == ["GET", "PUT", "PROPFIND"]
