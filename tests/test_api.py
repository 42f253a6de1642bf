"""The REST API: endpoints, permission levels, history, filters, schema and docs."""

from __future__ import annotations

import json
import re

import pytest
from django.contrib.admin.models import ADDITION, CHANGE, DELETION, LogEntry
from django.contrib.auth.models import User
from django.core.management import call_command
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from corsadmin.models import AllowedOrigin, Policy
from tests.api_fixtures import API, make_user, token_client

pytestmark = pytest.mark.django_db

APP = "https://app.example.com"


@pytest.fixture
def entry(db):
    return AllowedOrigin.objects.create(origin=APP, note="the app")


@pytest.fixture
def api_policy(db):
    return Policy.objects.create(name="api", url_regex=r"^/api/", priority=10)


# --- permission levels, every endpoint ------------------------------------------

READS = [
    "policies/",
    "policies/default/",
    "origins/",
    "origins/{id}/",
    "check/?origin=https://app.example.com",
    "export/",
    "blocked/",
]


def _url(path, entry):
    return API + path.format(id=entry.pk)


@pytest.mark.parametrize("path", READS)
def test_anonymous_cannot_read(anon_client, entry, path):
    response = anon_client.get(_url(path, entry))
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"


@pytest.mark.parametrize("path", READS)
def test_user_without_view_permission_cannot_read(nobody_client, entry, path):
    assert nobody_client.get(_url(path, entry)).status_code == 403


@pytest.mark.parametrize("path", READS)
def test_reader_can_read(reader_client, entry, path):
    assert reader_client.get(_url(path, entry)).status_code == 200


@pytest.mark.parametrize("path", READS)
def test_full_operator_can_read(full_client, entry, path):
    assert full_client.get(_url(path, entry)).status_code == 200


def test_origin_reader_cannot_export(entry):
    client = token_client(make_user("half", "view_allowedorigin"))
    assert client.get(API + "check/?origin=" + APP).status_code == 200
    assert client.get(API + "export/").status_code == 403
    assert client.get(API + "policies/").status_code == 403


WRITES = [
    ("post", "policies/", {"name": "new"}),
    ("put", "policies/default/", {"name": "default"}),
    ("patch", "policies/default/", {"note": "x"}),
    ("delete", "policies/default/", None),
    ("post", "origins/", {"origin": "https://new.example.com"}),
    ("put", "origins/{id}/", {"origin": APP}),
    ("patch", "origins/{id}/", {"enabled": False}),
    ("delete", "origins/{id}/", None),
    ("post", "import/", {"version": 1, "policies": []}),
]


@pytest.mark.parametrize("method, path, body", WRITES)
def test_anonymous_cannot_write(anon_client, entry, method, path, body):
    response = getattr(anon_client, method)(_url(path, entry), body, format="json")
    assert response.status_code == 401
    assert AllowedOrigin.objects.get(pk=entry.pk).enabled
    assert not LogEntry.objects.exists()


@pytest.mark.parametrize("method, path, body", WRITES)
def test_reader_cannot_write(reader_client, entry, method, path, body):
    response = getattr(reader_client, method)(_url(path, entry), body, format="json")
    assert response.status_code == 403
    assert AllowedOrigin.objects.get(pk=entry.pk).note == "the app"
    assert Policy.objects.filter(name="default").exists()


@pytest.mark.parametrize("method, path, body", WRITES)
def test_full_operator_can_write(full_client, entry, method, path, body):
    response = getattr(full_client, method)(_url(path, entry), body, format="json")
    assert response.status_code in (200, 201, 204), response.content


def test_add_permission_alone_cannot_change(entry):
    client = token_client(make_user("adder", "view_allowedorigin", "add_allowedorigin"))
    assert client.post(API + "origins/", {"origin": "https://b.example.com"}).status_code == 201
    assert client.patch(API + f"origins/{entry.pk}/", {"enabled": False}).status_code == 403
    assert client.delete(API + f"origins/{entry.pk}/").status_code == 403


