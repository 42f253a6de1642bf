"""A host without django.contrib.admin (tests/settings_noadmin.py). Not collected by the main
run (the file name is not test_*.py): tests/test_noadmin.py runs it in its own pytest, whose
Django never had the admin installed."""

import io
import logging

import pytest
from django.apps import apps
from django.core.management import call_command

from corsadmin.models import AllowedOrigin, Policy

from ..api_fixtures import make_user, token_client

pytestmark = pytest.mark.django_db
APP = "https://app.example.com"


def test_the_admin_is_not_installed():
    assert not apps.is_installed("django.contrib.admin")


def test_a_404_page_renders(client):
    response = client.get("/no/such/page/")
    assert response.status_code == 404


def test_a_template_loading_corsadmins_tags_renders(client):
    response = client.get("/page/")
    assert (response.status_code, response.content.decode()) == (200, "Note: - → hi")


def test_system_checks_run():
    """Any error would raise SystemCheckError; warnings are printed, and none is expected."""
    out, err = io.StringIO(), io.StringIO()
    call_command("check", "--database", "default", stdout=out, stderr=err)
    assert (out.getvalue(), err.getvalue()) == ("System check identified no issues (0 silenced).\n", "")


def test_cors_through_the_middleware(client):
    policy, _ = Policy.objects.get_or_create(name="default", defaults={"url_regex": "^/"})
    AllowedOrigin.objects.create(policy=policy, origin=APP)
    response = client.get("/demo/echo/", HTTP_ORIGIN=APP)
    assert response["Access-Control-Allow-Origin"] == APP


def test_cors_add_records_its_history_in_the_log(caplog):
    Policy.objects.get_or_create(name="default", defaults={"url_regex": "^/"})
    make_user("operator")
    with caplog.at_level(logging.INFO, logger="corsadmin"):
        call_command("cors", "add", APP, "--user", "operator", stdout=io.StringIO())
    entry = AllowedOrigin.objects.get(origin=APP)
    assert [r.getMessage() for r in caplog.records if getattr(r, "event", None) == "history"] == [
        f"corsadmin: added allowed origin '{entry}' (pk {entry.pk}) by user {entry.created_by.pk}"
    ]


def test_an_api_change_records_its_history_in_the_log(caplog):
    policy, _ = Policy.objects.get_or_create(name="default", defaults={"url_regex": "^/"})
    entry = AllowedOrigin.objects.create(policy=policy, origin=APP)
    user = make_user("editor", "change_allowedorigin", "view_allowedorigin")
    with caplog.at_level(logging.INFO, logger="corsadmin"):
        response = token_client(user).patch(f"/api/cors/origins/{entry.pk}/", {"note": "hi"}, format="json")
    assert response.status_code == 200
    assert [r.getMessage() for r in caplog.records if getattr(r, "event", None) == "history"] == [
        f"corsadmin: changed allowed origin '{entry}' (pk {entry.pk}) by user {user.pk}: Note: - → hi"
    ]
