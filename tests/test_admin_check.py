"""The admin leads to the right fix: check linked everywhere, coloured, with the right button."""

from __future__ import annotations

import pytest

from corsadmin.models import AllowedOrigin, Policy
from corsadmin.refresh import holder

pytestmark = pytest.mark.django_db

CHECK = "/admin/corsadmin/allowedorigin/check/"
APP = "https://app.example.com"


@pytest.fixture(autouse=True)
def manual_telemetry(settings):
    settings.CORSADMIN = {**settings.CORSADMIN, "TELEMETRY_FLUSH": "manual"}


def test_check_is_linked_from_the_admin_home(admin_client):
    assert f'href="{CHECK}"'.encode() in admin_client.get("/admin/").content


@pytest.mark.parametrize(
    "changelist",
    ["/admin/corsadmin/allowedorigin/", "/admin/corsadmin/policy/", "/admin/corsadmin/refusedorigin/"],
)
def test_check_is_linked_from_every_cors_list(admin_client, changelist):
    assert f'<a href="{CHECK}" id="corsadmin-check-link">'.encode() in admin_client.get(changelist).content


@pytest.mark.parametrize(("origin", "css_class"), [(APP, b'<h2 class="allowed">'), ("https://evil.example", b'<h2 class="refused">')])
def test_check_result_is_coloured_by_the_verdict(admin_client, origin, css_class):
    AllowedOrigin.objects.create(origin=APP)
    holder.reset()
    content = admin_client.get(CHECK, {"origin": origin, "path": "/", "method": "GET"}).content
    assert css_class in content
    assert b"#check-result h2.refused { background: #c62828" in content


def test_a_listed_origin_refused_for_a_header_is_fixed_by_editing_the_policy(admin_client):
    AllowedOrigin.objects.create(origin=APP)
    holder.reset()
    response = admin_client.get(CHECK, {"origin": APP, "path": "/", "method": "PUT", "request_headers": "x-api-key"})
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
