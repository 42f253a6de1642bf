"""`cors status` against real gunicorn workers on PostgreSQL and Redis (tests/e2e.py).

Machine A: two workers reaching PostgreSQL through a proxy the test takes down
(tests/proxy.py). Machine B: one worker reaching it directly. A change made on B while A
is cut off leaves A's workers behind: `cors status` (and /api/cors/status/) must show
them stale within seconds, B's current, and all current again once A reaches the
database. Heartbeats live in Redis (the deployment's cache).
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest

from .e2e import BASE_DIR, INTERVAL, add_origin, api, host_port, via
from .proxy import Proxy

SERVICE_TIMEOUT = 2.0  # the servers' default
GRACE = INTERVAL + SERVICE_TIMEOUT  # behind for longer than one refresh may take: stale
LIMIT = GRACE + 3  # "within seconds": the grace, a heartbeat write and a read, on a busy machine


@pytest.fixture(scope="module")
def pg_proxy(deployment):
    proxy = Proxy(*host_port(deployment.database_url, 5432))
    yield proxy
    proxy.close()


@pytest.fixture(scope="module")
def machines(deployment, start_server, pg_proxy):
    a = start_server(
        "status-a", "gunicorn", 2, deployment.env(database_url=via(deployment.database_url, pg_proxy.port))
    )
    b = start_server("status-b", "gunicorn", 1, deployment.env())
    for server in (a, b):
        server.discover_workers()  # each worker's first request starts its refresher
    return SimpleNamespace(a=a, b=b)


def ids(server) -> set[str]:
    return {f"{socket.gethostname()}:{pid}" for pid in server.pids}


def api_status(site, server) -> dict[str, Any]:
    reply = api(site, server, "GET", "status/")
    assert reply.status == 200, (reply.status, reply.body[:500])
    return reply.json()


def cli(site, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", "cors", "status", *args],
        cwd=BASE_DIR,
        env=site.env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def by_id(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {p["id"]: p for p in body["processes"]}


def wait_until(read: Callable[[], dict[str, Any]], done: Callable[[dict[str, Any]], bool], timeout: float):
    """Read until ``done``; returns (seconds, the body that satisfied it)."""
    start = time.monotonic()
    body = read()
    while not done(body):
        assert time.monotonic() - start < timeout, json.dumps(body, indent=2)
        time.sleep(0.05)
        body = read()
    return time.monotonic() - start, body


def all_current(machines) -> Callable[[dict[str, Any]], bool]:
    wanted = ids(machines.a) | ids(machines.b)

    def done(body: dict[str, Any]) -> bool:
        seen = by_id(body)
        return wanted <= set(seen) and all(
            not seen[i]["stale"] and seen[i]["generation"] == body["generation"] for i in wanted
        )

    return done


def a_stale_b_current(machines) -> Callable[[dict[str, Any]], bool]:
    def done(body: dict[str, Any]) -> bool:
        seen = by_id(body)
        return all(seen.get(i, {}).get("stale") for i in ids(machines.a)) and all(
            i in seen and not seen[i]["stale"] for i in ids(machines.b)
        )

    return done


def test_cors_status_shows_a_process_cut_off_from_the_database_stale_within_seconds(
    deployment, machines, pg_proxy, report_line
):
    a, b = machines.a, machines.b
    wait_until(lambda: api_status(deployment, b), all_current(machines), timeout=15)
    before = cli(deployment)
    assert before.returncode == 0, before.stdout + before.stderr
    for process in ids(a) | ids(b):
        assert f"{process}  " in before.stdout and "current" in before.stdout

    pg_proxy.down()
    try:
        add_origin(deployment, b, "https://behind.status.example.com")  # the database moves on
        changed = time.monotonic()
        generation = deployment.database_generation()

        # The command, run again and again from the change (each run starts Django).
        cli_seen: list[float] = []
        run_seconds: list[float] = []  # how long a run takes on this machine, now

        def poll_cli() -> None:
            while time.monotonic() - changed < LIMIT + 30:
                began = time.monotonic()
                run = cli(deployment, "--json")
                run_seconds.append(time.monotonic() - began)
                if run.returncode == 1 and a_stale_b_current(machines)(json.loads(run.stdout)):
                    cli_seen.append(time.monotonic() - changed)
                    return

        poller = threading.Thread(target=poll_cli)
        poller.start()
        api_seconds, body = wait_until(
            lambda: api_status(deployment, b), a_stale_b_current(machines), timeout=LIMIT + 5
        )
        poller.join()
        seen = by_id(body)
        assert body["generation"] == generation
        for process in ids(a):
            assert seen[process]["generation"] < generation
            assert seen[process]["last_error"], seen[process]
        for process in ids(b):
            assert seen[process]["generation"] == generation
        assert cli_seen, "cors status never showed machine A's workers stale"
        assert GRACE - 0.5 <= api_seconds <= LIMIT, api_seconds  # not while merely catching up
        # The run that started once the API showed it stale answers so: at most the run that was
        # under way then and one more (each starts Django: 2 s on a quiet machine, 5 on a busy one).
        assert cli_seen[0] <= api_seconds + 2 * max(run_seconds) + 1, (cli_seen, api_seconds, run_seconds)

        table = cli(deployment)
        assert table.returncode == 1, table.stdout + table.stderr
        lines = table.stdout.splitlines()
        assert lines[0] == f"database generation: {generation}"
        for process in ids(a):
            [line] = [x for x in lines if x.startswith(f"{process} ")]
            assert "STALE (1 behind)" in line, line
        assert ", 2 stale (stale: " in lines[-1], lines[-1]
        assert re.fullmatch(r"CommandError: 2 of \d+ process\(es\) stale", table.stderr.strip()), table.stderr
    finally:
        pg_proxy.up()
    restored = time.monotonic()
    back_seconds, _ = wait_until(lambda: api_status(deployment, b), all_current(machines), timeout=15)
    after = cli(deployment)
    assert after.returncode == 0, after.stdout + after.stderr
    report_line(
        f"A cut off from PostgreSQL, a change on B: /api/cors/status/ showed A's 2 workers stale "
        f"{api_seconds:.2f} s after the change, `cors status` {cli_seen[0]:.2f} s (end of the first "
        f"run saying so); current again {back_seconds:.2f} s after PostgreSQL came back "
        f"({time.monotonic() - restored:.2f} s with the last command run)"
    )


def test_a_stopped_server_leaves_the_list_at_once(deployment, start_server, machines):
    """A worker that exits normally removes its heartbeat (it does not linger as stale). A
    server of its own: the module's machines stay up for the other test, whatever the order."""
    c = start_server("status-c", "gunicorn", 1, deployment.env())
    c.discover_workers()
    b = machines.b
    gone = ids(c)
    wait_until(lambda: api_status(deployment, b), lambda body: gone <= set(by_id(body)), timeout=15)
    c.stop()
    stopped = time.monotonic()
    seconds, body = wait_until(
        lambda: api_status(deployment, b), lambda body: not gone & set(by_id(body)), timeout=15
    )
    assert seconds < 2, seconds  # at exit, not after the heartbeats' 7 s
    assert set(by_id(body)) >= ids(b)
    assert time.monotonic() - stopped < 15