def test_import_needs_delete_permission_to_replace(entry):
    perms = [f"{a}_{m}" for a in ("view", "add", "change") for m in ("policy", "allowedorigin")]
    client = token_client(make_user("importer", *perms))
    document = {"version": 1, "policies": [{"name": "default"}]}
    assert client.post(API + "import/", document, format="json").status_code == 200
    assert client.post(API + "import/?replace=true", document, format="json").status_code == 403
    assert AllowedOrigin.objects.filter(pk=entry.pk).exists()


def test_superuser_can_do_everything(admin_user_, entry):
    client = token_client(admin_user_)
    assert client.get(API + "export/").status_code == 200
    assert client.delete(API + f"origins/{entry.pk}/").status_code == 204


# --- authentication ---------------------------------------------------------------


def test_bad_token_is_refused(entry):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token not-a-token")
    assert client.get(API + "origins/").status_code == 401


def test_session_login_needs_csrf_token_to_write(full):
    client = APIClient(enforce_csrf_checks=True)
    assert client.login(username="operator", password="pw-operator")
    assert client.get(API + "origins/").status_code == 200
    response = client.post(API + "origins/", {"origin": APP}, format="json")
    assert response.status_code == 403
    assert "CSRF" in response.json()["detail"]
    assert not AllowedOrigin.objects.exists()
    # With the CSRF cookie and header, as a browser page would send them.
    client.get("/admin/login/")
    csrf = client.cookies["csrftoken"].value
    response = client.post(API + "origins/", {"origin": APP}, format="json", HTTP_X_CSRFTOKEN=csrf)
    assert response.status_code == 201


def test_drf_create_token_command_makes_a_working_token(full, capsys):
    call_command("drf_create_token", "operator")
    key = Token.objects.get(user=full).key
    assert key in capsys.readouterr().out
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert client.get(API + "origins/").status_code == 200


# --- origins -----------------------------------------------------------------------


def test_create_origin_defaults_to_default_policy(full_client, full):
    response = full_client.post(API + "origins/", {"origin": "HTTPS://App.Example.com:443"}, format="json")
    assert response.status_code == 201
    body = response.json()
    assert body["origin"] == APP
    assert body["policy"] == "default"
    assert body["enabled"] is True
    assert body["created_by"] == "operator"
    assert body["expires_at"] is None
    assert set(body) == {
        "id",
        "origin",
        "policy",
        "enabled",
        "note",
        "expires_at",
        "csrf_trusted",
        "scopes",
        "effect",
        "created_at",
        "updated_at",
        "created_by",
        "hits",
        "last_seen",
        "status",
    }
    assert body["scopes"] == ["cors"]
    assert body["status"] == "active"
    entry = AllowedOrigin.objects.get(pk=body["id"])
    assert entry.created_by == full
    assert entry.policy.name == "default"


