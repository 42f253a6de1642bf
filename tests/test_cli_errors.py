"""`manage.py cors` as a process: one line for bad input, nothing on stderr for --json,
import-settings with history, and check agreeing with the middleware on whitespace."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.contrib.admin.models import ADDITION, CHANGE, LogEntry
from django.core.management import call_command

from corsadmin.models import AllowedOrigin, Policy
from tests.api_fixtures import API

ROOT = Path(__file__).resolve().parent.parent
APP = "https://app.example.com"


def site_env(tmp_path: Path, extra_settings: str = "") -> dict[str, str]:
    (tmp_path / "site_settings.py").write_text("from project.settings import *  # noqa\n" + extra_settings)
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "CORSADMIN_VAR_DIR": str(tmp_path),
        "DJANGO_SETTINGS_MODULE": "site_settings",
        "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)]),
    }
    env.pop("REDIS_URL", None)
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    return env


def manage(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", "cors", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_import_settings_with_a_bad_urls_regex_is_one_line_and_exit_2(tmp_path):
    env = site_env(
        tmp_path, 'CORS_ALLOWED_ORIGINS = ["https://app.example.com"]\nCORS_URLS_REGEX = r"^/api/("\n'
    )
    before = manage(env, "export").stdout
    result = manage(env, "import-settings")
    assert (result.returncode, result.stderr) == (
        2,
        (
            "CommandError: The CORS_* settings cannot become policy 'default', nothing changed: "
            "CORS_URLS_REGEX: Not a valid regular expression: "
            "missing ), unterminated subpattern at position 6.\n"
        ),
    )
    after = manage(env, "export").stdout
    assert json.loads(after)["policies"] == json.loads(before)["policies"]


def test_check_json_on_a_refusal_exits_1_with_nothing_on_stderr(tmp_path):
    env = site_env(tmp_path)
    result = manage(env, "check", "https://evil.example", "--json")
    assert (result.returncode, result.stderr) == (1, "")
    assert json.loads(result.stdout)["allowed"] is False


@pytest.mark.django_db
def test_import_settings_records_history_under_the_user(settings, admin_user):
    settings.CORS_ALLOWED_ORIGINS = [APP]
    call_command("cors", "import-settings", "--user", admin_user.username, stdout=io.StringIO())
    logged = LogEntry.objects.filter(user=admin_user).order_by("object_repr")
    assert [(e.object_repr, e.action_flag, e.get_change_message()) for e in logged] == [
        ("default", CHANGE, "Changed Url regex and Max age."),
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
