"""export/ and import/: one versioned document, all or nothing, round trip."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime

import pytest
from django.contrib.admin.models import CHANGE, DELETION, LogEntry

from corsadmin import documents
from corsadmin.models import AllowedOrigin, Policy
from tests.api_fixtures import API

pytestmark = pytest.mark.django_db

APP = "https://app.example.com"
READ_ONLY = {"created_at", "updated_at", "created_by"}


@pytest.fixture
def configuration(full):
    default = Policy.objects.get(name="default")
    default.note = "everything else"
    default.save()
    api = Policy.objects.create(
        name="api",
        url_regex=r"^/api/",
        priority=10,
        allow_credentials=True,
        allow_methods=["GET", "POST"],
        allow_headers=["content-type", "x-request-id"],
        expose_headers=["x-total"],
        max_age=600,
        allow_private_network=True,
        note="the API",
    )
    Policy.objects.create(name="off", enabled=False, allow_all_origins=True, max_age=0)
    AllowedOrigin.objects.create(origin=APP, policy=api, note="app", created_by=full, csrf_trusted=True)
    AllowedOrigin.objects.create(
        origin="https://*.example.org",
        policy=api,
        expires_at=datetime(2031, 5, 6, 7, 8, 9, tzinfo=UTC),
    )
    AllowedOrigin.objects.create(origin="http://localhost:*", policy=default, enabled=False)
    AllowedOrigin.objects.create(origin="null", policy=default)


def configuration_only(document):
    """The document without its timestamps and authors: what an import restores."""
    document = copy.deepcopy(document)
    document.pop("exported_at")
    for policy in document["policies"]:
        for key in READ_ONLY:
            policy.pop(key, None)
        for origin in policy["origins"]:
            for key in READ_ONLY:
                origin.pop(key)
    return document


def test_export_document_shape(reader_client, configuration):
    response = reader_client.get(API + "export/")
    assert response.status_code == 200
    document = response.json()
    assert document["version"] == 1
    assert [p["name"] for p in document["policies"]] == ["api", "default", "off"]
    api = document["policies"][0]
    assert api["allow_methods"] == ["GET", "POST"]
    assert api["allow_private_network"] is True
    assert [o["origin"] for o in api["origins"]] == ["https://*.example.org", APP]
    assert api["origins"][1] == {
        "origin": APP,
        "enabled": True,
        "note": "app",
        "expires_at": None,
        "csrf_trusted": True,
        "scopes": ["cors", "csrf"],
        "effect": "allow",
        "created_at": api["origins"][1]["created_at"],
        "updated_at": api["origins"][1]["updated_at"],
        "created_by": "operator",
    }
    assert api["origins"][0]["expires_at"] == "2031-05-06T07:08:09Z"


def test_export_wipe_import_restores_an_identical_configuration(full_client, configuration):
    exported = full_client.get(API + "export/").json()
    Policy.objects.all().delete()
    assert not AllowedOrigin.objects.exists()

    response = full_client.post(API + "import/", exported, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["created"] == {"policies": 3, "origins": 4}

    again = full_client.get(API + "export/").json()
    assert configuration_only(again) == configuration_only(exported)


def test_reimport_of_unchanged_export_changes_nothing(full_client, configuration):
    exported = full_client.get(API + "export/").json()
    ids = sorted(AllowedOrigin.objects.values_list("pk", flat=True))
    LogEntry.objects.all().delete()
    for replace in ("", "?replace=true"):
        body = full_client.post(API + "import/" + replace, exported, format="json").json()
        assert body["unchanged"] == {"policies": 3, "origins": 4}
        assert body["created"] == body["changed"] == body["deleted"] == {"policies": 0, "origins": 0}
    assert sorted(AllowedOrigin.objects.values_list("pk", flat=True)) == ids
    assert not LogEntry.objects.exists()


def test_import_through_the_command_line_round_trip(configuration, tmp_path):
    from django.core.management import call_command

    path = tmp_path / "cors.json"
    call_command("cors", "export", str(path))
    exported = json.loads(path.read_text())
    Policy.objects.all().delete()
    call_command("cors", "import", str(path), "--user", "operator")
    assert configuration_only(documents.export_document()) == configuration_only(exported)


def test_merge_updates_and_adds_but_deletes_nothing(full_client, configuration):
    document = {
        "version": 1,
        "policies": [
            {
                "name": "api",
                "priority": 20,
                "origins": [
                    {"origin": "HTTPS://APP.example.com", "note": "new note"},
                    {"origin": "https://new.example.com"},
                ],
            },
            {"name": "fresh", "url_regex": "^/fresh/", "origins": [{"origin": APP}]},
        ],
    }
    body = full_client.post(API + "import/", document, format="json").json()
    assert body["created"] == {"policies": 1, "origins": 2}
    assert body["changed"] == {"policies": 1, "origins": 1}
    api = Policy.objects.get(name="api")
    assert api.priority == 20
    assert api.max_age == 600  # left out of the document: kept
    entry = AllowedOrigin.objects.get(policy=api, origin=APP)
    assert entry.note == "new note"
    assert entry.csrf_trusted is True  # kept
    assert Policy.objects.get(name="api").allow_credentials is True  # kept
    assert AllowedOrigin.objects.filter(policy=api).count() == 3
    assert Policy.objects.filter(name="off").exists()
    assert AllowedOrigin.objects.get(origin="https://new.example.com").created_by.username == "operator"


def test_replace_deletes_what_the_document_does_not_name(full_client, configuration):
    document = {
        "version": 1,
        "policies": [{"name": "api", "url_regex": "^/api/", "origins": [{"origin": APP, "note": "kept"}]}],
    }
    entry_id = AllowedOrigin.objects.get(origin=APP).pk
    body = full_client.post(API + "import/?replace=true", document, format="json").json()
    assert body["deleted"] == {"policies": 2, "origins": 3}
    assert body["replace"] is True
    assert list(Policy.objects.values_list("name", flat=True)) == ["api"]
    entry = AllowedOrigin.objects.get()
    assert (entry.pk, entry.note) == (entry_id, "kept")
    # Left out of a replacing document: the defaults.
    assert entry.csrf_trusted is False
    api = Policy.objects.get()
    assert (api.priority, api.max_age, api.allow_credentials) == (0, 7200, False)


def test_import_is_recorded_in_the_admin_history(full_client, full, configuration):
    LogEntry.objects.all().delete()
    document = {
        "version": 1,
        "policies": [{"name": "api", "priority": 1, "origins": [{"origin": "https://new.example.com"}]}],
    }
    full_client.post(API + "import/?replace=true", document, format="json")
    # One summary entry per policy the import touched (issue 23), not one per origin.
    logs = {(log.action_flag, log.object_repr): log.get_change_message() for log in LogEntry.objects.all()}
    assert set(logs) == {(CHANGE, "api"), (DELETION, "default"), (DELETION, "off")}
    assert "Added allowed origin “https://new.example.com”." in logs[CHANGE, "api"]
    assert f"Deleted allowed origin “{APP}”." in logs[CHANGE, "api"]
    assert "Deleted allowed origin “null”." in logs[DELETION, "default"]
    assert {log.user for log in LogEntry.objects.all()} == {full}
    change = LogEntry.objects.get(action_flag=CHANGE, object_repr="api")
    assert "Priority" in change.get_change_message()


def test_a_large_import_is_one_summary_naming_the_first_origins(full_client, full):
    origins = [{"origin": f"https://o{i}.example.com"} for i in range(25)]
    document = {"version": 1, "policies": [{"name": "default", "origins": origins}]}
    full_client.post(API + "import/", document, format="json")
    log = LogEntry.objects.get()
    assert (log.action_flag, log.object_repr) == (CHANGE, "default")
    words = log.get_change_message()
    assert "Added allowed origin “https://o19.example.com”." in words
    assert "o20" not in words
    assert words.endswith("Added allowed origins “and 5 more”.")


# --- all or nothing, every error with its position ---------------------------------


def test_bad_document_changes_nothing_and_reports_every_error(full_client, configuration):
    before = documents.export_document()
    document = {
        "version": 1,
        "policies": [
            {"name": "api", "priority": 99, "origins": [{"origin": "https://ok.example.com"}]},
            {
                "name": "new",
                "origins": [
                    {"origin": "https://fine.example.com"},
                    {"origin": "https://a.example.com/path"},
                    {"origin": "https://fine.example.com:443"},
                    {"origin": APP, "enabled": "maybe"},
                ],
            },
            {"name": "bad name", "allow_methods": "GET"},
            {"name": "creds", "allow_all_origins": True, "allow_credentials": True},
            {"name": "api"},
            "not an object",
        ],
    }
    response = full_client.post(API + "import/?replace=true", document, format="json")
    assert response.status_code == 400
    errors = response.json()
    assert set(errors) == {"policies"}
    policies = errors["policies"]
    assert set(policies) == {"1", "2", "3", "4", "5"}
    assert set(policies["1"]["origins"]) == {"1", "2", "3"}
    assert "has a path" in policies["1"]["origins"]["1"]["origin"][0]
    assert "already listed in this policy (origins[0])" in policies["1"]["origins"]["2"]["origin"][0]
    assert "enabled" in policies["1"]["origins"]["3"]
    assert set(policies["2"]) == {"name", "allow_methods"}
    assert "cannot allow all origins and credentials" in policies["3"]["non_field_errors"][0]
    assert "already in this document (policies[0])" in policies["4"]["name"][0]
    assert policies["5"] == {"non_field_errors": ["Expected a policy object."]}
    assert configuration_only(documents.export_document()) == configuration_only(before)


def test_one_bad_origin_among_many_changes_nothing(full_client):
    origins = [{"origin": f"https://o{i}.example.com"} for i in range(200)]
    origins[150] = {"origin": "https://*.co.uk"}
    response = full_client.post(
        API + "import/", {"version": 1, "policies": [{"name": "default", "origins": origins}]}, format="json"
    )
    assert response.status_code == 400
    assert list(response.json()["policies"]["0"]["origins"]) == ["150"]
    assert not AllowedOrigin.objects.exists()
    assert not LogEntry.objects.exists()


def test_database_failure_during_import_rolls_everything_back(full_client, configuration, monkeypatch):
    before = documents.export_document()
    real_save = Policy.save

    def failing_save(self, *args, **kwargs):
        if self.name == "second":
            from django.db import IntegrityError

            raise IntegrityError("simulated failure")
        real_save(self, *args, **kwargs)

    monkeypatch.setattr(Policy, "save", failing_save)
    document = {"version": 1, "policies": [{"name": "first"}, {"name": "second"}]}
    response = full_client.post(API + "import/?replace=true", document, format="json")
    assert response.status_code == 400
    assert "nothing was changed" in response.json()["non_field_errors"][0]
    assert not Policy.objects.filter(name="first").exists()
    assert configuration_only(documents.export_document()) == configuration_only(before)


@pytest.mark.parametrize(
    "document, key",
    [
        ([], "non_field_errors"),
        ("text", "non_field_errors"),
        ({}, "version"),
        ({"version": 2, "policies": []}, "version"),
        ({"version": "1", "policies": []}, "version"),
        ({"version": True, "policies": []}, "version"),
        ({"version": 1}, "policies"),
        ({"version": 1, "policies": {"name": "default"}}, "policies"),
        ({"version": 1, "policies": [{"name": "default", "origins": "https://a.example.com"}]}, "policies"),
        ({"version": 1, "policies": [{"name": "default", "origins": ["https://a.example.com"]}]}, "policies"),
        ({"version": 1, "policies": [{"origins": []}]}, "policies"),
    ],
)
def test_malformed_document_is_400(full_client, document, key):
    response = full_client.post(API + "import/", json.dumps(document), content_type="application/json")
    assert response.status_code == 400
    assert key in response.json()
    assert Policy.objects.count() == 1


def test_import_invalid_json_is_400(full_client):
    response = full_client.post(API + "import/", "{", content_type="application/json")
    assert response.status_code == 400


def test_import_then_check_sees_the_new_origin(
    full_client, reader_client, django_capture_on_commit_callbacks
):
    assert reader_client.get(API + "check/", {"origin": APP}).json()["allowed"] is False
    with django_capture_on_commit_callbacks(execute=True):
        full_client.post(
            API + "import/",
            {"version": 1, "policies": [{"name": "default", "origins": [{"origin": APP}]}]},
            format="json",
        )
    assert reader_client.get(API + "check/", {"origin": APP}).json()["allowed"] is True


@pytest.fixture
def hosted(configuration):
    """A report-only policy for two hosts with an exception under its wildcard."""
    policy = Policy.objects.create(name="hosted", mode="report", hosts=["api.example.com", "*.example.net"])
    AllowedOrigin.objects.create(origin="https://*.example.com", policy=policy)
    AllowedOrigin.objects.create(origin="https://user.example.com", policy=policy, effect="deny")


def test_export_wipe_import_restores_mode_hosts_and_effect(full_client, hosted):
    exported = full_client.get(API + "export/").json()
    Policy.objects.all().delete()
    assert full_client.post(API + "import/", exported, format="json").status_code == 200
    assert configuration_only(full_client.get(API + "export/").json()) == configuration_only(exported)


def test_export_carries_mode_hosts_and_effect(reader_client, hosted):
    document = reader_client.get(API + "export/").json()
    hosted = next(p for p in document["policies"] if p["name"] == "hosted")
    assert (hosted["mode"], hosted["hosts"]) == ("report", ["api.example.com", "*.example.net"])
    assert {o["origin"]: o["effect"] for o in hosted["origins"]} == {
        "https://*.example.com": "allow",
        "https://user.example.com": "deny",
    }


def test_a_document_without_the_new_fields_still_imports_with_their_defaults(full_client):
    document = {
        "version": 1,
        "policies": [{"name": "old", "url_regex": "^/old/", "origins": [{"origin": APP}]}],
    }
    response = full_client.post(API + "import/", document, format="json")
    policy = Policy.objects.get(name="old")
    assert response.status_code == 200
    assert (policy.mode, policy.hosts, policy.origins.get().effect) == ("enforce", [], "allow")


def test_merge_keeps_mode_hosts_and_effect_a_document_leaves_out(full_client, hosted):
    origins = [{"origin": "https://user.example.com"}]
    document = {"version": 1, "policies": [{"name": "hosted", "origins": origins}]}
    assert full_client.post(API + "import/", document, format="json").status_code == 200
    hosted = Policy.objects.get(name="hosted")
    assert (hosted.mode, hosted.hosts) == ("report", ["api.example.com", "*.example.net"])
    assert hosted.origins.get(origin="https://user.example.com").effect == "deny"


@pytest.mark.parametrize(
    ("policy", "where", "words"),
    [
        ({"name": "x", "hosts": ["x.example.com:80"]}, ("policies", "0", "hosts"), "port"),
        ({"name": "x", "mode": "audit"}, ("policies", "0", "mode"), "not a valid choice"),
        (
            {"name": "x", "origins": [{"origin": APP, "effect": "deny", "csrf_trusted": True}]},
            ("policies", "0", "origins", "0", "csrf_trusted"),
            "deny entry cannot be CSRF-trusted",
        ),
        (
            {"name": "x", "origins": [{"origin": APP, "effect": "block"}]},
            ("policies", "0", "origins", "0", "effect"),
            "not a valid choice",
        ),
    ],
)
def test_bad_new_fields_refuse_the_import_and_change_nothing(full_client, policy, where, words):
    response = full_client.post(API + "import/", {"version": 1, "policies": [policy]}, format="json")
    detail = response.json()
    for key in where:
        detail = detail[key]
    assert response.status_code == 400 and words in detail[0]
    assert not Policy.objects.filter(name="x").exists()


# --- a time limit (corsadmin.budget) ----------------------------------------------------


class TickingClock:
    """``budget.now``: a second passes at each reading."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        self.now += 1.0
        return self.now


