"""API hardening: throttling, error bodies with DEBUG off, no user enumeration, a model
permission for every write, CSRF for session writes, warnings for risky entries."""

from __future__ import annotations

import io
import json
import logging
import time
from typing import Any

import pytest
from django.contrib.admin.models import LogEntry
from django.core.cache import caches
from django.core.management import call_command
from django.core.signals import got_request_exception
from django.db import IntegrityError
from django.test import Client
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from corsadmin import conf, diagnosis, documents
from corsadmin.api import throttles, views
from corsadmin.api.authentication import SessionAuthentication, TokenAuthentication
from corsadmin.models import AllowedOrigin, Policy
from tests.api_fixtures import API, MODELS, make_user, token_client

pytestmark = pytest.mark.django_db

APP = "https://app.example.com"
PLAIN = "http://app.example.com"
ALL_PERMS = tuple(f"{a}_{m}" for a in ("view", "add", "change", "delete") for m in MODELS)
VIEW = ("view_policy", "view_allowedorigin")


DAY = 86400


def forget_throttling(*users: Any, period: int = DAY) -> None:
    """Earlier tests' requests may be counted under the same user id (or the test client's address).

    The throttling tests count per day, so no window ends while they run.
    """
    cache = caches[conf.cache_alias()]
    window = int(time.time() // period)
    cache.delete(throttles.cache_key(throttles.ANON_SCOPE, "127.0.0.1", period, window))
    for user in users:
        cache.delete(throttles.cache_key(throttles.USER_SCOPE, user.pk, period, window))


def rates(settings: Any, **scopes: str | None) -> None:
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": scopes}


# --- throttling ------------------------------------------------------------------------


def test_a_user_over_the_rate_gets_429_with_retry_after(settings, reader, full):
    rates(settings, corsadmin_user="3/day")
    forget_throttling(reader, full)
    client = token_client(full)
    assert client.post(API + "origins/", {"origin": APP}, format="json").status_code == 201
    assert [client.get(API + "origins/").status_code for _ in range(2)] == [200, 200]
    response = client.get(API + "origins/")
    assert response.status_code == 429
    assert 1 <= int(response["Retry-After"]) <= DAY
    assert set(response.json()) == {"detail"}
    # Writes too, and nothing is written.
    assert client.post(API + "origins/", {"origin": PLAIN}, format="json").status_code == 429
    assert list(AllowedOrigin.objects.values_list("origin", flat=True)) == [APP]
    # Per user: another one is not slowed down.
    assert token_client(reader).get(API + "origins/").status_code == 200


def test_anonymous_pages_are_throttled_per_address(settings):
    rates(settings, corsadmin_anon="2/day")
    forget_throttling()
    client = APIClient()
    assert [client.get(API + "schema/").status_code for _ in range(2)] == [200, 200]
    response = client.get(API + "schema/")
    assert response.status_code == 429
    assert "Retry-After" in response
    # Unknown paths under the API too: a scan is slowed down like everything else.
    assert client.get(API + "no/such/thing/").status_code == 429


def test_rates_are_read_when_the_request_comes(settings, reader):
    forget_throttling(reader)
    client = token_client(reader)
    rates(settings, corsadmin_user="1/day")
    assert client.get(API + "policies/").status_code == 200
    assert client.get(API + "policies/").status_code == 429
    rates(settings, corsadmin_user=None)  # None: no limit
    assert [client.get(API + "policies/").status_code for _ in range(5)] == [200] * 5


def test_default_rates_apply_when_the_settings_name_none(settings):
    settings.REST_FRAMEWORK = {
        k: v for k, v in settings.REST_FRAMEWORK.items() if k != "DEFAULT_THROTTLE_RATES"
    }
    assert throttles.rate_for(throttles.USER_SCOPE) == throttles.DEFAULT_RATES[throttles.USER_SCOPE]
    assert throttles.rate_for(throttles.ANON_SCOPE) == throttles.DEFAULT_RATES[throttles.ANON_SCOPE]


def test_throttle_counts_live_in_corsadmins_cache(settings, reader):
    settings.CACHES = {
        **settings.CACHES,
        "corsadmin-shared": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "sec"},
    }
    settings.CORSADMIN = {**settings.CORSADMIN, "CACHE_ALIAS": "corsadmin-shared"}
    rates(settings, corsadmin_user="100/day")
    key = throttles.cache_key(throttles.USER_SCOPE, reader.pk, DAY, int(time.time() // DAY))
    caches["corsadmin-shared"].delete(key)
    caches["default"].delete(key)
    client = token_client(reader)
    assert [client.get(API + "origins/").status_code for _ in range(2)] == [200, 200]
    assert caches["corsadmin-shared"].get(key) == 2  # one counter, not a list of timestamps
    assert caches["default"].get(key) is None


def test_anonymous_clients_cannot_dodge_the_limit_with_x_forwarded_for(settings):
    rates(settings, corsadmin_anon="2/day")
    forget_throttling()
    client = APIClient()
    codes = [client.get(API + "schema/", HTTP_X_FORWARDED_FOR=f"10.0.0.{i}").status_code for i in range(3)]
    assert codes == [200, 200, 429]


class BrokenCache:
    def add(self, *args: Any, **kwargs: Any) -> Any:
        raise ConnectionError("cache down")

    get = set = incr = add


def test_a_failing_cache_lets_requests_through_with_one_log_line(monkeypatch, settings, reader, caplog):
    rates(settings, corsadmin_user="1/day")
    monkeypatch.setattr(throttles.CorsAdminThrottle, "cache", property(lambda self: BrokenCache()))
    monkeypatch.setattr(throttles.CorsAdminThrottle, "breaker", throttles.Breaker())
    client = token_client(reader)
    with caplog.at_level(logging.WARNING, logger="corsadmin.api"):
        assert [client.get(API + "origins/").status_code for _ in range(3)] == [200] * 3
    assert [r.getMessage() for r in caplog.records if r.name == "corsadmin.api"] == [
        "corsadmin: API throttling is off while the cache is unavailable (cache down)"
    ]


def test_the_schema_documents_429_with_retry_after(reader_client):
    schema = reader_client.get(API + "schema/?format=json").json()
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            answer = operation["responses"]["429"]
            assert "Retry-After" in answer["headers"], (method, path)


# --- no internals in error bodies (DEBUG off) ----------------------------------------------

INTERNALS = (b"Traceback", b'File "', b"django.", b"rest_framework", b"corsadmin.", b"secret")


def no_internals(response: Any) -> None:
    for marker in INTERNALS:
        assert marker not in response.content, (marker, response.content[:300])


def explode(*args: Any, **kwargs: Any) -> Any:
    raise RuntimeError("secret: /srv/corsadmin/settings.py line 12")


@pytest.fixture
def production(settings):
    settings.DEBUG = False


@pytest.mark.usefixtures("production")
@pytest.mark.parametrize(
    "method, path, owner, patched",
    [
        ("get", "check/?origin=https://a.example.com", diagnosis, "explain"),
        ("get", "export/", documents, "export_document"),
        ("post", "origins/", views.RecordedModelViewSet, "perform_create"),
        ("post", "import/", documents, "import_document"),
    ],
)
def test_an_unexpected_error_is_the_sites_own_500(monkeypatch, caplog, full, method, path, owner, patched):
    """corsadmin has no 500 handler of its own: the site's (Django's, with DEBUG off) answers."""
    monkeypatch.setattr(owner, patched, explode)
    signalled = []

    def receiver(sender: Any, **kwargs: Any) -> None:
        signalled.append(kwargs["request"].path)

    got_request_exception.connect(receiver)
    client = token_client(full)
    client.raise_request_exception = False
    body = {"origins/": {"origin": APP}, "import/": {"version": 1, "policies": []}}.get(path)
    try:
        with caplog.at_level(logging.ERROR, logger="django.request"):
            response = getattr(client, method)(API + path, body, format="json")
    finally:
        got_request_exception.disconnect(receiver)
    assert response.status_code == 500
    no_internals(response)
    # Reported as Django reports its own 500s: the signal (error trackers) and a logged traceback.
    assert signalled == [API + path.split("?")[0]]
    (record,) = [r for r in caplog.records if r.name == "django.request" and r.levelno == logging.ERROR]
    assert record.exc_info[0] is RuntimeError
    assert record.status_code == 500


def test_with_debug_on_the_developer_gets_the_debug_page(settings, monkeypatch, reader):
    settings.DEBUG = True
    monkeypatch.setattr(diagnosis, "explain", explode)
    client = token_client(reader)
    with pytest.raises(RuntimeError):
        client.get(API + "check/?origin=https://a.example.com")


def site_exception_handler(exc: Exception, context: dict[str, Any]) -> Any:
    from rest_framework.views import exception_handler

    response = exception_handler(exc, context)
    if response is not None:
        response["X-Site-Handler"] = "yes"
    return response


def test_the_sites_exception_handler_answers_everything_but_a_database_outage(settings, reader):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "EXCEPTION_HANDLER": "tests.test_api_security.site_exception_handler",
    }
    response = token_client(reader).get(API + "origins/999/")
    assert (response.status_code, response["X-Site-Handler"]) == (404, "yes")


def test_without_throttle_classes_the_site_does_not_throttle_corsadmins_views(settings, monkeypatch, reader):
    monkeypatch.setattr(
        views.PolicyViewSet, "throttle_classes", []
    )  # the site's DEFAULT_THROTTLE_CLASSES: none
    rates(settings, corsadmin_user="1/day")
    forget_throttling(reader)
    client = token_client(reader)
    assert [client.get(API + "policies/").status_code for _ in range(3)] == [200] * 3
    schema = client.get(API + "schema/?format=json").json()
    assert "429" not in schema["paths"]["/api/cors/policies/"]["get"]["responses"]


BAD_REQUESTS = [
    ("post", "origins/", "{not json", "application/json", 400),
    ("post", "origins/", "<origin/>", "application/xml", 415),
    ("post", "import/", "origin=x", "application/x-www-form-urlencoded", 415),
    ("post", "check/", "", "application/json", 405),
    ("get", "origins/abc/", None, None, 404),
    ("get", "origins/?page=x", None, None, 404),
    ("get", "origins/?page_size=0", None, None, 400),
    ("get", "check/?origin=" + "a" * 5000, None, None, 400),
    ("get", "nothing/here/", None, None, 404),
]


@pytest.mark.usefixtures("production")
@pytest.mark.parametrize("method, path, body, content_type, status", BAD_REQUESTS)
def test_error_bodies_are_json_details_without_internals(full, method, path, body, content_type, status):
    client = token_client(full)
    kwargs = {"content_type": content_type} if content_type else {}
    response = getattr(client, method)(API + path, body, **kwargs)
    assert response.status_code == status
    assert isinstance(response.json(), dict)
    no_internals(response)


@pytest.mark.usefixtures("production")
def test_an_oversized_body_is_a_400_not_a_500(settings, full):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    client = token_client(full)
    client.raise_request_exception = False
    response = client.post(API + "origins/", {"origin": APP, "note": "x" * 5000}, format="json")
    assert (response.status_code, response.json()["code"]) == (400, "bad_request")
    assert b"DATA_UPLOAD_MAX_MEMORY_SIZE" not in response.content
    no_internals(response)


def test_a_database_refusal_of_an_import_does_not_show_the_databases_words(monkeypatch, full_client, caplog):
    def refuse(*args: Any, **kwargs: Any) -> None:
        raise IntegrityError(
            "UNIQUE constraint failed: corsadmin_allowedorigin.policy_id, corsadmin_allowedorigin.origin"
        )

    monkeypatch.setattr(documents, "log_summary", refuse)  # the history of the import, written last
    document = {"version": 1, "policies": [{"name": "new"}]}
    with caplog.at_level(logging.WARNING, logger="corsadmin"):
        response = full_client.post(API + "import/", document, format="json")
    assert response.status_code == 400
    assert b"corsadmin_allowedorigin" not in response.content
    assert "nothing was changed" in response.json()["non_field_errors"][0]
    assert any("corsadmin_allowedorigin" in r.getMessage() for r in caplog.records)  # the log has it
    assert not Policy.objects.filter(name="new").exists()


# --- no user enumeration --------------------------------------------------------------------


def answer(response: Any) -> tuple[int, str | None, bytes]:
    return response.status_code, response.get("WWW-Authenticate"), response.content


@pytest.mark.usefixtures("production")
def test_refused_tokens_all_get_the_same_answer(full):
    inactive = make_user("gone", *ALL_PERMS)
    inactive_key = Token.objects.create(user=inactive).key
    inactive.is_active = False
    inactive.save()
    deleted = make_user("deleted", *ALL_PERMS)
    deleted_key = Token.objects.create(user=deleted).key
    deleted.delete()

    def ask(key: str) -> tuple[int, str | None, bytes]:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
        return answer(client.get(API + "origins/"))

    unknown = ask("0" * 40)
    assert unknown == (401, "Token", b'{"detail":"Invalid token."}')
    assert ask(inactive_key) == unknown
    assert ask(deleted_key) == unknown


def test_an_inactive_users_session_is_anonymous(full):
    client = APIClient()
    client.force_login(full)
    full.is_active = False
    full.save()
    response = client.get(API + "origins/")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"


@pytest.mark.parametrize(
    "method, body", [("get", None), ("put", {"origin": APP}), ("patch", {"note": "x"}), ("delete", None)]
)
def test_without_permission_an_object_that_exists_and_one_that_does_not_look_the_same(
    nobody, reader, method, body
):
    entry = AllowedOrigin.objects.create(origin=APP)
    for user in (nobody, reader) if method != "get" else (nobody,):
        client = token_client(user)
        existing = getattr(client, method)(API + f"origins/{entry.pk}/", body, format="json")
        missing = getattr(client, method)(API + f"origins/{entry.pk + 1000}/", body, format="json")
        assert answer(existing) == answer(missing)
        assert existing.status_code == 403


def test_the_api_views_use_corsadmins_authentication_classes():
    assert views.CorsAdminAPIView.authentication_classes == [TokenAuthentication, SessionAuthentication]


# --- a model permission for every write -------------------------------------------------------

BOTH = ("policy", "allowedorigin")
WRITES = {
    "create policy": ("post", "policies/", {"name": "new"}, {"add_policy"}),
    "replace policy": ("put", "policies/default/", {"name": "default"}, {"change_policy"}),
    "change policy": ("patch", "policies/default/", {"note": "x"}, {"change_policy"}),
    "delete policy": ("delete", "policies/default/", None, {"delete_policy"}),
    "create origin": ("post", "origins/", {"origin": "https://new.example.com"}, {"add_allowedorigin"}),
    "replace origin": ("put", "origins/{id}/", {"origin": APP}, {"change_allowedorigin"}),
    "change origin": ("patch", "origins/{id}/", {"enabled": False}, {"change_allowedorigin"}),
    "delete origin": ("delete", "origins/{id}/", None, {"delete_allowedorigin"}),
    "import": (
        "post",
        "import/",
        {"version": 1, "policies": [{"name": "default"}]},
        {f"{a}_{m}" for a in ("add", "change") for m in BOTH},
    ),
    "import, replace": (
        "post",
        "import/?replace=true",
        {"version": 1, "policies": [{"name": "default"}]},
        {f"{a}_{m}" for a in ("add", "change", "delete") for m in BOTH},
    ),
}
PERMISSION_SETS = {
    "view only": set(VIEW),
    **{
        f"view + {p}": {*VIEW, p}
        for p in sorted(f"{a}_{m}" for a in ("add", "change", "delete") for m in BOTH)
    },
    "view + add and change": {*VIEW, *(f"{a}_{m}" for a in ("add", "change") for m in BOTH)},
    "all but delete_allowedorigin": set(ALL_PERMS) - {"delete_allowedorigin"},
    "all": set(ALL_PERMS),
}
TABLE = [pytest.param(write, perms, id=f"{write} | {perms}") for write in WRITES for perms in PERMISSION_SETS]


@pytest.mark.parametrize("write, perms", TABLE)
def test_every_write_needs_its_model_permission(write, perms):
    method, path, body, needed = WRITES[write]
    held = PERMISSION_SETS[perms]
    entry = AllowedOrigin.objects.create(origin=APP)
    user = make_user("writer", *held)
    before = json.dumps({**documents.export_document(), "exported_at": None})
    response = getattr(token_client(user), method)(API + path.format(id=entry.pk), body, format="json")
    if needed <= held:
        assert response.status_code in (200, 201, 204), response.content
    else:
        assert response.status_code == 403, response.content
        assert json.dumps({**documents.export_document(), "exported_at": None}) == before
        assert not LogEntry.objects.exists()


# --- CSRF for session writes -------------------------------------------------------------


@pytest.fixture
def session(full):
    client = Client(enforce_csrf_checks=True)
    client.force_login(full)
    client.get("/admin/login/")  # sets the CSRF cookie, as any page of the site would
    return client


def csrf_token(client: Client) -> str:
    return client.cookies["csrftoken"].value


def test_session_writes_need_the_csrf_token(session):
    entry = AllowedOrigin.objects.create(origin="https://b.example.com")
    for method, path, body in [
        ("post", "origins/", {"origin": APP}),
        ("put", f"origins/{entry.pk}/", {"origin": APP}),
        ("patch", f"origins/{entry.pk}/", {"note": "x"}),
        ("delete", f"origins/{entry.pk}/", None),
        ("post", "policies/", {"name": "new"}),
        ("post", "import/", {"version": 1, "policies": []}),
    ]:
        response = getattr(session, method)(API + path, body, content_type="application/json")
        assert response.status_code == 403, (method, path)
        assert response.json()["detail"].startswith("CSRF Failed: CSRF token missing"), (method, path)
    assert list(AllowedOrigin.objects.values_list("origin", "note")) == [("https://b.example.com", "")]
    assert not Policy.objects.filter(name="new").exists()
    # Reading needs no token.
    assert session.get(API + "origins/").status_code == 200


def test_session_writes_with_the_csrf_token_go_through(session):
    headers = {"X-CSRFToken": csrf_token(session)}
    response = session.post(
        API + "origins/", {"origin": APP}, content_type="application/json", headers=headers
    )
    assert response.status_code == 201
    entry_url = API + f"origins/{response.json()['id']}/"
    assert (
        session.patch(entry_url, {"note": "x"}, content_type="application/json", headers=headers).status_code
        == 200
    )
    assert session.delete(entry_url, headers=headers).status_code == 204


def test_a_wrong_csrf_token_is_refused(session):
    headers = {"X-CSRFToken": "x" * 64}
    response = session.post(
        API + "origins/", {"origin": APP}, content_type="application/json", headers=headers
    )
    assert response.status_code == 403
    assert response.json()["detail"].startswith("CSRF Failed")


def test_a_session_write_from_another_site_is_refused_unless_csrf_trusted(
    session, django_capture_on_commit_callbacks
):
    headers = {"X-CSRFToken": csrf_token(session), "Origin": "https://tools.example.net"}
    response = session.post(
        API + "origins/", {"origin": APP}, content_type="application/json", headers=headers
    )
    assert response.status_code == 403
    assert "Origin checking failed" in response.json()["detail"]
    # One list for CORS and CSRF: an entry flagged csrf_trusted is trusted here too.
    with django_capture_on_commit_callbacks(execute=True):
        AllowedOrigin.objects.create(origin="https://tools.example.net", csrf_trusted=True)
    response = session.post(
        API + "origins/", {"origin": APP}, content_type="application/json", headers=headers
    )
    assert response.status_code == 201, response.content


def test_token_writes_need_no_csrf_token(full):
    client = APIClient(enforce_csrf_checks=True)
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=full).key}")
    assert client.post(API + "origins/", {"origin": APP}, format="json").status_code == 201