def test_create_origin_with_form_encoding(full_client):
    # What `curl -d origin=...` sends.
    response = full_client.post(
        API + "origins/",
        "origin=https%3A%2F%2Fapp.example.com",
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 201
    entry = AllowedOrigin.objects.get()
    assert (entry.origin, entry.enabled, entry.csrf_trusted) == (APP, True, False)


def test_create_policy_with_form_encoding_keeps_boolean_defaults(full_client):
    response = full_client.post(
        API + "policies/", "name=forms", content_type="application/x-www-form-urlencoded"
    )
    assert response.status_code == 201
    policy = Policy.objects.get(name="forms")
    assert (policy.enabled, policy.allow_credentials, policy.allow_all_origins) == (True, False, False)


def test_form_encoded_patch_changes_only_what_it_names(full_client, entry):
    entry.csrf_trusted = True
    entry.save()
    response = full_client.patch(
        API + f"origins/{entry.pk}/", "note=x", content_type="application/x-www-form-urlencoded"
    )
    assert response.status_code == 200
    entry.refresh_from_db()
    assert (entry.note, entry.enabled, entry.csrf_trusted) == ("x", True, True)


def test_create_origin_in_named_policy(full_client, api_policy):
    response = full_client.post(
        API + "origins/",
        {
            "origin": APP,
            "policy": "api",
            "note": "n",
            "expires_at": "2031-01-02T03:04:05+02:00",
            "csrf_trusted": True,
            "enabled": False,
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["policy"] == "api"
    assert body["expires_at"] == "2031-01-02T01:04:05Z"
    assert body["csrf_trusted"] is True
    assert body["enabled"] is False


def test_created_by_and_timestamps_are_read_only(full_client, full):
    other = User.objects.create_user("someone")
    response = full_client.post(
        API + "origins/",
        {"origin": APP, "created_by": other.pk, "created_at": "2000-01-01T00:00:00Z", "id": 999},
        format="json",
    )
    assert response.status_code == 201
    entry = AllowedOrigin.objects.get()
    assert entry.created_by == full
    assert entry.created_at.year > 2000
    assert entry.pk != 999


def test_retrieve_update_and_delete_origin(full_client, entry, api_policy):
    url = API + f"origins/{entry.pk}/"
    assert full_client.get(url).json()["origin"] == APP
    response = full_client.put(url, {"origin": "https://other.example.com", "policy": "api"}, format="json")
    assert response.status_code == 200
    entry.refresh_from_db()
    assert (entry.origin, entry.policy.name) == ("https://other.example.com", "api")
    response = full_client.patch(url, {"note": "changed"}, format="json")
    assert response.json()["note"] == "changed"
    assert response.json()["origin"] == "https://other.example.com"
    assert full_client.delete(url).status_code == 204
    assert not AllowedOrigin.objects.filter(pk=entry.pk).exists()
    assert full_client.get(url).status_code == 404


def test_unknown_origin_id_is_404(reader_client):
    assert reader_client.get(API + "origins/12345/").status_code == 404
    assert reader_client.get(API + "origins/abc/").status_code == 404


def test_origins_filter_by_policy_enabled_and_search(reader_client, api_policy):
    default = Policy.objects.get(name="default")
    AllowedOrigin.objects.create(origin=APP, policy=default)
    AllowedOrigin.objects.create(origin="https://b.example.com", policy=default, enabled=False, note="bee")
    AllowedOrigin.objects.create(origin=APP, policy=api_policy)

    def origins(query):
        response = reader_client.get(API + "origins/" + query)
        assert response.status_code == 200
        return [(o["policy"], o["origin"]) for o in response.json()["results"]]

    assert len(origins("")) == 3
    assert origins("?policy=api") == [("api", APP)]
    assert origins("?policy=default&enabled=true") == [("default", APP)]
    assert origins("?enabled=false") == [("default", "https://b.example.com")]
    assert origins("?search=bee") == [("default", "https://b.example.com")]
    assert origins("?search=b.example") == [("default", "https://b.example.com")]
    assert origins("?policy=nope") == []


def test_origins_filter_rejects_bad_boolean(reader_client):
    response = reader_client.get(API + "origins/?enabled=maybe")
    assert response.status_code == 400
    assert "enabled" in response.json()


@pytest.mark.parametrize(
    "query",
    [
        "origins/?enabled=",
        "origins/?unused_days=",
        "origins/?effect=",
        "policies/?enabled=",
        "policies/?mode=",
    ],
)
def test_a_typed_filter_given_empty_is_refused(reader_client, query):
    """Given empty is not "no filter" (left out is): an empty value is not a boolean, a number of
    days or a choice, as the schema says."""
    response = reader_client.get(API + query)
    assert response.status_code == 400
    assert list(response.json()) == [query.split("?")[1].rstrip("=")]


def test_origins_are_paginated(reader_client):
    AllowedOrigin.objects.bulk_create(
        AllowedOrigin(origin=f"https://o{i:03}.example.com", policy=Policy.objects.get(name="default"))
        for i in range(120)
    )
    body = reader_client.get(API + "origins/").json()
    assert body["count"] == 120
    assert len(body["results"]) == 50
    assert body["next"].endswith("/api/cors/origins/?page=2")
    body = reader_client.get(API + "origins/?page_size=100&page=2").json()
    assert [o["origin"] for o in body["results"]] == [f"https://o{i:03}.example.com" for i in range(100, 120)]
    assert reader_client.get(API + "origins/?page=99").status_code == 404


# --- policies -----------------------------------------------------------------------


POLICY_FIELDS = {
    "name",
    "url_regex",
    "allow_all_origins",
    "allow_credentials",
    "allow_methods",
    "allow_headers",
    "expose_headers",
    "max_age",
    "allow_private_network",
    "mode",
    "hosts",
    "enabled",
    "priority",
    "note",
    "created_at",
    "updated_at",
}


def test_default_policy_is_listed(reader_client):
    body = reader_client.get(API + "policies/").json()
    assert body["count"] == 1
    policy = body["results"][0]
    assert set(policy) == POLICY_FIELDS
    assert policy["name"] == "default"
    assert policy["url_regex"] == "^/"
    assert policy["max_age"] == 7200
    assert policy["allow_private_network"] is False


def test_create_policy_normalises_lists(full_client):
    response = full_client.post(
        API + "policies/",
        {
            "name": "api",
            "url_regex": "^/api/",
            "allow_methods": ["get", "post", "GET"],
            "allow_headers": ["X-Request-Id"],
            "expose_headers": ["X-Total"],
            "allow_credentials": True,
            "priority": 5,
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["allow_methods"] == ["GET", "POST"]
    assert body["allow_headers"] == ["x-request-id"]
    assert body["expose_headers"] == ["x-total"]
    assert Policy.objects.get(name="api").allow_methods == ["GET", "POST"]


def test_rename_and_delete_policy(full_client, api_policy):
    AllowedOrigin.objects.create(origin=APP, policy=api_policy)
    response = full_client.patch(API + "policies/api/", {"name": "api-v2"}, format="json")
    assert response.status_code == 200
    assert full_client.get(API + "policies/api/").status_code == 404
    assert full_client.delete(API + "policies/api-v2/").status_code == 204
    assert not Policy.objects.filter(name__startswith="api").exists()
    assert not AllowedOrigin.objects.exists()


def test_policy_filter(reader_client, api_policy):
    body = reader_client.get(API + "policies/?search=ap").json()
    assert [p["name"] for p in body["results"]] == ["api"]


# --- history: every write is a LogEntry ------------------------------------------------


def test_writes_are_recorded_in_admin_history(full_client, full, api_policy):
    response = full_client.post(API + "origins/", {"origin": APP}, format="json")
    entry_id = response.json()["id"]
    full_client.patch(API + f"origins/{entry_id}/", {"enabled": False, "note": "paused"}, format="json")
    full_client.patch(API + "policies/api/", {"priority": 3}, format="json")
    full_client.delete(API + f"origins/{entry_id}/")

    logs = list(LogEntry.objects.order_by("pk"))
    assert [(log.action_flag, log.object_repr) for log in logs] == [
        (ADDITION, APP),
        (CHANGE, APP),
        (CHANGE, "api"),
        (DELETION, APP),
    ]
    assert all(log.user == full for log in logs)
    assert logs[0].object_id == str(entry_id)
    assert logs[0].get_change_message() == "Added."
    assert logs[1].get_change_message() == "Changed Enabled and Note."
    assert logs[2].get_change_message() == "Changed Priority."
    assert logs[0].content_type.model_class() is AllowedOrigin


def test_history_shows_in_the_admin(full_client, admin_user_):
    entry_id = full_client.post(API + "origins/", {"origin": APP}, format="json").json()["id"]
    full_client.patch(API + f"origins/{entry_id}/", {"note": "hello"}, format="json")
    admin = APIClient()
    admin.force_login(admin_user_)
    page = admin.get(f"/admin/corsadmin/allowedorigin/{entry_id}/history/").content.decode()
    assert "operator" in page
    assert "Changed Note." in page
    assert "Added." in page


def test_refused_write_records_nothing(full_client):
    full_client.post(API + "origins/", {"origin": "https://*.com"}, format="json")
    assert not LogEntry.objects.exists()
    assert not AllowedOrigin.objects.exists()


# --- freshness: the writing process sees its change at once ---------------------------------


def test_created_origin_is_honoured_by_the_next_request(
    full_client, client, django_capture_on_commit_callbacks
):
    assert "Access-Control-Allow-Origin" not in client.get("/demo/echo/", HTTP_ORIGIN=APP)
    with django_capture_on_commit_callbacks(execute=True):
        assert full_client.post(API + "origins/", {"origin": APP}, format="json").status_code == 201
    assert client.get("/demo/echo/", HTTP_ORIGIN=APP)["Access-Control-Allow-Origin"] == APP
    entry_id = AllowedOrigin.objects.get().pk
    with django_capture_on_commit_callbacks(execute=True):
        full_client.patch(API + f"origins/{entry_id}/", {"enabled": False}, format="json")
    assert "Access-Control-Allow-Origin" not in client.get("/demo/echo/", HTTP_ORIGIN=APP)


# --- blocked, root, schema and docs ------------------------------------------------------------


def test_blocked_is_a_paginated_list(reader_client):
    body = reader_client.get(API + "blocked/").json()
    assert set(body) == {"count", "next", "previous", "results"}
    for row in body["results"]:
        assert set(row) == {"origin", "count", "first_seen", "last_seen"}


def test_root_lists_every_endpoint(reader_client):
    body = reader_client.get(API).json()
    for name in ("policies", "origins", "check", "export", "import", "blocked", "schema", "docs"):
        assert body[name].startswith("http://testserver/api/cors/"), name


def test_schema_is_openapi_3(anon_client):
    response = anon_client.get(API + "schema/?format=json")
    assert response.status_code == 200
    schema = json.loads(response.content)
    assert schema["openapi"].startswith("3.")
    for path in (
        "policies/",
        "policies/{name}/",
        "origins/",
        "origins/{id}/",
        "check/",
        "export/",
        "import/",
        "blocked/",
    ):
        assert "/api/cors/" + path in schema["paths"], path
    assert "tokenAuth" in schema["components"]["securitySchemes"]


def test_schema_validates_without_warnings():
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", "/dev/null")


EXTERNAL = re.compile(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//""", re.I)


@pytest.mark.parametrize("page", ["docs/", "redoc/"])
def test_docs_page_uses_no_cdn(anon_client, page):
    response = anon_client.get(API + page)
    assert response.status_code == 200
    html = response.content.decode()
    assert "/static/drf_spectacular_sidecar/" in html
    assert not EXTERNAL.search(html), EXTERNAL.search(html)
    assert not re.search(
        r"https?://(?!testserver)[a-z0-9.-]+\.[a-z]{2,}/", html.replace("http://www.w3.org", "")
    )


def test_swagger_ui_sends_the_schema_to_no_validator(anon_client):
    html = anon_client.get(API + "docs/").content.decode()
    assert '"validatorUrl": null' in html


def test_docs_assets_are_served_locally(anon_client, settings):
    html = anon_client.get(API + "docs/").content.decode()
    assets = re.findall(r"""(?:src|href)=["'](/static/[^"']+)["']""", html)
    assert assets
    from django.contrib.staticfiles import finders

    for asset in assets:
        assert finders.find(asset.removeprefix("/static/")), asset


def test_unknown_path_under_the_api_is_a_json_404(reader_client):
    for path in ("nope/", "origins/abc/", "policies/%C2%84/", "origins/1/2/"):
        response = reader_client.get(API + path)
        assert response.status_code == 404, path
        assert response["Content-Type"] == "application/json", path


@pytest.mark.parametrize("value", ["0", "-1", "abc", "1001", "null", "٣"])
def test_bad_page_size_is_400(reader_client, value):
    response = reader_client.get(API + "origins/", {"page_size": value})
    assert response.status_code == 400
    assert response.json() == {"page_size": ["Give a whole number from 1 to 1000."]}


def test_schema_documents_error_answers(anon_client):
    schema = anon_client.get(API + "schema/?format=json").json()
    responses = schema["paths"]["/api/cors/origins/{id}/"]["patch"]["responses"]
    assert {"200", "400", "401", "403", "404"} <= set(responses)
    body = schema["paths"]["/api/cors/origins/"]["post"]["requestBody"]["content"]
    assert list(body) == ["application/json"]
