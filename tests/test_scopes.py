"""Scopes per entry: ``cors`` (read responses cross-origin), ``csrf`` (the CSRF check; the same
flag as ``csrf_trusted``), ``websocket`` (open WebSockets) — in the API, the import document, the
command line and the snapshot."""

from __future__ import annotations

import io
import re

import pytest
from django.core.management import CommandError, call_command

from corsadmin.loader import load_snapshot
from corsadmin.models import AllowedOrigin, Policy
from tests.api_fixtures import API

pytestmark = pytest.mark.django_db

APP = "https://app.example.com"


def add(client, **body):
    return client.post(API + "origins/", {"origin": APP, **body}, format="json")


def test_a_new_entry_is_for_cors_only(full_client):
    assert add(full_client).json()["scopes"] == ["cors"]


def test_csrf_trusted_is_the_csrf_scope(full_client):
    assert add(full_client, csrf_trusted=True).json()["scopes"] == ["cors", "csrf"]


def test_scopes_set_the_flags(full_client):
    body = add(full_client, scopes=["websocket", "cors"]).json()
    assert (body["scopes"], body["csrf_trusted"]) == (["cors", "websocket"], False)


def test_no_scope_is_refused(full_client):
    response = add(full_client, scopes=[])
    assert (response.status_code, response.json()) == (
        400,
        {"scopes": ["Give the entry at least one scope: cors, csrf or websocket."]},
    )


def test_an_unknown_scope_is_refused(full_client):
    response = add(full_client, scopes=["cors", "ftp"])
    assert (response.status_code, list(response.json()["scopes"])) == (400, ["1"])


def test_csrf_trusted_contradicting_scopes_is_refused(full_client):
    response = add(full_client, scopes=["cors"], csrf_trusted=True)
    assert (response.status_code, AllowedOrigin.objects.exists()) == (400, False)
    assert list(response.json()) == ["csrf_trusted"]


def test_patching_away_the_last_scope_is_refused(full_client):
    entry = AllowedOrigin.objects.create(origin=APP)
    response = full_client.patch(API + f"origins/{entry.pk}/", {"scopes": ["csrf"]}, format="json")
    entry.refresh_from_db()
    assert (response.status_code, entry.scopes) == (200, ["csrf"])
    response = full_client.patch(API + f"origins/{entry.pk}/", {"csrf_trusted": False}, format="json")
    entry.refresh_from_db()
    assert (response.status_code, entry.scopes) == (400, ["csrf"])


def test_an_entry_without_the_cors_scope_allows_no_cors():
    AllowedOrigin.objects.create(origin=APP, cors=False, websocket=True)
    snapshot = load_snapshot()
    assert (snapshot.decide(APP, "/").allowed, snapshot.scope_allows("websocket", APP, "/")) == (
        False,
        "default",
    )


def test_a_cors_entry_allows_no_websocket():
    AllowedOrigin.objects.create(origin=APP)
    snapshot = load_snapshot()
    assert (snapshot.decide(APP, "/").allowed, snapshot.scope_allows("websocket", APP, "/")) == (True, None)


def test_a_websocket_entry_applies_on_its_policys_paths_only():
    policy = Policy.objects.create(name="live", url_regex=r"^/ws/")
    AllowedOrigin.objects.create(origin=APP, policy=policy, websocket=True)
    snapshot = load_snapshot()
    assert [snapshot.scope_allows("websocket", APP, p) for p in ("/ws/chat/", "/api/")] == ["live", None]


def test_a_deny_entry_refuses_every_scope():
    AllowedOrigin.objects.create(origin="https://*.example.com", websocket=True, csrf_trusted=True)
    AllowedOrigin.objects.create(origin=APP, effect=AllowedOrigin.DENY)
    snapshot = load_snapshot()
    assert (snapshot.scope_allows("websocket", APP, "/"), snapshot.csrf_trusts(APP, "/")) == (None, False)


