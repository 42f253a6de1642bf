"""The operators' admin: check page, refused origins, bulk actions with history."""

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Permission, User

from corsadmin.models import AllowedOrigin, Policy, RefusedOrigin
from corsadmin.telemetry import recorder

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/corsadmin/allowedorigin/"
REFUSED = "/admin/corsadmin/refusedorigin/"


def test_check_page_is_linked_from_the_app_index(admin_client):
    response = admin_client.get("/admin/corsadmin/")
    assert b'href="/admin/corsadmin/allowedorigin/check/"' in response.content


def test_check_page_shows_an_allowed_origin_with_its_headers(admin_client):
    AllowedOrigin.objects.create(origin="https://app.example.com")
    response = admin_client.get(
        "/admin/corsadmin/allowedorigin/check/",
        {"origin": "https://app.example.com", "path": "/api/", "method": "GET"},
    )
    assert response.context["result"]["allowed"] is True
    assert response.context["result"]["policy"] == "default"
    assert response.context["result"]["headers"] == {"Access-Control-Allow-Origin": "https://app.example.com"}


def test_check_page_explains_a_disabled_entry(admin_client):
    AllowedOrigin.objects.create(origin="https://app.example.com", enabled=False)
    response = admin_client.get(
        "/admin/corsadmin/allowedorigin/check/",
        {"origin": "https://app.example.com", "path": "/", "method": "GET"},
    )
    assert response.context["result"]["allowed"] is False
    assert "disabled" in response.context["result"]["reason"]
    default = Policy.objects.get(name="default")
    assert response.context["allow_url"] == (
        f"/admin/corsadmin/allowedorigin/add/?origin=https%3A%2F%2Fapp.example.com&policy={default.pk}"
    )


def test_check_page_needs_view_permission(client):
    user = User.objects.create_user("staff", password="pw", is_staff=True)
    client.force_login(user)
    assert client.get("/admin/corsadmin/allowedorigin/check/").status_code == 403
    user.user_permissions.add(Permission.objects.get(codename="view_allowedorigin"))
    assert client.get("/admin/corsadmin/allowedorigin/check/").status_code == 200


@pytest.fixture
def default_allows_something(db):
    """Refusals are counted where a policy covers the path: one that can allow some origin."""
    AllowedOrigin.objects.create(origin="https://app.example.com")


def test_refused_cross_origin_request_is_counted_without_a_write(
    client, django_assert_num_queries, default_allows_something
):
    client.get("/demo/echo/")  # warm the snapshot
    with django_assert_num_queries(0):
        client.get("/demo/echo/", HTTP_ORIGIN="https://stranger.example.com")
        client.get("/demo/echo/", HTTP_ORIGIN="https://stranger.example.com")
    assert recorder.pending()[("https://stranger.example.com", "/demo/", "")][0] == 2


def test_no_refusal_is_counted_where_the_empty_default_covers_nothing(client):
    client.get("/demo/echo/", HTTP_ORIGIN="https://stranger.example.com")
    assert recorder.pending() == {}


def test_same_origin_request_is_not_a_refusal(client):
    client.get("/demo/echo/", HTTP_ORIGIN="http://testserver")
    assert recorder.pending() == {}


def test_allowed_origin_is_not_counted(client):
    AllowedOrigin.objects.create(origin="https://app.example.com")
    client.get("/demo/echo/", HTTP_ORIGIN="https://app.example.com")
    assert recorder.pending() == {}


def test_flush_writes_and_accumulates_counts(client, default_allows_something):
    client.get("/demo/echo/", HTTP_ORIGIN="https://stranger.example.com")
    recorder.flush()
    client.get("/demo/echo/", HTTP_ORIGIN="https://stranger.example.com")
    client.get("/demo/echo/", HTTP_ORIGIN="https://stranger.example.com")
    recorder.flush()
    row = RefusedOrigin.objects.get()
    assert (row.origin, row.path_prefix, row.count) == ("https://stranger.example.com", "/demo/", 3)
    assert row.first_seen <= row.last_seen


def test_distinct_origins_are_capped(client, settings, default_allows_something):
    settings.CORSADMIN = {**settings.CORSADMIN, "TELEMETRY_MAX_ORIGINS": 2}
    for n in range(5):
        client.get("/demo/echo/", HTTP_ORIGIN=f"https://s{n}.example.com")
    assert len(recorder.pending()) == 2
    assert recorder.dropped == 3


def test_telemetry_can_be_switched_off(client, settings):
    settings.CORSADMIN = {**settings.CORSADMIN, "TELEMETRY": False}
    client.get("/demo/echo/", HTTP_ORIGIN="https://stranger.example.com")
    assert recorder.pending() == {}


def refused(origin="https://stranger.example.com"):
    from django.utils import timezone

    now = timezone.now()
    return RefusedOrigin.objects.create(
        origin=origin, path_prefix="/api/", count=3, first_seen=now, last_seen=now
    )


def test_refused_origins_list_and_search(admin_client):
    refused()
    refused("https://other.example.org")
    response = admin_client.get(REFUSED, {"q": "stranger"})
    assert [r.origin for r in response.context["cl"].result_list] == ["https://stranger.example.com"]