# --- warnings: http:// on a credentials policy ---------------------------------------------


@pytest.fixture
def credentials_policy(db):
    return Policy.objects.create(name="api", url_regex="^/api/", allow_credentials=True)


def plain_warning(origin: str = PLAIN, policy: str = "api") -> str:
    return (
        f"Policy {policy} allows credentials and lists the plain http:// origin {origin}: anyone on the "
        "network path can impersonate it and read your users' data. Prefer https://."
    )


def test_an_http_origin_on_a_credentials_policy_is_accepted_with_a_warning(full_client, credentials_policy):
    response = full_client.post(API + "origins/", {"origin": PLAIN, "policy": "api"}, format="json")
    assert response.status_code == 201
    assert response.json()["warnings"] == [plain_warning()]
    url = API + f"origins/{response.json()['id']}/"
    assert full_client.get(url).json()["warnings"] == [plain_warning()]
    response = full_client.put(url, {"origin": "http://b.example.com", "policy": "api"}, format="json")
    assert response.json()["warnings"] == [plain_warning("http://b.example.com")]
    # Moved to https://, or to a policy without credentials: nothing to say, no key.
    assert "warnings" not in full_client.patch(url, {"origin": APP}, format="json").json()
    response = full_client.put(url, {"origin": PLAIN, "policy": "default"}, format="json")
    assert "warnings" not in response.json()


