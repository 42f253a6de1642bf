"""Refused-origin telemetry and usage written by real processes into PostgreSQL: three
workers flooding at once never push the refused list past its cap, a fork never writes
the parent's counts twice, and a process that exits gracefully writes what it counted."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from django.db import connection

from corsadmin.models import AllowedOrigin, OriginUsage, RefusedOrigin

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

ROOT = Path(__file__).resolve().parent.parent


def database_url() -> str:
    if connection.vendor != "postgresql":
        pytest.fail("needs DATABASE_URL naming PostgreSQL (run with the services tests)")
    s = connection.settings_dict
    host = f"{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}"
    return f"postgres://{s['USER']}:{s['PASSWORD'] or ''}@{host}/{s['NAME']}"


def start(*args: str) -> subprocess.Popen:
    env = dict(
        os.environ, DATABASE_URL=database_url(), DJANGO_SETTINGS_MODULE="tests.settings", PYTHONPATH=str(ROOT)
    )
    return subprocess.Popen(
        [sys.executable, "-m", "tests.telemetry_process", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def finish(process: subprocess.Popen) -> dict:
    out, err = process.communicate(timeout=300)
    assert process.returncode == 0, err.decode()
    return json.loads(out.decode().splitlines()[-1])


def test_three_workers_flooding_never_push_the_refused_list_past_its_cap(report_line):
    """3,000 distinct origins from three processes at once; a poller samples the row count."""
    import psycopg

    samples: list[int] = []
    done = threading.Event()
    table = RefusedOrigin._meta.db_table

    def poll() -> None:
        with psycopg.connect(database_url(), autocommit=True) as conn:
            while not done.is_set():
                samples.append(conn.execute(f'SELECT COUNT(*) FROM "{table}"').fetchone()[0])

    poller = threading.Thread(target=poll)
    poller.start()
    try:
        workers = [start("flood", str(n * 1000), "1000", "50") for n in range(3)]
        for worker in workers:
            finish(worker)
    finally:
        done.set()
        poller.join()
    report_line(f"{len(samples)} samples, largest {max(samples)} rows (cap 1000)")
    assert len(samples) > 100
    assert (max(samples), RefusedOrigin.objects.count()) == (1000, 1000)


def test_a_forked_child_never_writes_its_parents_counts_again():
    entry = AllowedOrigin.objects.create(origin="https://app.example.com")
    assert finish(start("fork", str(entry.pk))) == {"child_status": 0}
    assert RefusedOrigin.objects.get(origin="https://forked.example").count == 3 + 2
    assert OriginUsage.objects.get(origin=entry).hits == 3 + 2


def test_a_process_that_exits_gracefully_writes_what_it_counted():
    entry = AllowedOrigin.objects.create(origin="https://app.example.com")
    assert finish(start("exit", str(entry.pk))) == {"pending": 1, "writer_threads": 1}
    assert RefusedOrigin.objects.get(origin="https://leaving.example").count == 4
    assert OriginUsage.objects.get(origin=entry).hits == 4


def test_a_gunicorn_shutdown_writes_what_its_workers_counted(deployment, start_server):
    """Refused requests, then a graceful stop well within TELEMETRY_INTERVAL (10 s).

    A refusal is counted where a policy can allow some origin: the default policy gets one
    entry first, whatever this session's deployment holds."""
    import psycopg

    from .e2e import ECHO, request

    listed = "https://listed.restart.example.net"
    deployment.manage("cors", "add", listed)
    try:
        server = start_server("telemetry-exit", "gunicorn", 2, deployment.env())
        origin = "https://restart.example.net"
        for _ in range(20):
            assert request(server.port, "GET", ECHO, {"Origin": origin}).status == 200
        server.stop()
    finally:
        deployment.manage("cors", "remove", listed)
    assert server.process is not None and server.process.returncode == 0
    with psycopg.connect(deployment.database_url) as conn:
        counted = conn.execute(
            f'SELECT SUM("count") FROM "{RefusedOrigin._meta.db_table}" WHERE origin = %s', [origin]
        ).fetchone()[0]
    assert counted == 20
