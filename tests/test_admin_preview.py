"""The admin's Preview button (change forms, delete pages, bulk actions) and the question
before a save that would refuse traffic seen in the last 24 hours."""

from __future__ import annotations

import pytest

from corsadmin.models import AllowedOrigin, Policy

from .test_admin import ORIGINS, POLICIES, form_errors, origin_form
from .test_preview import OTHER, fresh_traffic, send, state  # noqa: F401  (fixture)

pytestmark = pytest.mark.django_db
CONFIRMED = "_confirmed_traffic"


@pytest.fixture
def default_policy():
    return Policy.objects.get(name="default")


@pytest.fixture
def entry(default_policy):
    return AllowedOrigin.objects.create(origin="https://app.example.com", policy=default_policy)


APP = "https://app.example.com"


def flipped(response, table: str) -> list[str]:
    return [flip.seen.origin for flip in response.context[table]]


def test_the_change_form_has_a_preview_button(admin_client, entry):
    page = admin_client.get(f"{ORIGINS}{entry.pk}/change/").content.decode()
    assert 'name="_preview" id="corsadmin-preview-button"' in page


def test_previewing_disabling_an_entry_lists_its_traffic_and_saves_nothing(client, admin_client, entry):
    send(client, APP, times=2)
    before = state()
    data = {k: v for k, v in origin_form(entry.policy, APP).items() if k != "enabled"}
    response = admin_client.post(f"{ORIGINS}{entry.pk}/change/", {**data, "_preview": "1"})
    assert response.status_code == 200
    assert response.templates[0].name == "admin/corsadmin/preview.html"
    assert (flipped(response, "would_refuse"), flipped(response, "would_allow")) == ([APP], [])
    assert response.context["asked"] is False
    assert state() == before


def test_previewing_an_addition_lists_refused_traffic_it_would_allow(client, admin_client, entry):
    send(client, OTHER)
    before = state()
    response = admin_client.post(ORIGINS + "add/", {**origin_form(entry.policy, OTHER), "_preview": "1"})
    assert flipped(response, "would_allow") == [OTHER]
    assert state() == before


def test_an_invalid_form_previews_as_its_errors(admin_client, entry):
    before = state()
    response = admin_client.post(ORIGINS + "add/", {**origin_form(entry.policy, "ftp://x"), "_preview": "1"})
    assert response.status_code == 200
    assert "origin" in form_errors(response)
    assert state() == before


def test_a_save_refusing_recent_traffic_asks_first(client, admin_client, entry):
    send(client, APP)
    before = state()
    data = {k: v for k, v in origin_form(entry.policy, APP).items() if k != "enabled"}
    response = admin_client.post(f"{ORIGINS}{entry.pk}/change/", data)
    assert response.status_code == 200
    assert response.context["asked"] is True
    assert 'name="_confirmed_traffic"' in response.content.decode()
    assert state() == before
    response = admin_client.post(f"{ORIGINS}{entry.pk}/change/", {**data, CONFIRMED: "1"})
    assert response.status_code == 302
    assert AllowedOrigin.objects.get(pk=entry.pk).enabled is False


def test_a_save_flipping_nothing_is_not_asked_about(client, admin_client, entry):
    send(client, APP)
    response = admin_client.post(f"{ORIGINS}{entry.pk}/change/", origin_form(entry.policy, APP, note="hi"))
    assert response.status_code == 302
    assert AllowedOrigin.objects.get(pk=entry.pk).note == "hi"


def test_the_delete_page_previews_and_deletes_only_when_confirmed(client, admin_client, entry):
    send(client, APP)
    before = state()
    page = admin_client.get(f"{ORIGINS}{entry.pk}/delete/").content.decode()
    assert 'id="corsadmin-preview-form"' in page
    response = admin_client.post(f"{ORIGINS}{entry.pk}/delete/", {"_preview": "1"})
    assert flipped(response, "would_refuse") == [APP]
    response = admin_client.post(f"{ORIGINS}{entry.pk}/delete/", {"post": "yes"})
    assert response.context["asked"] is True
    assert state() == before
    response = admin_client.post(f"{ORIGINS}{entry.pk}/delete/", {"post": "yes", CONFIRMED: "1"})
    assert response.status_code == 302
    assert not AllowedOrigin.objects.filter(pk=entry.pk).exists()


def test_a_policy_change_form_previews(client, admin_client, entry, default_policy):
    send(client, APP)
    page = admin_client.get(f"{POLICIES}{default_policy.pk}/delete/").content.decode()
    assert 'id="corsadmin-preview-form"' in page
    before = state()
    response = admin_client.post(f"{POLICIES}{default_policy.pk}/delete/", {"_preview": "1"})
    assert flipped(response, "would_refuse") == [APP]
    assert state() == before


@pytest.mark.parametrize("action", ["delete_selected", "disable"])
def test_a_bulk_action_previews_what_it_would_do(client, admin_client, entry, action):
    send(client, APP)
    before = state()
    listing = admin_client.get(ORIGINS).content.decode()
    assert 'id="corsadmin-preview-action"' in listing
    data = {"action": action, "_selected_action": [str(entry.pk)], "_preview": "1"}
    response = admin_client.post(ORIGINS, data)
    assert flipped(response, "would_refuse") == [APP]
    assert state() == before


def test_a_bulk_action_refusing_recent_traffic_asks_first(client, admin_client, entry):
    send(client, APP)
    before = state()
    data = {"action": "disable", "_selected_action": [str(entry.pk)], "index": "0"}
    response = admin_client.post(ORIGINS, data)
    assert response.context["asked"] is True
    assert state() == before
    fields = dict(response.context["fields"])
    assert fields["action"] == "disable"
    response = admin_client.post(ORIGINS, {**data, CONFIRMED: "1"})
    assert response.status_code == 302
    assert AllowedOrigin.objects.get(pk=entry.pk).enabled is False


def test_the_bulk_delete_confirmation_has_a_preview_button(client, admin_client, entry):
    send(client, APP)
    page = admin_client.post(ORIGINS, {"action": "delete_selected", "_selected_action": [str(entry.pk)]})
    assert 'id="corsadmin-preview-form"' in page.content.decode()
    response = admin_client.post(
        ORIGINS, {"action": "delete_selected", "_selected_action": [str(entry.pk)], "_preview": "1"}
    )
    assert flipped(response, "would_refuse") == [APP]
    assert AllowedOrigin.objects.filter(pk=entry.pk).exists()
