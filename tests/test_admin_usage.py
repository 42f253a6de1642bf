"""The admin's usage columns, the "unused for 30 / 90 days" filter and "disable unused"."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.messages import get_messages

from corsadmin import usage
from corsadmin.models import AllowedOrigin, OriginUsage

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/corsadmin/allowedorigin/"
NOW = datetime(2026, 11, 26, 10, 15, tzinfo=UTC)


@pytest.fixture(autouse=True)
def clock(monkeypatch, settings):
    settings.CORSADMIN = {**settings.CORSADMIN, "TELEMETRY_FLUSH": "manual"}
    monkeypatch.setattr(usage, "clock", NOW.timestamp)


def entry(origin: str, seen_days_ago: float | None = None, hits: int = 1) -> AllowedOrigin:
    obj = AllowedOrigin.objects.create(origin=origin)
    if seen_days_ago is not None:
        OriginUsage.objects.create(origin=obj, hits=hits, last_seen=NOW - timedelta(days=seen_days_ago))
    return obj


def listed(response) -> list[str]:
    return [str(obj) for obj in response.context["cl"].result_list]


def test_the_list_shows_hits_with_last_seen_on_hover(admin_client):
    entry("https://app.example.com", seen_days_ago=1, hits=1234)
    entry("https://b.example.com", seen_days_ago=1, hits=999)
    entry("https://never.example.com")
    html = admin_client.get(CHANGELIST).content.decode()
    seen = "last seen Nov. 25, 2026, 10:15 a.m."
    assert f'<td class="field-hits"><span title="1234 requests, {seen}">1.2k</span></td>' in html
    assert f'<td class="field-hits"><span title="999 requests, {seen}">999</span></td>' in html
    assert '<td class="field-hits"><span title="0 requests, never seen">0</span></td>' in html


def test_the_list_sorts_by_hits(admin_client):
    entry("https://a.example.com", seen_days_ago=1, hits=5)
    entry("https://b.example.com", seen_days_ago=1, hits=50)
    entry("https://c.example.com")
    response = admin_client.get(CHANGELIST, {"o": "-4"})  # the fourth column: hits, descending
    assert listed(response) == ["https://b.example.com", "https://a.example.com", "https://c.example.com"]


def test_the_change_form_shows_the_usage_read_only(admin_client):
    obj = entry("https://app.example.com", seen_days_ago=1, hits=77)
    html = admin_client.get(f"{CHANGELIST}{obj.pk}/change/").content.decode()
    assert (
        '<div class="readonly"><span title="77 requests, last seen Nov. 25, 2026, 10:15 a.m.">77</span></div>'
        in html
    )
    assert '<div class="readonly">Nov. 25, 2026, 10:15 a.m.</div>' in html  # the admin's one date format


@pytest.mark.parametrize(
    ("days", "expected"),
    [
        ("30", ["https://never.example.com", "https://old.example.com", "https://older.example.com"]),
        ("90", ["https://never.example.com", "https://older.example.com"]),
    ],
)
def test_the_unused_filter(admin_client, days, expected):
    entry("https://never.example.com")
    entry("https://old.example.com", seen_days_ago=31)
    entry("https://older.example.com", seen_days_ago=91)
    entry("https://recent.example.com", seen_days_ago=29)
    assert listed(admin_client.get(CHANGELIST, {"unused": days})) == expected


def test_the_unused_filter_offers_30_and_90_days(admin_client):
    html = admin_client.get(CHANGELIST).content.decode()
    assert "Unused for 30 days" in html and "Unused for 90 days" in html


def test_disable_unused_disables_only_the_unused_with_history(admin_client):
    never = entry("https://never.example.com")
    old = entry("https://old.example.com", seen_days_ago=31)
    recent = entry("https://recent.example.com", seen_days_ago=1)
    data = {"action": "disable_unused", "_selected_action": [never.pk, old.pk, recent.pk]}
    response = admin_client.post(CHANGELIST, data, follow=True)
    assert [str(m) for m in get_messages(response.wsgi_request)] == [
        "Disabled 2 origin(s) unused for 30 days. Kept 1 used within 30 days."
    ]
    assert dict(AllowedOrigin.objects.values_list("origin", "enabled")) == {
        "https://never.example.com": False,
        "https://old.example.com": False,
        "https://recent.example.com": True,
    }
    history = LogEntry.objects.filter(action_flag=CHANGE).order_by("object_id")
    assert [(e.object_repr, e.get_change_message()) for e in history] == [
        ("https://never.example.com", "Changed Enabled."),
        ("https://old.example.com", "Changed Enabled."),
    ]


def test_disable_unused_needs_the_change_permission(client, django_user_model):
    from django.contrib.auth.models import Permission

    viewer = django_user_model.objects.create_user("viewer", password="pw", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_allowedorigin"))
    client.force_login(viewer)
    never = entry("https://never.example.com")
    response = client.post(CHANGELIST, {"action": "disable_unused", "_selected_action": [never.pk]})
    assert response.status_code == 200  # the list again: the action is not offered
    assert AllowedOrigin.objects.get().enabled