def test_allow_action_creates_the_entry_in_the_chosen_policy(admin_client):
    row = refused()
    Policy.objects.create(name="partners", url_regex="^/api/")
    page = admin_client.post(REFUSED, {"action": "allow", "_selected_action": [row.pk]})
    assert page.status_code == 200 and b"Allow in policy" in page.content
    admin_client.post(
        REFUSED, {"action": "allow", "_selected_action": [row.pk], "apply": "1", "policy": "partners"}
    )
    entry = AllowedOrigin.objects.get(origin="https://stranger.example.com")
    assert entry.policy.name == "partners"
    assert entry.created_by.username == "admin"
    assert LogEntry.objects.filter(object_id=str(entry.pk), action_flag=1).exists()
    row.refresh_from_db()
    assert row.dismissed is True


def test_allow_action_reports_an_unusable_origin(admin_client):
    row = refused("https://*.com")
    response = admin_client.post(
        REFUSED,
        {"action": "allow", "_selected_action": [row.pk], "apply": "1", "policy": "default"},
        follow=True,
    )
    assert AllowedOrigin.objects.count() == 0
    assert "public suffix" in response.content.decode()


def test_allow_action_of_an_origin_its_policy_denies_names_the_exception_and_links_to_it(admin_client):
    row = refused()
    deny = AllowedOrigin.objects.create(origin=row.origin, effect=AllowedOrigin.DENY)
    response = admin_client.post(
        REFUSED,
        {"action": "allow", "_selected_action": [row.pk], "apply": "1", "policy": "default"},
        follow=True,
    )
    assert [str(m) for m in response.context["messages"]] == [
        (
            f"Not allowed: {row.origin}: the exception (deny entry) {row.origin} in policy default refuses "
            "it. To allow it, change that entry (make it an allow entry, or disable or delete it): "
            f'<a href="/admin/corsadmin/allowedorigin/{deny.pk}/change/">change {row.origin} in policy '
            "default</a>"
        )
    ]
    assert f'<a href="/admin/corsadmin/allowedorigin/{deny.pk}/change/">' in response.content.decode()
    assert list(AllowedOrigin.objects.values_list("origin", "effect")) == [(row.origin, "deny")]
    row.refresh_from_db()
    assert row.dismissed is False


def test_dismiss_hides_a_refused_origin(admin_client):
    row = refused()
    admin_client.post(REFUSED, {"action": "dismiss", "_selected_action": [row.pk]})
    assert list(admin_client.get(REFUSED).context["cl"].result_list) == []
    assert list(admin_client.get(REFUSED, {"dismissed": "yes"}).context["cl"].result_list) == [
        RefusedOrigin.objects.get()
    ]


def test_disable_action_is_recorded_in_history(admin_client):
    entry = AllowedOrigin.objects.create(origin="https://app.example.com")
    admin_client.post(CHANGELIST, {"action": "disable", "_selected_action": [entry.pk]})
    entry.refresh_from_db()
    assert entry.enabled is False
    log = LogEntry.objects.get(object_id=str(entry.pk))
    assert log.user.username == "admin"
    assert log.get_change_message() == "Changed Enabled."  # the API's and the CLI's words


def test_move_to_policy_action(admin_client):
    entry = AllowedOrigin.objects.create(origin="https://app.example.com")
    Policy.objects.create(name="partners")
    admin_client.post(
        CHANGELIST,
        {"action": "move_to_policy", "_selected_action": [entry.pk], "apply": "1", "policy": "partners"},
    )
    entry.refresh_from_db()
    assert entry.policy.name == "partners"


def test_move_to_policy_refuses_a_duplicate_and_changes_nothing(admin_client):
    partners = Policy.objects.create(name="partners")
    AllowedOrigin.objects.create(origin="https://app.example.com", policy=partners)
    entry = AllowedOrigin.objects.create(origin="https://app.example.com")
    admin_client.post(
        CHANGELIST,
        {"action": "move_to_policy", "_selected_action": [entry.pk], "apply": "1", "policy": "partners"},
    )
    entry.refresh_from_db()
    assert entry.policy.name == "default"


def test_set_expiry_action(admin_client):
    entry = AllowedOrigin.objects.create(origin="https://app.example.com")
    admin_client.post(
        CHANGELIST,
        {
            "action": "set_expiry",
            "_selected_action": [entry.pk],
            "apply": "1",
            "expires_at_0": "2031-01-02",
            "expires_at_1": "03:04:05",
        },
    )
    entry.refresh_from_db()
    assert entry.expires_at.isoformat() == "2031-01-02T03:04:05+00:00"


def test_origin_list_shows_status(admin_client):
    from datetime import timedelta

    from django.utils import timezone

    AllowedOrigin.objects.create(
        origin="https://soon.example.com", expires_at=timezone.now() + timedelta(days=1)
    )
    AllowedOrigin.objects.create(
        origin="https://old.example.com", expires_at=timezone.now() - timedelta(days=1)
    )
    content = admin_client.get(CHANGELIST).content.decode()
    assert "expires soon" in content and "expired" in content


