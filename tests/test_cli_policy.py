"""`cors policy ...`, `cors import --dry-run`, `--replace` confirmation, import errors one per line."""

from __future__ import annotations

import io
import json

import pytest
from django.contrib.admin.models import ADDITION, CHANGE, LogEntry
from django.core.management import CommandError, call_command

from corsadmin.documents import export_document
from corsadmin.models import AllowedOrigin, Policy
from tests.cli_runner import run_cors

APP = "https://app.example.com"


def cors(*args: str, stdin: str | None = None) -> str:
    out = io.StringIO()
    call_command("cors", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def unchanged() -> dict:
    return {**export_document(), "exported_at": None}


# --- policies --------------------------------------------------------------------------------


@pytest.mark.django_db
def test_policy_add_with_options_is_recorded(admin_user):
    out = cors(
        "policy",
        "add",
        "api",
        "--url-regex",
        "^/api/",
        "--priority",
        "5",
        "--methods",
        "get,post",
        "--credentials",
        "--user",
        "admin",
    )
    policy = Policy.objects.get(name="api")
    assert (policy.url_regex, policy.priority, policy.allow_methods, policy.allow_credentials) == (
        "^/api/",
        5,
        ["GET", "POST"],
        True,
    )
    assert policy.allow_headers == list(Policy._meta.get_field("allow_headers").get_default())
    assert out == (
        "Added policy 'api' for ^/api/: Priority: 5; Allow methods: GET, POST; Allow credentials: yes.\n"
    )
    assert LogEntry.objects.get(object_repr="api").action_flag == ADDITION


@pytest.mark.django_db
def test_policy_edit_changes_only_what_is_given(admin_user):
    Policy.objects.create(name="api", url_regex="^/api/", priority=3)
    out = cors("policy", "edit", "api", "--no-enabled", "--max-age", "60", "--user", "admin")
    policy = Policy.objects.get(name="api")
    assert (policy.enabled, policy.max_age, policy.priority) == (False, 60, 3)
    assert out == "Changed policy 'api': Max age: 7200 → 60; Enabled: yes → no.\n"
    assert LogEntry.objects.get(object_repr="api").action_flag == CHANGE


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("flag", "before", "said"),
    [
        ("--no-enabled", {}, "Enabled: yes → no"),
        ("--enabled", {"enabled": False}, "Enabled: no → yes"),
        ("--credentials", {}, "Allow credentials: no → yes"),
        ("--no-credentials", {"allow_credentials": True}, "Allow credentials: yes → no"),
        ("--all-origins", {}, "Allow all origins: no → yes"),
        ("--no-all-origins", {"allow_all_origins": True}, "Allow all origins: yes → no"),
        ("--private-network", {}, "Allow private network: no → yes"),
        ("--no-private-network", {"allow_private_network": True}, "Allow private network: yes → no"),
    ],
)
def test_policy_edit_says_what_each_flag_changed(flag, before, said):
    Policy.objects.create(name="api", url_regex="^/api/", **before)
    out = cors("policy", "edit", "api", flag)
    assert out.splitlines()[0] == f"Changed policy 'api': {said}."


@pytest.mark.django_db
def test_policy_edit_to_the_value_it_has_says_nothing_changed():
    Policy.objects.create(name="api", url_regex="^/api/", max_age=600)
    out = cors("policy", "edit", "api", "--enabled", "--max-age", "600")
    assert out.splitlines()[0] == "Policy 'api' unchanged: it already had these values."


@pytest.mark.django_db
def test_policy_remove_removes_its_origins():
    api = Policy.objects.create(name="api", url_regex="^/api/")
    AllowedOrigin.objects.create(origin=APP, policy=api)
    assert cors("policy", "remove", "api").startswith("Removed policy 'api' and its 1 origin(s).")
    assert not Policy.objects.filter(name="api").exists()


@pytest.mark.django_db
def test_policy_list():
    Policy.objects.create(name="api", url_regex="^/api/", priority=5)
    lines = cors("policy", "list").splitlines()
    assert lines[0].startswith("api  ^/api/  priority 5  enabled")
    assert lines[-1] == "2 policies"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("policy", "add", "bad name"), 'name: Enter a valid "slug" consisting of letters'),
        (
            ("policy", "add", "p", "--url-regex", "a{99999999999}"),
            "url_regex: Not a valid regular expression",
        ),
        (
            ("policy", "add", "p", "--all-origins", "--credentials"),
            "cannot allow all origins and credentials",
        ),
        (("policy", "edit", "nope", "--priority", "1"), "policy: There is no policy named 'nope'."),
        (("policy", "edit", "default"), "Nothing to change"),
        (("policy", "remove", "nope"), "policy: There is no policy named 'nope'."),
    ],
)
def test_policy_bad_input_is_one_line_and_changes_nothing(args, message):
    before = unchanged()
    with pytest.raises(CommandError) as info:
        cors(*args)
    assert info.value.returncode == 2
    assert message in str(info.value) and "\n" not in str(info.value)
    assert unchanged() == before


