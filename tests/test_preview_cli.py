"""``manage.py cors ... --dry-run`` and the question before a write that would refuse traffic
seen in the last 24 hours (real requests through the middleware, then a flush)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from corsadmin import telemetry, usage
from corsadmin.models import AllowedOrigin, Policy

from .cli_runner import run_cors
from .cors_helpers import APP, ECHO
from .test_preview import OTHER, fresh_traffic, send, state  # noqa: F401  (fixture)
from .test_usage import FakeClock

pytestmark = pytest.mark.django_db
NOT_CONFIRMED = "CommandError: Nothing changed: not confirmed (give --yes to skip the question).\n"


@pytest.fixture
def entry(db):
    return AllowedOrigin.objects.create(origin=APP, policy=Policy.objects.get(name="default"))


def test_remove_dry_run_prints_the_traffic_it_would_refuse_and_changes_nothing(client, entry):
    send(client, APP, times=3)
    before = state()
    ran = run_cors("remove", APP, "--dry-run")
    assert (ran.returncode, ran.stderr) == (0, "")
    lines = ran.stdout.splitlines()
    assert lines[:2] == [
        "Dry run, nothing changed. Traffic of the last 7 days it would flip:",
        "would refuse: 1",
    ]
    assert lines[2].startswith(f"  {APP} on testserver/demo/: 3 requests, last ")
    assert lines[2].endswith(f"UTC; allowed by default ({APP}) -> refused")
    assert lines[3:] == ["would allow: nothing"]
    assert state() == before


def test_add_dry_run_prints_refused_traffic_it_would_allow(client, entry):
    send(client, OTHER)
    before = state()
    ran = run_cors("add", OTHER, "--dry-run")
    assert ran.returncode == 0
    assert "would refuse: nothing" in ran.stdout.splitlines()
    assert f"-> allowed by default ({OTHER})" in ran.stdout
    assert state() == before


@pytest.mark.parametrize(
    "args",
    [
        ("disable", APP, "--dry-run"),
        ("policy", "edit", "default", "--no-enabled", "--dry-run"),
        ("policy", "remove", "default", "--dry-run"),
    ],
)
def test_every_write_has_a_dry_run(client, entry, args):
    send(client, APP)
    before = state()
    ran = run_cors(*args)
    assert (ran.returncode, ran.stderr) == (0, "")
    assert "would refuse: 1" in ran.stdout.splitlines()
    assert state() == before


def test_a_deny_entry_dry_run_prints_what_it_would_refuse(client):
    wildcard = AllowedOrigin.objects.create(origin="https://*.example.com")
    send(client, APP)
    before = state()
    ran = run_cors("add", APP, "--deny", "--dry-run")
    assert ran.returncode == 0
    assert f"allowed by default ({wildcard.origin}) -> refused by {APP} in default" in ran.stdout
    assert state() == before


def test_a_bad_dry_run_is_the_same_one_line_error(entry):
    real, dry = run_cors("add", "javascript:x"), run_cors("add", "javascript:x", "--dry-run")
    assert (real.returncode, real.stderr) == (dry.returncode, dry.stderr) == (2, real.stderr)
    assert real.stderr.count("\n") == 1


def test_without_a_terminal_a_write_refusing_recent_traffic_is_refused(client, entry):
    send(client, APP)
    before = state()
    ran = run_cors("remove", APP)
    assert ran.returncode == 2
    assert ran.stderr == (
        "CommandError: Nothing changed: it would refuse traffic seen in the last 24 hours from 1 "
        "origin(s) (see --dry-run; give --yes to make the change anyway).\n"
    )
    assert state() == before


def test_yes_makes_the_change_without_asking(client, entry):
    send(client, APP)
    ran = run_cors("remove", APP, "--yes")
    assert (ran.returncode, ran.stderr) == (0, "")
    assert not AllowedOrigin.objects.filter(pk=entry.pk).exists()


def test_on_a_terminal_no_changes_nothing(client, entry):
    send(client, APP)
    before = state()
    ran = run_cors("remove", APP, stdin="n\n", terminal=True)
    assert ran.returncode == 2
    assert ran.stderr.startswith("It would refuse traffic seen in the last 24 hours (1):\n  " + APP)
    assert ran.stderr.endswith(NOT_CONFIRMED)
    assert state() == before


def test_on_a_terminal_yes_makes_the_change(client, entry):
    send(client, APP)
    ran = run_cors("remove", APP, stdin="y\n", terminal=True)
    assert ran.returncode == 0
    assert ran.stdout.startswith(f"Make the change? [y/N] Removed {APP} from policy 'default'.\n")
    assert not AllowedOrigin.objects.filter(pk=entry.pk).exists()


def test_traffic_older_than_24_hours_is_not_asked_about(client, entry, monkeypatch):
    clock = FakeClock(datetime.now(UTC).timestamp() - 2 * 86400)
    monkeypatch.setattr(usage, "clock", clock)
    monkeypatch.setattr(telemetry, "clock", clock)
    send(client, APP)
    monkeypatch.setattr(usage, "clock", lambda: clock.at + 2 * 86400)
    ran = run_cors("remove", APP)
    assert (ran.returncode, ran.stderr) == (0, "")
    assert not AllowedOrigin.objects.filter(pk=entry.pk).exists()


def test_a_write_flipping_nothing_is_not_asked_about(client, entry):
    send(client, APP)
    ran = run_cors("add", "https://new.example.com")
    assert (ran.returncode, ran.stderr) == (0, "")
    assert AllowedOrigin.objects.filter(origin="https://new.example.com").exists()


def test_import_dry_run_prints_its_plan_and_the_flips(client, entry, tmp_path):
    send(client, APP, times=2)
    path = tmp_path / "doc.json"
    path.write_text(json.dumps({"version": 1, "policies": [{"name": "default", "origins": []}]}))
    before = state()
    ran = run_cors("import", str(path), "--replace", "--dry-run")
    assert ran.returncode == 0
    assert "Traffic of the last 7 days it would flip:" in ran.stdout
    assert "would refuse: 1" in ran.stdout.splitlines()
    assert state() == before


def test_import_refusing_recent_traffic_without_a_terminal_is_refused(client, entry, tmp_path):
    send(client, APP)
    path = tmp_path / "doc.json"
    path.write_text(json.dumps({"version": 1, "policies": [{"name": "default", "origins": []}]}))
    before = state()
    ran = run_cors("import", str(path), "--replace")
    assert ran.returncode == 2
    assert "it would refuse traffic seen in the last 24 hours" in ran.stderr
    assert state() == before
    assert run_cors("import", str(path), "--replace", "--yes").returncode == 0
    assert not AllowedOrigin.objects.filter(pk=entry.pk).exists()


def test_flushed_traffic_is_what_counts(client, entry):
    client.get(ECHO, HTTP_ORIGIN=APP)  # counted, not flushed: no process has written it yet
    assert run_cors("remove", APP).returncode == 0
