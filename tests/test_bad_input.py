"""Bad input is a clear 4xx (or exit 2) that changes nothing: never a 500 nor a traceback."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import CommandError, call_command
from django.db import OperationalError

from corsadmin.documents import export_document
from corsadmin.models import NULL_WITH_CREDENTIALS, AllowedOrigin, Policy
from tests.api_fixtures import API
from tests.test_admin import policy_form

pytestmark = pytest.mark.django_db

IMPORT = API + "import/"


def snapshot_of_data() -> dict:
    return {**export_document(), "exported_at": None}


def document(*policies: dict) -> dict:
    return {"version": 1, "policies": list(policies)}


# --- import: null on a credentials policy the document creates or switches ---------------------


@pytest.mark.parametrize(
    "doc",
    [
        document({"name": "new", "allow_credentials": True, "origins": [{"origin": "null"}]}),
        document({"name": "default", "allow_credentials": True, "origins": [{"origin": "null"}]}),
    ],
    ids=["new policy", "switched policy"],
)
def test_import_of_null_on_a_credentials_policy_is_a_400(full_client, doc):
    before = snapshot_of_data()
    response = full_client.post(IMPORT, doc, format="json")
    assert (response.status_code, response.json()) == (
        400,
        {"policies": {"0": {"origins": {"0": {"origin": [NULL_WITH_CREDENTIALS]}}}}},
    )
    assert snapshot_of_data() == before


# --- JSON nested thousands of levels --------------------------------------------------------------

DEEP = "[" * 5000 + "]" * 5000


@pytest.mark.parametrize("url", [IMPORT, API + "policies/", API + "origins/"])
def test_json_nested_5000_levels_is_a_400(full_client, url):
    before = snapshot_of_data()
    response = full_client.post(url, DEEP, content_type="application/json")
    assert (response.status_code, response.json()) == (
        400,
        {"detail": "The JSON document is nested too deeply to read; nothing was changed."},
    )
    assert snapshot_of_data() == before


def test_cli_import_of_json_nested_5000_levels_is_one_line(tmp_path):
    path = tmp_path / "deep.json"
    path.write_text(DEEP)
    with pytest.raises(CommandError) as info:
        call_command("cors", "import", str(path), stdout=io.StringIO())
    assert (info.value.returncode, str(info.value)) == (
        2,
        f"{path} is nested too deeply to read; nothing imported.",
    )


# --- import over the size limit ------------------------------------------------------------------


def test_import_over_the_limit_names_the_limit_and_the_setting(full_client, settings):
    settings.CORSADMIN = {**settings.CORSADMIN, "IMPORT_MAX_BYTES": 1000}
    before = snapshot_of_data()
    body = json.dumps(document({"name": "big", "note": "x" * 2000}))
    response = full_client.post(IMPORT, body, content_type="application/json")
    assert (response.status_code, response.json()) == (
        413,
        {
            "detail": f"The document is {len(body):,} bytes; imports are limited to 1,000 bytes. Raise "
            "CORSADMIN['IMPORT_MAX_BYTES'] to import it. Nothing was changed."
        },
    )
    assert snapshot_of_data() == before


def test_default_import_limit_takes_a_document_beyond_django_upload_limit(full_client, settings):
    """DATA_UPLOAD_MAX_MEMORY_SIZE (2.5 MB by default) is for forms, not for imports."""
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    doc = document(
        {
            "name": "big",
            "note": "x" * 1900,
            "origins": [{"origin": f"https://a{i}.example.com"} for i in range(50)],
        }
    )
    response = full_client.post(IMPORT, doc, format="json")
    assert response.status_code == 200, response.content
    assert AllowedOrigin.objects.filter(policy__name="big").count() == 50


# --- admin: credentials ticked with an inline null ---------------------------------------------------


def test_admin_ticking_credentials_with_a_new_inline_null_is_a_form_error(admin_client):
    policy = Policy.objects.get(name="default")
    before = snapshot_of_data()
    response = admin_client.post(
        f"/admin/corsadmin/policy/{policy.pk}/change/",
        policy_form(policy, inline=[{"origin": "null"}], allow_credentials="on"),
    )
    assert response.status_code == 200
    assert response.context["inline_admin_formsets"][0].formset.errors == [
        {"origin": [NULL_WITH_CREDENTIALS]}
    ]
    assert snapshot_of_data() == before


# --- SQLite "database is locked" ---------------------------------------------------------------------


def test_a_locked_database_is_reported_as_locked(full_client, monkeypatch):
    from corsadmin.api.views import RecordedModelViewSet

    def locked(*args, **kwargs):
        raise OperationalError("database is locked")

    monkeypatch.setattr(RecordedModelViewSet, "perform_create", locked)
    response = full_client.post(API + "origins/", {"origin": "https://app.example.com"}, format="json")
    assert (response.status_code, response.json()) == (
        503,
        {
            "detail": "The database is locked by another write (SQLite allows one writer at a time); "
            "nothing was changed. Try again in a moment.",
            "code": "database_locked",
        },
    )


def test_a_locked_database_is_reported_as_locked_in_the_admin(admin_client, monkeypatch):
    from django.contrib.admin import ModelAdmin

    def locked(*args, **kwargs):
        raise OperationalError("database is locked")

    monkeypatch.setattr(ModelAdmin, "save_model", locked)
    response = admin_client.post(
        "/admin/corsadmin/allowedorigin/add/",
        {"origin": "https://app.example.com", "policy": 1, "enabled": "on", "cors": "on", "note": ""},
        headers={"Accept": "text/html"},
    )
    assert response.status_code == 503
    assert b"The database is locked by another write" in response.content