def test_https_or_no_credentials_gives_no_warnings(full_client, credentials_policy):
    for body in ({"origin": APP, "policy": "api"}, {"origin": PLAIN}):
        response = full_client.post(API + "origins/", body, format="json")
        assert response.status_code == 201
        assert "warnings" not in response.json()


def test_turning_credentials_on_warns_about_the_policys_http_origins(full_client):
    policy = Policy.objects.create(name="api", url_regex="^/api/")
    AllowedOrigin.objects.create(origin=PLAIN, policy=policy)
    AllowedOrigin.objects.create(origin=APP, policy=policy)
    response = full_client.patch(API + "policies/api/", {"allow_credentials": True}, format="json")
    assert response.status_code == 200
    assert response.json()["warnings"] == [plain_warning()]
    assert full_client.get(API + "policies/api/").json()["warnings"] == [plain_warning()]
    listed = {p["name"]: p for p in full_client.get(API + "policies/").json()["results"]}
    assert listed["api"]["warnings"] == [plain_warning()]
    assert "warnings" not in listed["default"]
    response = full_client.patch(API + "policies/api/", {"allow_credentials": False}, format="json")
    assert "warnings" not in response.json()


def test_an_import_warns_about_http_origins_on_credentials_policies(full_client):
    document = {
        "version": 1,
        "policies": [
            {"name": "api", "allow_credentials": True, "origins": [{"origin": PLAIN}, {"origin": APP}]},
            {"name": "default", "origins": [{"origin": "http://c.example.com"}]},
        ],
    }
    response = full_client.post(API + "import/", document, format="json")
    assert response.status_code == 200
    assert response.json()["warnings"] == [plain_warning()]
    assert (
        "warnings"
        not in full_client.post(API + "import/", {"version": 1, "policies": []}, format="json").json()
    )


