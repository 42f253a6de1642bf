"""The admin's overview page: charts drawn from known counts, lists, permissions, Allow."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.admin.models import ADDITION, LogEntry
from django.contrib.auth.models import Permission
from django.contrib.messages import get_messages

from corsadmin import usage
from corsadmin.charts import PLOT_HEIGHT, Series, bar_chart, nice_top
from corsadmin.models import AllowedOrigin, OriginUsage, Policy, PolicyHour, RefusedOrigin

pytestmark = pytest.mark.django_db

OVERVIEW = "/admin/corsadmin/allowedorigin/overview/"
ALLOW = OVERVIEW + "allow/"
NOW = datetime(2026, 11, 26, 10, 15, tzinfo=UTC)
THIS_HOUR = NOW.replace(minute=0)


@pytest.fixture(autouse=True)
def clock(monkeypatch, settings):
    settings.TIME_ZONE = "UTC"
    settings.CORSADMIN = {**settings.CORSADMIN, "TELEMETRY_FLUSH": "manual"}
    monkeypatch.setattr(usage, "clock", NOW.timestamp)


def bars(svg: str) -> list[tuple[str, str]]:
    """(height, tooltip) of every bar."""
    return re.findall(r'<rect class="bar" [^>]*height="([0-9.]+)"[^>]*><title>([^<]*)</title>', svg)


def chart(html: str, chart_id: str) -> str:
    match = re.search(rf'<svg [^>]*id="{chart_id}".*?</svg>', html, re.DOTALL)
    assert match, f"no chart {chart_id}"
    return match.group(0)


def user(django_user_model, *codenames: str, staff: bool = True):
    account = django_user_model.objects.create_user("someone", password="pw", is_staff=staff)
    account.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    return account


# --- the chart -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("largest", "top"), [(0, 1), (1, 1), (2, 2), (3, 5), (7, 10), (10, 10), (11, 20), (999, 1000)]
)
def test_the_axis_top_is_the_next_1_2_or_5(largest, top):
    assert nice_top(largest) == top


def test_bar_heights_are_proportional_to_the_axis_top():
    svg = bar_chart(
        "c",
        "Known data",
        ["a", "b", "c"],
        [Series("allowed", "#00f", [10, 4, 0]), Series("refused", "#f80", [5, 0, 1])],
    )
    assert PLOT_HEIGHT == 120  # top 10: 12 px per request
    assert bars(svg) == [
        ("120", "a allowed: 10"),
        ("60", "a refused: 5"),
        ("48", "b allowed: 4"),
        ("0", "b refused: 0"),
        ("0", "c allowed: 0"),
        ("12", "c refused: 1"),
    ]
    assert re.findall(r'class="y-tick"[^>]*>([^<]*)<', svg) == ["0", "5", "10"]
    assert re.findall(r'class="x-label"[^>]*>([^<]*)<', svg) == ["a", "b", "c"]


def test_the_chart_is_accessible_and_self_contained():
    svg = bar_chart(
        "c", "Policy x per hour", ["a"], [Series("allowed", "#00f", [3]), Series("refused", "#f80", [2])]
    )
    assert svg.startswith(
        '<svg xmlns="http://www.w3.org/2000/svg" class="corsadmin-chart" id="c" width="720" height="182" '
        'viewBox="0 0 720 182" role="img" aria-labelledby="c-title c-desc">'
        '<title id="c-title">Policy x per hour</title>'
        '<desc id="c-desc">Policy x per hour: allowed 3, refused 2 in total.</desc>'
    )
    assert "<script" not in svg and "href" not in svg
    assert re.findall(r'<rect class="legend"[^>]*></rect><text[^>]*>([^<]*)</text>', svg) == [
        "allowed",
        "refused",
    ]


def test_every_text_is_escaped():
    svg = bar_chart("c", "<b>", ["<i>"], [Series("a&b", "#00f", [1])])
    assert "<b>" not in svg and "<i>" not in svg and "&lt;i&gt;" in svg and "a&amp;b" in svg


# --- the page ------------------------------------------------------------------------------


def test_the_page_draws_each_policy_s_last_24_hours_and_30_days(admin_client):
    PolicyHour.objects.create(policy="default", hour=THIS_HOUR, allowed=10, refused=5)
    PolicyHour.objects.create(policy="default", hour=THIS_HOUR - timedelta(hours=1), allowed=4, refused=0)
    PolicyHour.objects.create(
        policy="default", hour=THIS_HOUR - timedelta(hours=24), allowed=6, refused=0
    )  # yesterday
    PolicyHour.objects.create(
        policy="default", hour=THIS_HOUR - timedelta(days=30), allowed=99, refused=99
    )  # too old
    html = admin_client.get(OVERVIEW).content.decode()
    hourly = bars(chart(html, "chart-default-hourly"))
    assert len(hourly) == 48
    assert hourly[-4:] == [
        ("48", "Nov. 26, 2026, 9 a.m. allowed: 4"),
        ("0", "Nov. 26, 2026, 9 a.m. refused: 0"),
        ("120", "Nov. 26, 2026, 10 a.m. allowed: 10"),
        ("60", "Nov. 26, 2026, 10 a.m. refused: 5"),
    ]
    assert all(height == "0" for height, _ in hourly[:-4])  # 10:00 yesterday is not in the last 24 hours
    daily = bars(chart(html, "chart-default-daily"))
    assert len(daily) == 60
    assert daily[-4:] == [  # top 20: 6 px per request
        ("36", "Nov. 25, 2026 allowed: 6"),
        ("0", "Nov. 25, 2026 refused: 0"),
        ("84", "Nov. 26, 2026 allowed: 14"),
        ("30", "Nov. 26, 2026 refused: 5"),
    ]
    assert all(height == "0" for height, _ in daily[:-4])
    assert "Policy default: 20 allowed, 5 refused in 30 days" in html


def test_policies_are_drawn_busiest_first(admin_client):
    PolicyHour.objects.create(policy="quiet", hour=THIS_HOUR, allowed=1)
    PolicyHour.objects.create(policy="busy", hour=THIS_HOUR, refused=9)
    html = admin_client.get(OVERVIEW).content.decode()
    assert re.findall(r'<svg [^>]*id="chart-([a-z]+)-hourly"', html) == ["busy", "quiet"]


def test_without_counts_the_page_says_so(admin_client):
    html = admin_client.get(OVERVIEW).content.decode()
    assert "No requests counted yet" in html and 'class="corsadmin-chart"' not in html


def test_the_lists(admin_client):
    AllowedOrigin.objects.create(origin="https://soon.example.com", expires_at=NOW + timedelta(days=6))
    AllowedOrigin.objects.create(origin="https://later.example.com", expires_at=NOW + timedelta(days=8))
    used = AllowedOrigin.objects.create(origin="https://used.example.com")
    OriginUsage.objects.create(origin=used, hits=3, last_seen=NOW - timedelta(days=1))
    RefusedOrigin.objects.create(
        origin="https://evil.example.net", path_prefix="/api/", count=12, first_seen=NOW, last_seen=NOW
    )
    response = admin_client.get(OVERVIEW)
    context = response.context
    assert [e.origin for e in context["expiring"]] == ["https://soon.example.com"]
    assert [e.origin for e in context["unused"]] == ["https://later.example.com", "https://soon.example.com"]
    assert [r.origin for r in context["top_refused"]] == ["https://evil.example.net"]
    html = response.content.decode()
    assert (
        '<a class="button" href="/admin/corsadmin/allowedorigin/check/?origin=https%3A%2F%2Fevil.example.net'
        '&amp;path=%2Fapi%2F&amp;method=GET">Check</a>' in html
    )


def test_recent_changes_name_who_made_them(admin_client, admin_user):
    admin_client.post(
        "/admin/corsadmin/allowedorigin/add/",
        {
            "origin": "https://new.example.com",
            "policy": Policy.objects.get(name="default").pk,
            "enabled": "on",
            "cors": "on",
        },
    )
    changes = admin_client.get(OVERVIEW).context["changes"]
    assert [(c.user.username, c.action_flag, c.object_repr) for c in changes] == [
        ("admin", ADDITION, "https://new.example.com")
    ]


def test_the_admin_home_leads_to_the_overview_through_the_app_list(admin_client):
    assert 'href="/admin/corsadmin/"' in admin_client.get("/admin/").content.decode()
    assert (
        f'<a href="{OVERVIEW}" id="corsadmin-overview-link">Overview</a>'
        in admin_client.get("/admin/corsadmin/").content.decode()
    )


@pytest.mark.parametrize(
    "changelist",
    ["/admin/corsadmin/allowedorigin/", "/admin/corsadmin/policy/", "/admin/corsadmin/refusedorigin/"],
)
def test_every_cors_list_links_to_the_overview(admin_client, changelist):
    assert (
        f'<a href="{OVERVIEW}" id="corsadmin-overview-tool">Overview</a>'
        in admin_client.get(changelist).content.decode()
    )


# --- permissions -----------------------------------------------------------------------------


def test_anonymous_is_sent_to_the_login(client):
    response = client.get(OVERVIEW)
    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")


def test_a_non_staff_user_is_refused(client, django_user_model):
    client.force_login(user(django_user_model, "view_allowedorigin", staff=False))
    response = client.get(OVERVIEW)
    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")


def test_staff_without_the_view_permission_is_refused(client, django_user_model):
    client.force_login(user(django_user_model, "view_policy"))
    assert client.get(OVERVIEW).status_code == 403


def test_staff_without_the_view_permission_are_not_shown_the_links(client, django_user_model):
    client.force_login(user(django_user_model, "view_policy"))
    for page in ("/admin/corsadmin/", "/admin/corsadmin/policy/"):
        response = client.get(page)
        assert response.status_code == 200
        assert OVERVIEW not in response.content.decode()
        assert "/admin/corsadmin/allowedorigin/check/" not in response.content.decode()


def test_the_view_permission_is_enough_to_see_it_without_allow_buttons(client, django_user_model):
    RefusedOrigin.objects.create(
        origin="https://evil.example.net", path_prefix="/", count=1, first_seen=NOW, last_seen=NOW
    )
    client.force_login(user(django_user_model, "view_allowedorigin"))
    response = client.get(OVERVIEW)
    assert response.status_code == 200
    assert ">Check</a>" in response.content.decode() and 'value="Allow"' not in response.content.decode()


def test_allow_needs_the_add_permission(client, django_user_model):
    client.force_login(user(django_user_model, "view_allowedorigin"))
    assert client.post(ALLOW, {"origin": "https://evil.example.net", "path": "/"}).status_code == 403
    assert not AllowedOrigin.objects.exists()


# --- Allow -----------------------------------------------------------------------------------


def test_allow_adds_the_origin_to_the_covering_policy_with_history(admin_client, admin_user):
    Policy.objects.create(name="api", url_regex="^/api/", priority=10)
    RefusedOrigin.objects.create(
        origin="https://partner.example.net", path_prefix="/api/", count=3, first_seen=NOW, last_seen=NOW
    )
    response = admin_client.post(
        ALLOW, {"origin": "https://partner.example.net", "path": "/api/"}, follow=True
    )
    assert response.redirect_chain == [(OVERVIEW, 302)]
    assert [str(m) for m in get_messages(response.wsgi_request)] == [
        "Allowed https://partner.example.net in policy api."
    ]
    entry = AllowedOrigin.objects.get()
    assert (entry.origin, entry.policy.name, entry.created_by) == (
        "https://partner.example.net",
        "api",
        admin_user,
    )
    log = LogEntry.objects.get()
    assert (log.user, log.action_flag, log.object_repr) == (
        admin_user,
        ADDITION,
        "https://partner.example.net",
    )
    assert RefusedOrigin.objects.get().dismissed


def test_allow_is_a_post(admin_client):
    assert admin_client.get(ALLOW, {"origin": "https://partner.example.net"}).status_code == 405
    assert not AllowedOrigin.objects.exists()


def test_allow_checks_csrf(client, admin_user):
    from django.test import Client

    csrf_client = Client(enforce_csrf_checks=True)
    csrf_client.force_login(admin_user)
    assert csrf_client.post(ALLOW, {"origin": "https://partner.example.net", "path": "/"}).status_code == 403
    assert not AllowedOrigin.objects.exists()


def test_allow_refuses_an_invalid_origin_and_changes_nothing(admin_client):
    response = admin_client.post(ALLOW, {"origin": "javascript://x", "path": "/"}, follow=True)
    messages = [str(m) for m in get_messages(response.wsgi_request)]
    assert len(messages) == 1 and messages[0].startswith("Not allowed: javascript://x: ")
    assert not AllowedOrigin.objects.exists() and not LogEntry.objects.exists()


def test_allow_of_an_origin_its_policy_lists_as_an_exception_names_it_and_links_to_it(admin_client):
    api = Policy.objects.create(name="api", url_regex="^/api/", priority=10)
    deny = AllowedOrigin.objects.create(origin="https://partner.example.net", policy=api, effect="deny")
    response = admin_client.post(
        ALLOW, {"origin": "https://partner.example.net", "path": "/api/"}, follow=True
    )
    assert [str(m) for m in get_messages(response.wsgi_request)] == [
        (
            "Not allowed: https://partner.example.net: the exception (deny entry) "
            "https://partner.example.net in policy api refuses it. To allow it, change that entry (make it "
            "an allow entry, or disable or delete it): "
            f'<a href="/admin/corsadmin/allowedorigin/{deny.pk}/change/">change '
            "https://partner.example.net in policy api</a>"
        )
    ]
    assert list(AllowedOrigin.objects.values_list("origin", "effect")) == [
        ("https://partner.example.net", "deny")
    ]
    assert not LogEntry.objects.exists()


def test_allow_of_an_origin_a_deny_wildcard_refuses_adds_nothing_and_names_it(admin_client):
    api = Policy.objects.create(name="api", url_regex="^/api/", priority=10)
    deny = AllowedOrigin.objects.create(origin="https://*.example.net", policy=api, effect="deny")
    response = admin_client.post(
        ALLOW, {"origin": "https://partner.example.net", "path": "/api/"}, follow=True
    )
    assert [str(m) for m in get_messages(response.wsgi_request)] == [
        (
            "Not allowed: https://partner.example.net: the exception (deny entry) https://*.example.net "
            "in policy api refuses it. To allow it, change that entry (make it an allow entry, or disable or "
            f'delete it): <a href="/admin/corsadmin/allowedorigin/{deny.pk}/change/">change '
            "https://*.example.net in policy api</a>"
        )
    ]
    assert list(AllowedOrigin.objects.values_list("origin", flat=True)) == ["https://*.example.net"]
