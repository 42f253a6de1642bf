"""`manage.py cors` as run from the command line (tests/cli_runner.py): one line for bad input,
nothing on stderr for --json, import-settings with history, and check agreeing with the middleware
on whitespace."""

from __future__ import annotations

import io
import json

import pytest
from django.contrib.admin.models import ADDITION, CHANGE, LogEntry
from django.core.management import call_command

from corsadmin.models import AllowedOrigin, Policy
from tests.api_fixtures import API
from tests.cli_runner import run_cors

APP = "https://app.example.com"


@pytest.mark.django_db
def test_import_settings_with_a_bad_urls_regex_is_one_line_and_exit_2(settings):
    settings.CORS_ALLOWED_ORIGINS = ["https://app.example.com"]
    settings.CORS_URLS_REGEX = r"^/api/("
    before = run_cors("export").stdout
    result = run_cors("import-settings")
    assert (result.returncode, result.stderr) == (
        2,
        (
            "CommandError: The CORS_* settings cannot become policy 'default', nothing changed: "
            "CORS_URLS_REGEX: Not a valid regular expression: "
            "missing ), unterminated subpattern at position 6.\n"
        ),
    )
    after = run_cors("export").stdout
    assert json.loads(after)["policies"] == json.loads(before)["policies"]


@pytest.mark.django_db
def test_check_json_on_a_refusal_exits_1_with_nothing_on_stderr():
    result = run_cors("check", "https://evil.example", "--json")
    assert (result.returncode, result.stderr) == (1, "")
    assert json.loads(result.stdout)["allowed"] is False


@pytest.mark.django_db
def test_import_settings_records_history_under_the_user(settings, admin_user):
    settings.CORS_ALLOWED_ORIGINS = [APP]
    call_command("cors", "import-settings", "--user", admin_user.username, stdout=io.StringIO())
    logged = LogEntry.objects.filter(user=admin_user).order_by("object_repr")
    assert [(e.object_repr, e.action_flag, e.get_change_message()) for e in logged] == [
        ("default", CHANGE, "Changed URL regex and Max age."),
        (APP, ADDITION, "Added."),
    ]
    assert AllowedOrigin.objects.get(origin=APP).created_by == admin_user


# --- check agrees with the middleware on an Origin with surrounding whitespace -----------------


@pytest.fixture
def listed(db):
    Policy.objects.filter(name="default").update(url_regex="^/demo/")
    AllowedOrigin.objects.create(origin=APP)


@pytest.mark.parametrize("origin", [f" {APP}", f"{APP}\t", f" \t{APP}  "])
def test_api_check_strips_whitespace_as_the_server_does(listed, reader_client, origin):
    result = reader_client.get(API + "check/", {"origin": origin, "path": "/demo/echo/"}).json()
    assert (result["allowed"], result["headers"]["Access-Control-Allow-Origin"]) == (True, APP)


def test_cli_check_strips_whitespace_as_the_server_does(listed):
    out = io.StringIO()
    call_command("cors", "check", f" {APP} ", "--path", "/demo/echo/", stdout=out)
    assert "allowed:  yes" in out.getvalue()


def test_admin_check_strips_whitespace_as_the_server_does(listed, admin_client):
    response = admin_client.get(
        "/admin/corsadmin/allowedorigin/check/",
        {"origin": f" {APP}\t", "path": "/demo/echo/", "method": "GET"},
    )
    assert response.context["result"]["allowed"] is True