def test_the_schema_documents_warnings_as_optional(reader_client):
    components = reader_client.get(API + "schema/?format=json").json()["components"]["schemas"]
    for name in ("Origin", "Policy", "ImportResult"):
        assert components[name]["properties"]["warnings"]["type"] == "array", name
        assert "warnings" not in components[name].get("required", []), name
    assert "warnings" not in components["PolicyDocument"]["properties"]


def cors(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("cors", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_cli_add_prints_the_warning_on_stderr(credentials_policy):
    out, err = cors("add", PLAIN, "--policy", "api")
    assert out.startswith(f"Added {PLAIN} to policy 'api'")
    assert err.strip() == f"Warning: {plain_warning()}"
    assert AllowedOrigin.objects.filter(origin=PLAIN, policy=credentials_policy).exists()
    out, err = cors("add", APP, "--policy", "api")
    assert err == ""


def test_cli_enable_and_import_print_warnings_too(credentials_policy, tmp_path):
    AllowedOrigin.objects.create(origin=PLAIN, policy=credentials_policy, enabled=False)
    _, err = cors("enable", PLAIN, "--policy", "api")
    assert err.strip() == f"Warning: {plain_warning()}"
    path = tmp_path / "doc.json"
    path.write_text(json.dumps(documents.export_document()))
    _, err = cors("import", str(path))
    assert err.strip() == f"Warning: {plain_warning()}"


# --- found by the stateful run -------------------------------------------------------------


def test_an_origin_without_a_policy_does_not_bring_a_deleted_default_back(full_client):
    """Deleting `default`, then adding an origin without naming a policy, recreated a
    catch-all `default` policy (url_regex ^/) with no record in the history."""
    assert full_client.delete(API + "policies/default/").status_code == 204
    response = full_client.post(API + "origins/", {"origin": APP}, format="json")
    assert response.status_code == 400
    assert response.json() == {
        "policy": ["There is no policy named 'default'. Name the policy to add the origin to."]
    }
    assert not Policy.objects.exists()
    assert not AllowedOrigin.objects.exists()
    # Named, or with `default` back by choice (recorded), it works as before.
    assert full_client.post(API + "policies/", {"name": "default"}, format="json").status_code == 201
    assert full_client.post(API + "origins/", {"origin": APP}, format="json").json()["policy"] == "default"


@pytest.mark.parametrize(
    "path, body, field",
    [
        ("policies/", {"name": "p", "allow_private_network": 1.0}, "allow_private_network"),
        ("policies/", {"name": "p", "enabled": 0}, "enabled"),
        ("policies/", {"name": "p", "allow_credentials": "yes"}, "allow_credentials"),
        ("policies/", {"name": "p", "max_age": "7200"}, "max_age"),
        ("policies/", {"name": "p", "priority": True}, "priority"),
        ("origins/", {"origin": APP, "csrf_trusted": "true"}, "csrf_trusted"),
    ],
)
def test_json_booleans_and_integers_are_typed(full_client, path, body, field):
    """DRF reads 1.0, 0 and "yes" as booleans and "7200" or true as integers; the schema says
    boolean and integer, and a JSON body has types."""
    response = full_client.post(API + path, body, format="json")
    assert response.status_code == 400
    assert set(response.json()) == {field}
    assert not Policy.objects.filter(name="p").exists()
    assert not AllowedOrigin.objects.exists()


def test_a_form_still_spells_booleans_and_integers_as_text(full_client):
    response = full_client.post(
        API + "policies/",
        "name=p&allow_credentials=true&enabled=off&max_age=60&priority=-3",
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 201, response.content
    policy = Policy.objects.get(name="p")
    assert (policy.allow_credentials, policy.enabled, policy.max_age, policy.priority) == (
        True,
        False,
        60,
        -3,
    )


@pytest.mark.parametrize("query", ["path=", "method=", "request_method=&method=OPTIONS", "private_network="])
def test_check_refuses_empty_values_instead_of_reading_them_as_absent(reader_client, query):
    response = reader_client.get(API + f"check/?origin={APP}&{query}")
    assert response.status_code == 400
    assert set(response.json()) == {query.split("=")[0]}


@pytest.mark.parametrize("page", ["", "last", "x", "1.0", "-1", "0"])
def test_a_page_is_a_whole_number_from_1(reader_client, page):
    response = reader_client.get(API + f"origins/?page={page}")
    assert response.status_code == 404
    assert response.json()["detail"].startswith("Invalid page")