# --- import --dry-run, --replace confirmation ----------------------------------------------------------


@pytest.mark.django_db
def test_import_dry_run_reports_and_changes_nothing(tmp_path):
    AllowedOrigin.objects.create(origin=APP)
    path = tmp_path / "doc.json"
    path.write_text(
        json.dumps(
            {
                "version": 1,
                "policies": [{"name": "default", "origins": [{"origin": "https://b.example.com"}]}],
            }
        )
    )
    before = unchanged()
    out = cors("import", str(path), "--replace", "--dry-run")
    assert out == (
        f"Dry run of {path}, nothing changed. The import would:\n"
        "  add     origin https://b.example.com in policy 'default'\n"
        "  remove  origin https://app.example.com in policy 'default'\n"
        "Would have created 0 policies, 1 origins; changed 0 policies, "
        "0 origins; unchanged 1 policies, 0 origins; deleted 0 policies, 1 origins.\n"
    )
    assert unchanged() == before
    assert not LogEntry.objects.exists()


@pytest.mark.django_db
def test_import_dry_run_lists_the_rows_it_would_add_change_and_remove(tmp_path):
    default = Policy.objects.get(name="default")
    old = Policy.objects.create(name="old", url_regex="^/old/")
    AllowedOrigin.objects.create(origin="https://kept.example.com", policy=default)
    AllowedOrigin.objects.create(origin="https://off.example.com", policy=default)
    AllowedOrigin.objects.create(origin="https://gone.example.com", policy=default)
    AllowedOrigin.objects.create(origin="https://legacy.example.com", policy=old)
    document = {
        "version": 1,
        "policies": [
            {
                "name": "default",
                "url_regex": "^/",
                "max_age": 600,
                "origins": [
                    {"origin": "https://kept.example.com"},
                    {"origin": "https://off.example.com", "enabled": False},
                ],
            },
            {"name": "api", "url_regex": "^/api/", "origins": [{"origin": "https://new.example.com"}]},
        ],
    }
    path = tmp_path / "doc.json"
    path.write_text(json.dumps(document))
    before = unchanged()
    out = cors("import", str(path), "--replace", "--dry-run")
    assert out.splitlines() == [
        f"Dry run of {path}, nothing changed. The import would:",
        "  add     policy 'api'",
        "  add     origin https://new.example.com in policy 'api'",
        "  change  policy 'default': Max age: 7200 → 600",
        "  change  origin https://off.example.com in policy 'default': Enabled: yes → no",
        "  remove  origin https://gone.example.com in policy 'default'",
        "  remove  policy 'old'",
        "  remove  origin https://legacy.example.com in policy 'old'",
        (
            "Would have created 1 policies, 1 origins; changed 1 policies, 1 origins; "
            "unchanged 0 policies, 1 origins; deleted 1 policies, 2 origins."
        ),
    ]
    assert unchanged() == before


@pytest.fixture
def replace_document(db, tmp_path):
    assert run_cors("add", APP).returncode == 0
    path = tmp_path / "doc.json"
    path.write_text(json.dumps({"version": 1, "policies": [{"name": "default", "origins": []}]}))
    return path


def listed() -> list[str]:
    return [o["origin"] for o in json.loads(run_cors("list", "--json").stdout)]


def test_replace_asks_before_deleting_and_no_changes_nothing(replace_document):
    result = run_cors("import", str(replace_document), "--replace", stdin="n\n", terminal=True)
    assert "--replace deletes 0 policies and 1 origins the document does not name" in result.stdout
    assert result.returncode == 2
    assert listed() == [APP]


def test_replace_goes_ahead_when_confirmed(replace_document):
    result = run_cors("import", str(replace_document), "--replace", stdin="y\n", terminal=True)
    assert result.returncode == 0, result.stdout
    assert listed() == []


def test_replace_with_yes_does_not_ask(replace_document):
    result = run_cors("import", str(replace_document), "--replace", "--yes", terminal=True)
    assert "Continue?" not in result.stdout
    assert result.returncode == 0
    assert listed() == []


def test_replace_does_not_ask_without_a_terminal(replace_document):
    result = run_cors("import", str(replace_document), "--replace")
    assert "Continue?" not in result.stdout
    assert result.returncode == 0
    assert listed() == []


@pytest.mark.django_db
def test_import_errors_are_one_per_line(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text(
        json.dumps(
            {
                "version": 1,
                "policies": [
                    {
                        "name": "default",
                        "origins": [{"origin": "https://x.example.com/p"}, {"origin": "javascript://x"}],
                    },
                    {"name": "b c"},
                ],
            }
        )
    )
    result = run_cors("import", str(path))
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert lines[0] == f"CommandError: Nothing imported: 3 error(s) in {path}:"
    assert [line.split(":")[0] for line in lines[1:]] == [
        "  policies[0].origins[0].origin",
        "  policies[0].origins[1].origin",
        "  policies[1].name",
    ]
