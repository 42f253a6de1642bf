"""Admin bulk actions: validated like the form, all or nothing, updated_at bumped."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.messages import get_messages
from django.utils import timezone

from corsadmin.documents import export_document
from corsadmin.models import NULL_WITH_CREDENTIALS, AllowedOrigin, Policy

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/corsadmin/allowedorigin/"
LONG_AGO = timezone.now() - timedelta(days=30)


def old_entry(origin: str = "https://app.example.com", **fields) -> AllowedOrigin:
    entry = AllowedOrigin.objects.create(origin=origin, **fields)
    AllowedOrigin.objects.filter(pk=entry.pk).update(updated_at=LONG_AGO)
    return entry


def run(client, action: str, entries: list[AllowedOrigin], **form) -> list[str]:
    data = {"action": action, "_selected_action": [e.pk for e in entries], **form}
    if form:
        data["apply"] = "1"
    response = client.post(CHANGELIST, data, follow=True)
    return [str(m) for m in get_messages(response.wsgi_request)]


def without_time(document: dict) -> dict:
    return {**document, "exported_at": None}


@pytest.mark.parametrize(
    ("action", "form"),
    [
        ("disable", {}),
        ("enable", {}),
        ("move_to_policy", {"policy": "partners"}),
        ("set_expiry", {"expires_at_0": "2031-01-02", "expires_at_1": "03:04:05"}),
    ],
)
def test_bulk_action_bumps_updated_at(admin_client, action, form):
    Policy.objects.create(name="partners")
    entry = old_entry(enabled=action != "enable")
    run(admin_client, action, [entry], **form)
    entry.refresh_from_db()
    assert entry.updated_at > LONG_AGO + timedelta(days=29)


def test_move_null_into_a_credentials_policy_is_refused_with_the_reason(admin_client):
    Policy.objects.create(name="creds", allow_credentials=True)
    entry = old_entry("null")
    before = without_time(export_document())
    messages = run(admin_client, "move_to_policy", [entry], policy="creds")
    assert messages == ["Nothing changed: 1 origin(s) refused.", f"Origin null: {NULL_WITH_CREDENTIALS}"]
    assert without_time(export_document()) == before


def test_move_refuses_all_when_one_is_refused(admin_client):
    Policy.objects.create(name="creds", allow_credentials=True)
    fine, bad = old_entry("https://app.example.com"), old_entry("null")
    run(admin_client, "move_to_policy", [fine, bad], policy="creds")
    assert list(AllowedOrigin.objects.values_list("origin", "policy__name").order_by("origin")) == [
        ("https://app.example.com", "default"),
        ("null", "default"),
    ]


def test_move_refuses_a_duplicate_with_the_reason(admin_client):
    partners = Policy.objects.create(name="partners")
    AllowedOrigin.objects.create(origin="https://app.example.com", policy=partners)
    entry = old_entry()
    messages = run(admin_client, "move_to_policy", [entry], policy="partners")
    assert messages == [
        "Nothing changed: 1 origin(s) refused.",
        "Origin https://app.example.com: This origin is already listed in this policy.",
    ]
    entry.refresh_from_db()
    assert entry.policy.name == "default"


def test_bulk_action_reports_how_many_changed(admin_client):
    entries = [old_entry("https://a.example.com"), old_entry("https://b.example.com", enabled=False)]
    assert run(admin_client, "disable", entries) == ["Disabled 1 origin(s)."]


def test_set_expiry_in_the_past_is_a_form_error_and_changes_nothing(admin_client):
    entry = old_entry()
    data = {
        "action": "set_expiry",
        "_selected_action": [entry.pk],
        "apply": "1",
        "expires_at_0": "2020-01-01",
        "expires_at_1": "00:00:00",
    }
    response = admin_client.post(CHANGELIST, data)
    assert response.status_code == 200
    assert response.context["form"].errors == {
        "expires_at": [
            (
                "This expiry is in the past: the entry would never match. Give a later date and time, or "
                "leave it empty to never expire."
            )
        ]
    }
    entry.refresh_from_db()
    assert (entry.expires_at, entry.updated_at) == (None, LONG_AGO)


def test_enabling_an_http_origin_on_a_credentials_policy_warns_as_the_api_does(admin_client):
    Policy.objects.filter(name="default").update(allow_credentials=True)
    entry = old_entry("http://legacy.example.org", enabled=False)
    assert run(admin_client, "enable", [entry]) == [
        (
            "Policy default allows credentials and lists the plain http:// origin http://legacy.example.org: "
            "anyone on the network path can impersonate it and read your users' data. Prefer https://."
        ),
        "Enabled 1 origin(s).",
    ]


def test_moving_an_origin_where_an_exception_refuses_it_warns_as_the_api_does(admin_client):
    partners = Policy.objects.create(name="partners")
    AllowedOrigin.objects.create(origin="https://*.example.com", policy=partners, effect="deny")
    entry = old_entry()
    assert run(admin_client, "move_to_policy", [entry], policy="partners") == [
        (
            "The exception (deny entry) https://*.example.com in policy 'partners' refuses "
            "https://app.example.com: this entry allows nothing there until that exception is disabled, "
            "deleted or expires."
        ),
        "Moved 1 origin(s) to partners.",
    ]