def test_policy_list_shows_the_settings_policy_read_only(admin_client, settings):
    settings.CORS_ALLOWED_ORIGINS = ["https://legacy.example.com"]
    content = admin_client.get("/admin/corsadmin/policy/").content.decode()
    assert 'id="settings-policy"' in content
    assert "https://legacy.example.com" in content


def test_policy_list_has_no_settings_policy_without_settings(admin_client):
    assert 'id="settings-policy"' not in admin_client.get("/admin/corsadmin/policy/").content.decode()


def test_null_is_refused_on_a_credentials_policy():
    from django.core.exceptions import ValidationError

    policy = Policy.objects.create(name="app", allow_credentials=True)
    entry = AllowedOrigin(origin="null", policy=policy)
    with pytest.raises(ValidationError) as excinfo:
        entry.full_clean()
    assert "ALLOW_NULL_WITH_CREDENTIALS" in str(excinfo.value)
    with pytest.raises(ValidationError):
        entry.save()
    assert not AllowedOrigin.objects.filter(origin="null").exists()


def test_null_on_a_credentials_policy_with_the_override(settings):
    settings.CORSADMIN = {**settings.CORSADMIN, "ALLOW_NULL_WITH_CREDENTIALS": True}
    policy = Policy.objects.create(name="app", allow_credentials=True)
    AllowedOrigin(origin="null", policy=policy).full_clean()


def test_credentials_cannot_be_turned_on_for_a_policy_listing_null():
    from django.core.exceptions import ValidationError

    policy = Policy.objects.create(name="app")
    AllowedOrigin.objects.create(origin="null", policy=policy)
    policy.allow_credentials = True
    with pytest.raises(ValidationError):
        policy.full_clean()


def test_admin_warns_about_http_on_a_credentials_policy(admin_client):
    policy = Policy.objects.create(name="app", allow_credentials=True)
    response = admin_client.post(
        "/admin/corsadmin/allowedorigin/add/",
        {"origin": "http://app.example.com", "policy": policy.pk, "enabled": "on", "cors": "on", "note": ""},
        follow=True,
    )
    assert AllowedOrigin.objects.filter(origin="http://app.example.com").exists()
    assert "plain http://" in response.content.decode()


def test_admin_messages_never_capitalise_an_origin(admin_client):
    policy = Policy.objects.create(name="app", allow_credentials=True)
    response = admin_client.post(
        "/admin/corsadmin/allowedorigin/add/",
        {
            "origin": "http://legacy.example.org",
            "policy": policy.pk,
            "enabled": "on",
            "cors": "on",
            "note": "",
        },
        follow=True,
    )
    html = response.content.decode()
    assert "Http://" not in html
    assert "lists the plain http:// origin http://legacy.example.org:" in html


@pytest.mark.parametrize(
    "entry, origin, reason",
    [
        ("https://app.example.com", "http://app.example.com", "scheme differs"),
        ("https://app.example.com:8443", "https://app.example.com", "port differs"),
        ("https://*.example.com", "https://example.com", "subdomains only"),
        ("https://app.example.com", "https://other.example.org", "no entry for this origin"),
    ],
)
def test_check_page_names_the_nearest_reason(admin_client, entry, origin, reason):
    AllowedOrigin.objects.create(origin=entry)
    response = admin_client.get(
        "/admin/corsadmin/allowedorigin/check/", {"origin": origin, "path": "/", "method": "GET"}
    )
    assert response.context["result"]["allowed"] is False
    assert reason in response.context["result"]["reason"]


def test_check_page_names_a_header_the_policy_does_not_allow(admin_client):
    AllowedOrigin.objects.create(origin="https://app.example.com")
    response = admin_client.get(
        "/admin/corsadmin/allowedorigin/check/",
        {"origin": "https://app.example.com", "path": "/", "method": "PUT", "request_headers": "x-api-key"},
    )
    assert response.context["result"]["allowed"] is False
    assert "x-api-key" in response.context["result"]["reason"]


def test_blocked_api_lists_refused_origins(client, admin_user):
    refused("https://stranger.example.com")
    client.force_login(admin_user)
    body = client.get("/api/cors/blocked/").json()
    assert [(r["origin"], r["count"]) for r in body["results"]] == [("https://stranger.example.com", 3)]
    assert set(body["results"][0]) == {
        "origin", "path_prefix", "report", "policy", "count", "first_seen", "last_seen"
    }  # fmt: skip
    assert (body["results"][0]["report"], body["results"][0]["policy"]) == (False, None)


def test_blocked_api_hides_dismissed(client, admin_user):
    row = refused()
    row.dismissed = True
    row.save()
    client.force_login(admin_user)
    assert client.get("/api/cors/blocked/").json()["results"] == []


def test_opening_the_add_page_does_not_recreate_a_deleted_default_policy(admin_client):
    Policy.objects.filter(name="default").delete()
    assert admin_client.get("/admin/corsadmin/allowedorigin/add/").status_code == 200
    assert not Policy.objects.filter(name="default").exists()