def test_an_export_out_of_time_stops_and_answers_json_503(full_client, settings, monkeypatch, configuration):
    """(An import out of time goes on in the background: ``test_import_jobs``.)"""
    from corsadmin import budget

    settings.CORSADMIN = {**settings.CORSADMIN, "REQUEST_TIMEOUT": 3}  # 2 s, margin 1 s
    monkeypatch.setattr(budget, "now", TickingClock())
    response = full_client.get(API + "export/")
    assert response.status_code == 503
    assert response["Content-Type"] == "application/json"
    assert response["Retry-After"] == "5"
    assert response.json() == {
        "code": "out_of_time",
        "detail": "The export was stopped before the server's time limit for a request. Export with the "
        "command line instead (python manage.py cors export), which has no time limit, or raise "
        "the server's timeout.",
    }


@pytest.mark.parametrize(
    ("value", "expected"), [(None, []), (25, []), (0, ["corsadmin.E016"]), ("9", ["corsadmin.E016"])]
)
def test_request_timeout_is_checked(settings, value, expected):
    from corsadmin.checks import check_settings_types  # not run_checks(): model checks read the database

    settings.CORSADMIN = {**settings.CORSADMIN, "REQUEST_TIMEOUT": value}
    assert [m.id for m in check_settings_types() if m.id == "corsadmin.E016"] == expected


def test_an_unchanged_reimport_does_not_move_the_generation(full_client, configuration):
    exported = full_client.get(API + "export/").json()
    before = full_client.get(API + "status/").json()["generation"]
    for replace in ("", "?replace=true"):
        assert full_client.post(API + "import/" + replace, exported, format="json").status_code == 200
    assert full_client.get(API + "status/").json()["generation"] == before
