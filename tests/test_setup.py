"""The set-up: migrations, system checks, and the local admin account."""

from __future__ import annotations

import io
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from django.contrib.auth import authenticate, get_user_model
from django.core.management import call_command

from corsadmin.models import Generation, Policy

BASE_DIR = Path(__file__).resolve().parent.parent


@pytest.mark.django_db
def test_migrate_creates_the_default_policy():
    policy = Policy.objects.get(name="default")
    assert (policy.url_regex, policy.enabled, policy.allow_all_origins, policy.allow_credentials) == (
        "^/",
        True,
        False,
        False,
    )


@pytest.mark.django_db
def test_migrate_creates_the_generation_row():
    assert Generation.objects.filter(pk=1).exists()


def test_migrate_on_a_fresh_database(tmp_path):
    """``manage.py migrate`` against an empty SQLite file, as ``make run`` does."""
    db = tmp_path / "fresh.sqlite3"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "project.settings",
        "DATABASE_URL": f"sqlite:///{db}",
        "CORSADMIN_VAR_DIR": str(tmp_path / "var"),
    }
    env.pop("REDIS_URL", None)
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
        cwd=BASE_DIR,
        env=env,
        check=True,
        timeout=120,
    )
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT name, url_regex, enabled FROM corsadmin_policy").fetchall()
    assert rows == [("default", "^/", 1)]


@pytest.mark.django_db
def test_system_checks_pass():
    out = io.StringIO()
    call_command("check", stdout=out)
    assert "System check identified no issues" in out.getvalue()


@pytest.mark.django_db
def test_no_missing_migrations():
    out = io.StringIO()
    call_command("makemigrations", check=True, dry_run=True, stdout=out)
    assert "No changes detected" in out.getvalue()


@pytest.fixture
def no_superuser_env(monkeypatch):
    monkeypatch.delenv("DJANGO_SUPERUSER_PASSWORD", raising=False)
    monkeypatch.delenv("DJANGO_SUPERUSER_USERNAME", raising=False)


@pytest.mark.django_db
def test_ensure_admin_prints_a_generated_password(no_superuser_env):
    out = io.StringIO()
    call_command("ensure_admin", stdout=out)
    text = out.getvalue()
    assert "with password: " in text
    password = text.split("with password: ", 1)[1].split()[0]
    assert len(password) >= 12
    user = authenticate(username="admin", password=password)
    assert user is not None and user.is_superuser and user.is_staff


@pytest.mark.django_db
def test_ensure_admin_generates_a_different_password_each_time(no_superuser_env):
    passwords = []
    for _ in range(2):
        out = io.StringIO()
        call_command("ensure_admin", stdout=out)
        passwords.append(out.getvalue().split("with password: ", 1)[1].split()[0])
        get_user_model().objects.all().delete()
    assert passwords[0] != passwords[1]


@pytest.mark.django_db
def test_ensure_admin_does_not_create_a_second_account(no_superuser_env):
    call_command("ensure_admin", stdout=io.StringIO())
    out = io.StringIO()
    call_command("ensure_admin", stdout=out)
    assert get_user_model().objects.count() == 1
    assert "exists" in out.getvalue()
    assert "password:" not in out.getvalue()


@pytest.mark.django_db
def test_ensure_admin_takes_the_password_from_the_environment(no_superuser_env, monkeypatch):
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", "a-chosen-password-123")
    out = io.StringIO()
    call_command("ensure_admin", stdout=out)
    assert "a-chosen-password-123" not in out.getvalue()
    assert authenticate(username="admin", password="a-chosen-password-123") is not None
