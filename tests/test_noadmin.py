"""A host site without django.contrib.admin (API-only, middleware-only) works: its own
pytest run, in a fresh process whose settings never had the admin (tests/settings_noadmin.py)."""

import os
import subprocess
import sys
from pathlib import Path

from django.contrib.admin.models import ADDITION, CHANGE, DELETION

from corsadmin import history

ROOT = Path(__file__).resolve().parent.parent


def test_a_site_without_the_admin_app_renders_checks_serves_and_writes():
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE")
    }
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "tests/noadmin/site_checks.py",
            "--ds",
            "tests.settings_noadmin",
            "-q",
            "-p",
            "no:randomly",
            "-W",
            "ignore::UserWarning",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    summary = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else result.stderr[-2000:]
    assert (result.returncode, summary.split(" in ")[0]) == (0, "7 passed"), result.stdout[-4000:]


def test_history_uses_djangos_action_flags():
    assert (history.ADDITION, history.CHANGE, history.DELETION) == (ADDITION, CHANGE, DELETION)
