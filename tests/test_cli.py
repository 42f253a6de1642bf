"""`manage.py cors`: through call_command, and through a real process for exit codes."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.contrib.admin.models import ADDITION, CHANGE, DELETION, LogEntry
from django.core.management import CommandError, call_command

from corsadmin.models import AllowedOrigin, Policy
from tests.cli_runner import run_cors
from tests.test_origins import REJECTED

APP = "https://app.example.com"
ROOT = Path(__file__).resolve().parent.parent


def cors(*args: str) -> str:
    out = io.StringIO()
    call_command("cors", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def refused(*args: str) -> CommandError:
    with pytest.raises(CommandError) as info:
        cors(*args)
    return info.value


# --- call_command ------------------------------------------------------------------


@pytest.mark.django_db
def test_add_stores_the_canonical_origin_in_the_default_policy():
    out = cors("add", "HTTPS://App.Example.com:443")
    entry = AllowedOrigin.objects.get()
    assert (entry.origin, entry.policy.name, entry.enabled) == (APP, "default", True)
    assert f"Added {APP} to policy 'default'" in out


@pytest.mark.django_db
def test_add_with_every_option(full):
    Policy.objects.create(name="api")
    cors(
        "add",
        APP,
        "--policy",
        "api",
        "--note",
        "ticket 42",
        "--expires",
        "2031-01-01T00:00:00Z",
        "--csrf-trusted",
        "--user",
        "operator",
    )
    entry = AllowedOrigin.objects.get()
    assert entry.policy.name == "api"
    assert entry.note == "ticket 42"
    assert entry.expires_at.year == 2031
    assert entry.csrf_trusted is True
    assert entry.created_by == full
    log = LogEntry.objects.get()
    assert (log.user, log.action_flag, log.object_id) == (full, ADDITION, str(entry.pk))


@pytest.mark.django_db
def test_add_says_what_its_options_set():
    out = cors("add", APP, "--disabled", "--csrf-trusted", "--expires", "2031-01-01T00:00:00+00:00")
    entry = AllowedOrigin.objects.get()
    assert out.splitlines()[0] == (
        f"Added {APP} to policy 'default' (id {entry.pk}, disabled, expires 2031-01-01T00:00:00+00:00, "
        "CSRF-trusted)."
    )


@pytest.mark.django_db
def test_add_without_user_notes_the_os_user():
    from corsadmin.management.commands.cors import os_user

    out = cors("add", APP, "--note", "for QA")
    entry = AllowedOrigin.objects.get()
    assert entry.note == f"for QA (added with manage.py cors by OS user {os_user()})"
    assert entry.created_by is None
    assert "give --user NAME" in out
    assert not LogEntry.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("value, message", REJECTED[:12], ids=[repr(v)[:40] for v, _ in REJECTED[:12]])
def test_add_rejects_with_the_validators_message(value, message):
    error = refused("add", value)
    assert error.returncode == 2
    assert message in str(error)
    assert "\n" not in str(error)
    assert not AllowedOrigin.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "args, message",
    [
        (["add", APP, "--policy", "nope"], "policy: There is no policy named 'nope'."),
        (["add", APP, "--expires", "soon"], "expires_at: Datetime has wrong format"),
        (["add", APP, "--user", "ghost"], "There is no user named 'ghost'."),
        (["add", "https://*.com"], "public suffix 'com'"),
        (
            ["remove", "https://nope.example.com"],
            "https://nope.example.com is not listed in policy 'default'.",
        ),
        (["remove", APP, "--policy", "nope"], "There is no policy named 'nope'."),
        (["enable", "https://a.example.com/x"], "has a path"),
        (["disable", "https://nope.example.com"], "is not listed in policy 'default'"),
        (["list", "--policy", "nope"], "There is no policy named 'nope'."),
        (["check", APP, "--path", "nope"], "path: Give a path starting with '/'"),
        (["check", APP, "--method", "GE T"], "method:"),
        (["import", "/nonexistent/file.json"], "Cannot read /nonexistent/file.json"),
        (["export", "/nonexistent/dir/out.json"], "Cannot write /nonexistent/dir/out.json"),
    ],
)
def test_bad_input_is_a_one_line_error_and_changes_nothing(args, message):
    AllowedOrigin.objects.create(origin=APP)
    error = refused(*args)
    assert error.returncode == 2
    assert message in str(error)
    assert "\n" not in str(error)
    assert AllowedOrigin.objects.get().enabled
    assert not LogEntry.objects.exists()


@pytest.mark.django_db
def test_add_with_an_expiry_in_the_past_is_refused():
    error = refused("add", APP, "--expires", "2020-01-01T00:00:00Z")
    past = "This expiry is in the past: the entry would never match."
    assert (error.returncode, str(error)) == (
        2,
        f"expires_at: {past} Give a later date and time, or leave it empty to never expire.",
    )
    assert not AllowedOrigin.objects.exists()


@pytest.mark.django_db
def test_import_restores_an_expired_entry_as_the_backup_held_it(tmp_path):
    document = {
        "version": 1,
        "policies": [
            {"name": "default", "origins": [{"origin": APP, "expires_at": "2020-01-01T00:00:00Z"}]},
        ],
    }
    path = tmp_path / "backup.json"
    path.write_text(json.dumps(document))
    cors("import", str(path))
    assert AllowedOrigin.objects.get(origin=APP).expires_at.isoformat() == "2020-01-01T00:00:00+00:00"


@pytest.mark.django_db
def test_duplicate_is_refused_with_the_api_message():
    cors("add", APP)
    error = refused("add", "https://APP.example.com")
    assert str(error) == "origin: This origin is already listed in this policy."
    assert AllowedOrigin.objects.count() == 1


@pytest.mark.django_db
def test_enable_disable_remove(full):
    api = Policy.objects.create(name="api")
    AllowedOrigin.objects.create(origin=APP)
    AllowedOrigin.objects.create(origin=APP, policy=api)

    assert f"Disabled {APP} in policy 'default'" in cors("disable", APP, "--user", "operator")
    assert not AllowedOrigin.objects.get(policy__name="default").enabled
    assert AllowedOrigin.objects.get(policy=api).enabled
    assert "already disabled" in cors("disable", APP)
    cors("disable", APP, "--policy", "api", "--user", "operator")
    assert not AllowedOrigin.objects.get(policy=api).enabled
    cors("enable", "HTTPS://app.example.com", "--user", "operator")
    assert AllowedOrigin.objects.get(policy__name="default").enabled
    assert f"Removed {APP} from policy 'api'" in cors("remove", APP, "--policy", "api", "--user", "operator")
    assert list(AllowedOrigin.objects.values_list("policy__name", flat=True)) == ["default"]

    logs = [(log.action_flag, log.get_change_message()) for log in LogEntry.objects.order_by("pk")]
    assert logs == [
        (CHANGE, "Changed Enabled."),
        (CHANGE, "Changed Enabled."),
        (CHANGE, "Changed Enabled."),
        (DELETION, ""),
    ]


@pytest.mark.django_db
def test_list_table_and_json():
    Policy.objects.create(name="api")
    cors("add", APP, "--note", "n")
    cors("add", "https://b.example.com", "--policy", "api")
    cors("disable", "https://b.example.com", "--policy", "api")
    table = cors("list")
    lines = table.splitlines()
    assert lines[0].split() == [
        "ID",
        "POLICY",
        "ORIGIN",
        "STATUS",
        "EXPIRES",
        "SCOPES",
        "HITS",
        "LAST_SEEN",
        "NOTE",
    ]
    assert lines[1].split()[1:5] == ["api", "https://b.example.com", "disabled", "-"]
    assert lines[2].split()[1:5] == ["default", APP, "active", "-"]
    assert lines[-1] == "2 origin(s)"
    assert "api" not in cors("list", "--policy", "default")
    data = json.loads(cors("list", "--json", "--policy", "api"))
    assert [(o["origin"], o["policy"], o["enabled"]) for o in data] == [
        ("https://b.example.com", "api", False)
    ]


@pytest.mark.django_db
def test_check_prints_the_decision_and_exits_by_it():
    AllowedOrigin.objects.create(origin=APP)
    out = cors("check", APP)
    assert "allowed:  yes" in out
    assert f"Access-Control-Allow-Origin: {APP}" in out
    error = refused("check", "https://evil.example")
    assert error.returncode == 1
    assert str(error) == (
        "refused: No policy covering '/' (default) allows 'https://evil.example'. "
        "Note: there is no entry for this origin."
    )


@pytest.mark.django_db
def test_export_to_stdout_and_import_from_file(tmp_path, full):
    cors("add", APP)
    document = json.loads(cors("export"))
    assert document["version"] == 1
    path = tmp_path / "doc.json"
    document["policies"][0]["origins"].append({"origin": "https://new.example.com"})
    path.write_text(json.dumps(document))
    out = cors("import", str(path), "--user", "operator")
    assert "created 0 policies, 1 origins" in out
    assert AllowedOrigin.objects.count() == 2
    document["policies"][0]["origins"] = [{"origin": "https://new.example.com"}]
    path.write_text(json.dumps(document))
    cors("import", str(path), "--replace")
    assert list(AllowedOrigin.objects.values_list("origin", flat=True)) == ["https://new.example.com"]


@pytest.mark.django_db
def test_import_of_a_bad_document_reports_positions_and_changes_nothing(tmp_path):
    path = tmp_path / "doc.json"
    path.write_text(
        json.dumps(
            {
                "version": 1,
                "policies": [
                    {"name": "default", "origins": [{"origin": APP}, {"origin": "https://x.example.com/p"}]},
                    {"name": "b c"},
                ],
            }
        )
    )
    error = refused("import", str(path), "--replace")
    assert error.returncode == 2
    message = str(error)
    assert message.startswith("Nothing imported: ")
    assert "policies[0].origins[1].origin: 'https://x.example.com/p' has a path" in message
    assert "policies[1].name:" in message
    assert "\n" not in message
    assert not AllowedOrigin.objects.exists()
    path.write_text("{not json")
    assert "is not valid JSON" in str(refused("import", str(path)))


@pytest.mark.django_db
def test_import_settings_hands_over_to_settings_import(monkeypatch):
    import corsadmin.settings_import

    calls = []
    monkeypatch.setattr(corsadmin.settings_import, "run", lambda **kwargs: calls.append(kwargs))
    cors("import-settings", "--dry-run")
    assert calls and calls[0]["dry_run"] is True
    assert hasattr(calls[0]["stdout"], "write")


# --- a real process: exit codes and stderr (the rest in process: tests/cli_runner.py) ---------


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """A migrated SQLite database in a temporary directory, for manage.py processes."""
    var = tmp_path_factory.mktemp("site")
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{var / 'db.sqlite3'}",
        "CORSADMIN_VAR_DIR": str(var),
        "DJANGO_SETTINGS_MODULE": "project.settings",
    }
    env.pop("REDIS_URL", None)
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    return env


def manage(site, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", "cors", *args],
        cwd=ROOT,
        env=site,
        capture_output=True,
        text=True,
        input=stdin,
        timeout=60,
    )


def test_process_exit_codes(site):
    """0, 1 (a refusal), 2 (bad input) and a usage error from a real process (the rest in process)."""
    added = manage(site, "add", APP)
    assert added.returncode == 0, added.stderr
    assert added.stderr == ""

    evil = manage(site, "check", "https://evil.example")
    assert evil.returncode == 1
    assert "allowed:  no" in evil.stdout
    assert evil.stderr.strip().splitlines() == [
        (
            "CommandError: refused: No policy covering '/' (default) allows 'https://evil.example'. "
            "Note: there is no entry for this origin."
        )
    ]

    bad = manage(site, "add", "https://app.example.com/path")
    assert bad.returncode == 2
    assert len(bad.stderr.strip().splitlines()) == 1
    assert "has a path" in bad.stderr

    usage = manage(site, "frobnicate")
    assert usage.returncode != 0


@pytest.mark.django_db
def test_exit_codes_and_stderr_in_process():
    """What test_process_exit_codes checked before it spawned fewer processes."""
    assert run_cors("add", APP).returncode == 0
    allowed = run_cors("check", APP)
    assert (allowed.returncode, allowed.stderr) == (0, "")
    assert "allowed:  yes" in allowed.stdout
    unknown = run_cors("remove", "https://nope.example.com")
    assert (unknown.returncode, unknown.stderr) == (
        2,
        "CommandError: https://nope.example.com is not listed in policy 'default'.\n",
    )
    assert [o["origin"] for o in json.loads(run_cors("list", "--json").stdout)] == [APP]


@pytest.mark.django_db
def test_import_from_stdin_is_all_or_nothing():
    exported = run_cors("export")
    assert exported.returncode == 0
    document = json.loads(exported.stdout)
    document["policies"][0]["origins"] = [{"origin": "https://one.example.com"}, {"origin": "ftp://x y"}]
    bad = run_cors("import", "-", "--replace", stdin=json.dumps(document))
    assert bad.returncode == 2
    assert "policies[0].origins[1].origin" in bad.stderr
    after = json.loads(run_cors("export").stdout)
    assert after["policies"] == json.loads(exported.stdout)["policies"]

    document["policies"][0]["origins"] = [{"origin": "https://one.example.com"}]
    good = run_cors("import", "-", "--replace", stdin=json.dumps(document))
    assert good.returncode == 0, good.stderr
    assert run_cors("check", "https://one.example.com").returncode == 0
    assert run_cors("check", APP).returncode == 1


# --- -v/--verbosity 0 after the action, as Django's own commands take it ----------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    "args",
    [
        ("add", APP),
        ("disable", "https://listed.example.com"),
        ("enable", "https://listed.example.com"),
        ("remove", "https://listed.example.com"),
        ("import", "{document}"),
        ("export", "{document}"),
        ("import-settings",),
        ("reload",),
        ("policy", "add", "api", "--url-regex", "^/api/"),
        ("policy", "edit", "default", "--max-age", "60", "--verbosity"),
        ("policy", "remove", "old"),
    ],
    ids=lambda args: " ".join(args[:2]),
)
def test_verbosity_0_after_the_action_is_quiet(tmp_path, args):
    AllowedOrigin.objects.create(origin="https://listed.example.com")
    Policy.objects.create(name="old", url_regex="^/old/")
    document = tmp_path / "cors.json"
    document.write_text(cors("export"))
    flag = [] if args[-1] == "--verbosity" else ["-v"]
    ran = run_cors(*(arg.format(document=document) for arg in args), *flag, "0")
    assert (ran.returncode, ran.stdout, ran.stderr) == (0, "", "")


@pytest.mark.django_db
def test_verbosity_0_before_the_action_is_not_undone_by_the_action():
    ran = run_cors("-v", "0", "add", APP)
    assert (ran.returncode, ran.stdout) == (0, "")
    assert AllowedOrigin.objects.filter(origin=APP).exists()


@pytest.mark.django_db
def test_verbosity_0_still_prints_what_was_asked_for():
    AllowedOrigin.objects.create(origin=APP)
    ran = run_cors("list", "-v", "0")
    assert ran.returncode == 0
    assert ran.stdout.splitlines()[-1] == "1 origin(s)"
