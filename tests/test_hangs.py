"""A hanging database or cache never holds a worker through corsadmin's own views.

Real gunicorn servers reach PostgreSQL and Redis through loopback proxies
(``tests/proxy.py``); ``hang()`` makes a service accept connections and never answer.
One server opens a connection per request (the demo's default), the other keeps them
(``DATABASE_CONN_MAX_AGE``), so both a hanging connect and a query that hangs on an
open connection are met. Runs with DATABASE_URL and REDIS_URL (see ``tests/e2e.py``).
Before: three anonymous requests with ``Authorization: Token <garbage>`` pinned all
three workers for 31 s each and ended in HTML 500s (gunicorn's worker timeout).
"""

from __future__ import annotations

import secrets
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace

import pytest

from .e2e import ECHO, Reply, host_port, request, via
from .proxy import Proxy

SERVICE_TIMEOUT = 2.0  # corsadmin's default, which the demo site keeps
# A worker waits at most one SERVICE_TIMEOUT (a query cut, or a connect given up), plus
# the machine's slack; old main: 31 s.
BOUND = 2 * SERVICE_TIMEOUT + 1
WORKERS = 3


@pytest.fixture(scope="module")
def proxies(deployment):
    pg = Proxy(*host_port(deployment.database_url, 5432))
    redis = Proxy(*host_port(deployment.redis_url, 6379))
    yield SimpleNamespace(pg=pg, redis=redis)
    pg.close()
    redis.close()


@pytest.fixture
def restore(proxies):
    yield proxies
    proxies.pg.up()
    proxies.redis.up()


@pytest.fixture(scope="module")
def servers(deployment, start_server, proxies):
    through = {
        "database_url": via(deployment.database_url, proxies.pg.port),
        "redis_url": via(deployment.redis_url, proxies.redis.port),
    }
    fresh = start_server("hang-fresh", "gunicorn", WORKERS, deployment.env(**through))
    kept = start_server(
        "hang-kept", "gunicorn", WORKERS, deployment.env(**through, DATABASE_CONN_MAX_AGE="600")
    )
    return {"fresh": fresh, "kept": kept}


def token_request(port: int, key: str) -> tuple[Reply | None, float]:
    start = time.monotonic()
    try:
        reply = request(port, "GET", "/api/cors/origins/", {"Authorization": f"Token {key}"}, timeout=60)
    except OSError:
        reply = None
    return reply, time.monotonic() - start


def wave(port: int) -> list[tuple[Reply | None, float]]:
    """Three concurrent anonymous requests, each with a key nobody has."""
    with ThreadPoolExecutor(WORKERS) as pool:
        return list(pool.map(lambda _: token_request(port, secrets.token_hex(20)), range(WORKERS)))


def warm(site, port: int) -> None:
    """Every worker has answered an API request (the kept server then holds a connection each)."""
    with ThreadPoolExecutor(6) as pool:
        replies = list(pool.map(lambda _: token_request(port, site.token), range(30)))
    assert all(r is not None and r.status == 200 for r, _ in replies)


@pytest.mark.parametrize("kind", ["fresh", "kept"])
def test_token_requests_during_a_database_hang_get_a_quick_503(
    deployment, servers, restore, report_line, kind
):
    server = servers[kind]
    warm(deployment, server.port)
    baseline = wave(server.port)
    assert [r.status for r, _ in baseline if r] == [401] * WORKERS
    base = max(seconds for _, seconds in baseline)

    restore.pg.hang()
    pages: list[tuple[int, float]] = []
    stop = threading.Event()

    def browse() -> None:
        while not stop.is_set():
            start = time.monotonic()
            try:
                status = request(server.port, "GET", ECHO, timeout=60).status
            except OSError:
                status = 0
            pages.append((status, time.monotonic() - start))

    browser = threading.Thread(target=browse)
    browser.start()
    try:
        first = wave(server.port)
        second = wave(server.port)
    finally:
        stop.set()
        browser.join(60)

    for reply, _seconds in first + second:
        assert reply is not None
        assert reply.status == 503, reply.body[:300]
        assert reply.headers["content-type"] == "application/json"
        assert reply.json()["code"] == "database_unavailable"
    slowest = max(seconds for _, seconds in first + second)
    report_line(
        f"{kind} connections, PostgreSQL hanging: 2 waves of {WORKERS} garbage-token requests answered "
        f"503 in at most {slowest:.2f} s (SERVICE_TIMEOUT {SERVICE_TIMEOUT} s; with the database up "
        f"401 in {base:.3f} s); /demo/echo/ meanwhile: {len(pages)} pages, slowest "
        f"{max(s for _, s in pages):.2f} s"
    )
    assert slowest <= BOUND, (first, second)
    assert pages and {status for status, _ in pages} == {200}
    assert max(seconds for _, seconds in pages) <= BOUND

    restore.pg.up()
    deadline = time.monotonic() + 10
    while (reply := token_request(server.port, deployment.token)[0]) is None or reply.status != 200:
        assert time.monotonic() < deadline, "the API did not come back within 10 s of the database"
        time.sleep(0.2)


def test_a_hanging_redis_costs_api_requests_nothing_after_the_first_failure(
    deployment, servers, restore, report_line
):
    """The throttles count in Redis: after one request per worker paid the cache's timeout,
    the others do not wait for it (the throttle backs off)."""
    server = servers["fresh"]
    warm(deployment, server.port)
    before = sorted(token_request(server.port, deployment.token)[1] for _ in range(15))
    restore.redis.hang()
    timed = [token_request(server.port, deployment.token) for _ in range(15)]
    assert all(r is not None and r.status == 200 for r, _ in timed)
    during = sorted(seconds for _, seconds in timed)
    slow = [s for s in during if s > 0.5]
    median_before, median_during = before[len(before) // 2], during[len(during) // 2]
    report_line(
        f"Redis hanging: 15 API requests, {len(slow)} slow ({', '.join(f'{s:.2f}' for s in slow)} s: "
        f"one per worker at most), median {median_during * 1000:.1f} ms vs {median_before * 1000:.1f} ms "
        "with Redis up"
    )
    assert len(slow) <= WORKERS
    assert median_during <= 4 * median_before + 0.05