def test_allow_all_origins_allows_no_websocket():
    Policy.objects.filter(name="default").update(allow_all_origins=True)
    snapshot = load_snapshot()
    assert (snapshot.decide(APP, "/").allowed, snapshot.scope_allows("websocket", APP, "/")) == (True, None)


def test_a_change_of_scopes_reaches_a_running_builder():
    from corsadmin.loader import SnapshotBuilder

    builder = SnapshotBuilder()
    builder.load()
    entry = AllowedOrigin.objects.create(origin=APP)
    entry.scopes = ["websocket"]
    entry.save()
    snapshot = builder.update()
    assert (snapshot.decide(APP, "/").allowed, snapshot.scope_allows("websocket", APP, "/")) == (
        False,
        "default",
    )


# --- the document ---------------------------------------------------------------------


def document(origin: dict) -> dict:
    return {"version": 1, "policies": [{"name": "default", "url_regex": "^/", "origins": [origin]}]}


def test_the_export_names_the_scopes(full_client):
    AllowedOrigin.objects.create(origin=APP, websocket=True)
    exported = full_client.get(API + "export/").json()
    (policy,) = [p for p in exported["policies"] if p["name"] == "default"]
    assert policy["origins"][0]["scopes"] == ["cors", "websocket"]


def test_an_import_sets_the_scopes(full_client):
    response = full_client.post(
        API + "import/", document({"origin": APP, "scopes": ["websocket"]}), format="json"
    )
    assert response.status_code == 200
    assert AllowedOrigin.objects.get(origin=APP).scopes == ["websocket"]


def test_an_old_document_without_scopes_imports_as_before(full_client):
    response = full_client.post(
        API + "import/", document({"origin": APP, "csrf_trusted": True}), format="json"
    )
    assert response.status_code == 200
    assert AllowedOrigin.objects.get(origin=APP).scopes == ["cors", "csrf"]


def test_an_import_with_no_scope_is_refused(full_client):
    response = full_client.post(API + "import/", document({"origin": APP, "scopes": []}), format="json")
    assert (response.status_code, AllowedOrigin.objects.exists()) == (400, False)


# --- the command line -----------------------------------------------------------------


def cors(*args: str) -> str:
    out = io.StringIO()
    call_command("cors", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def test_cors_add_takes_scopes():
    out = cors("add", APP, "--scope", "cors", "--scope", "websocket")
    assert AllowedOrigin.objects.get(origin=APP).scopes == ["cors", "websocket"]
    assert "scopes cors, websocket" in out


def test_cors_add_refuses_an_unknown_scope():
    with pytest.raises(
        CommandError, match=re.escape("scope: 'ftp' is not a scope: use cors, csrf or websocket.")
    ):
        cors("add", APP, "--scope", "ftp")
    assert not AllowedOrigin.objects.exists()


def test_cors_list_shows_the_scopes():
    AllowedOrigin.objects.create(origin=APP, csrf_trusted=True)
    assert cors("list").splitlines()[1].split()[5] == "cors,csrf"


# --- check -------------------------------------------------------------------------------


def test_check_says_what_each_scope_allows(full_client):
    policy = Policy.objects.create(name="live", url_regex=r"^/ws/")
    AllowedOrigin.objects.create(origin=APP, policy=policy, websocket=True, csrf_trusted=True, cors=False)
    answer = full_client.get(API + "check/", {"origin": APP, "path": "/ws/chat/"}).json()
    assert answer["scopes"] == {"cors": False, "csrf": True, "websocket": True}


def test_check_scopes_follow_the_path(full_client):
    policy = Policy.objects.create(name="live", url_regex=r"^/ws/")
    AllowedOrigin.objects.create(origin=APP, policy=policy, websocket=True)
    answer = full_client.get(API + "check/", {"origin": APP, "path": "/api/"}).json()
    assert answer["scopes"] == {"cors": False, "csrf": False, "websocket": False}


def test_cors_check_prints_the_scopes():
    AllowedOrigin.objects.create(origin=APP, websocket=True)
    assert "scopes:   cors yes, csrf no, websocket yes" in cors("check", APP).splitlines()
