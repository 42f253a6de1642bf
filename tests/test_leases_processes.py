"""A leased origin, in real server processes: leased and released through the API with a
lease's key made by ``manage.py cors token create``, and it stops matching at its expiry in
every worker of two gunicorns, with no write and no refresh (a 60 s interval).

Runs when DATABASE_URL and REDIS_URL are set (see tests/e2e.py). Slow (tens of seconds on a
shared 2-core machine, most of it starting four workers and one ``manage.py``): real workers,
and an expiry that real time must pass (each process compares it with its own clock, so no
fake clock can stand in), about 4 s.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from .e2e import Server, converge, probe, request

pytestmark = pytest.mark.services

PUSH_ONLY = {"CORSADMIN_REFRESH_INTERVAL": "60"}  # only a push or the clock can change an answer
LIFETIME = 4.0  # seconds the leased entry lives


def lease_key(deployment) -> str:
    out = deployment.manage(
        "cors", "token", "create", "ci-e2e", "--policy", "default",
        "--pattern", "https://pr-*.e2e.example.com", "--max-ttl", "1h",
    )  # fmt: skip
    return out.strip().splitlines()[-1]


def with_key(server: Server, key: str, method: str, path: str, body=None):
    return request(server.port, method, f"/api/cors/{path}", {"Authorization": f"Token {key}"}, body)


def test_a_leased_origin_expires_in_every_worker(deployment, start_server, report_line):
    machine_a = start_server("lease-a", "gunicorn", 2, deployment.env(**PUSH_ONLY))
    machine_b = start_server("lease-b", "gunicorn", 2, deployment.env(**PUSH_ONLY))
    group = [machine_a, machine_b]
    for server in group:
        server.discover_workers()
    key = lease_key(deployment)
    origin = "https://pr-7.e2e.example.com"

    outside = with_key(machine_a, key, "POST", "origins/", {"origin": "https://app.e2e.example.com"})
    assert outside.status == 403, outside.body

    expires = datetime.now(UTC) + timedelta(seconds=LIFETIME)
    since = time.monotonic()
    made = with_key(machine_a, key, "POST", "origins/", {"origin": origin, "expires_at": expires.isoformat()})
    assert made.status == 201, made.body
    assert made.json()["created_by"] == "lease:ci-e2e"
    converge(group, origin, True, since, limit=1.0)

    left = expires.timestamp() - time.time()
    assert left > 0.5, "the lease expired before every worker allowed it: the test cannot tell"
    time.sleep(left)  # real time: each worker compares the expiry with its own clock
    at_expiry = time.monotonic()
    result = converge(group, origin, False, at_expiry, limit=0.5)
    report_line(f"lease expiry: {len(result.seconds)} workers refused within {result.worst:.3f} s of it")

    entry_id = made.json()["id"]
    released = with_key(machine_b, key, "DELETE", f"origins/{entry_id}/")
    # A worker's first usage flush prunes expired leased entries: the release may come after it.
    assert released.status in (204, 404), released.body
    assert with_key(machine_b, key, "GET", f"origins/{entry_id}/").status == 404
    assert not probe(machine_b, origin).allowed
