"""Two processes (two workers) flush usage counts into the same PostgreSQL rows: they add up."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from django.db import connection

from corsadmin.models import AllowedOrigin, OriginHour, OriginUsage, PolicyHour

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

ROOT = Path(__file__).resolve().parent.parent
T0 = datetime(2026, 11, 26, 10, 15, tzinfo=UTC)


def test_two_processes_flushing_the_same_rows_add_up():
    if connection.vendor != "postgresql":
        pytest.fail("needs DATABASE_URL naming PostgreSQL (run with the services tests)")
    entry = AllowedOrigin.objects.create(origin="https://app.example.com")
    settings_dict = connection.settings_dict
    url = (
        f"postgres://{settings_dict['USER']}:{settings_dict['PASSWORD'] or ''}"
        f"@{settings_dict['HOST'] or '127.0.0.1'}"
        f":{settings_dict['PORT'] or 5432}/{settings_dict['NAME']}"
    )
    env = dict(os.environ, DATABASE_URL=url, DJANGO_SETTINGS_MODULE="tests.settings", PYTHONPATH=str(ROOT))
    args = [sys.executable, "-m", "tests.usage_process", str(entry.pk), "50", "20", str(T0.timestamp())]
    workers = [
        subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for _ in range(2)
    ]
    for worker in workers:
        out, err = worker.communicate(timeout=120)
        assert worker.returncode == 0, err.decode()
        assert json.loads(out.decode().splitlines()[-1])["written"] == 20 * 3
    usage = OriginUsage.objects.get(origin=entry)
    assert (usage.hits, usage.last_seen) == (2 * 20 * 50, T0)
    hour = T0.replace(minute=0)
    assert list(OriginHour.objects.values_list("origin_id", "hour", "count")) == [(entry.pk, hour, 2000)]
    assert list(PolicyHour.objects.values_list("policy", "hour", "allowed", "refused")) == [
        ("default", hour, 2000, 40)
    ]
