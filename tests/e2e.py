"""Real servers for the production tests: a site on PostgreSQL + Redis, gunicorn and
uvicorn processes on loopback, and a client that hits every worker.

The tests using this run only when ``DATABASE_URL`` (PostgreSQL) and ``REDIS_URL``
are set, as ``make test`` does in its second pass and ``.ci/run`` always does; with
them set, a service that does not answer fails the tests (never a skip).

Each session gets its own database (``corsadmin_e2e_<random>``, dropped at the end)
and its own cache key prefix in the Redis database of ``REDIS_URL``. The servers run
with ``CORSADMIN_DEBUG_STATS=1``: ``/demo/echo/`` then answers with the worker's pid,
its snapshot generation, rebuild count and refresh-layer query counts
(``project/views.py``).

Its fixtures (``deployment``, ``start_server``, ``report_line``) are made available to
every test module by ``tests/conftest.py``.
"""

from __future__ import annotations

import http.client
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest

BASE_DIR = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
INTERVAL = 1.0  # CORSADMIN_REFRESH_INTERVAL of the servers under test
ECHO = "/demo/echo/"


# --- services -----------------------------------------------------------------------


def service_urls() -> tuple[str, str]:
    """DATABASE_URL and REDIS_URL: fail without them, and when they do not answer."""
    database_url = os.environ.get("DATABASE_URL", "")
    redis_url = os.environ.get("REDIS_URL", "")
    if not database_url.startswith("postgres") or not redis_url.startswith("redis"):
        pytest.fail(
            "needs DATABASE_URL (PostgreSQL) and REDIS_URL: `make test` runs these tests with them "
            "(as .ci/run sets them), and leaves them out of its pass on the embedded defaults"
        )
    import psycopg
    import redis

    try:
        psycopg.connect(database_url, connect_timeout=5).close()
    except psycopg.Error as exc:
        pytest.fail(f"DATABASE_URL is set but PostgreSQL does not answer: {exc}")
    try:
        redis.Redis.from_url(redis_url, socket_connect_timeout=5).ping()
    except redis.RedisError as exc:
        pytest.fail(f"REDIS_URL is set but Redis does not answer: {exc}")
    return database_url, redis_url


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


def via(url: str, port: int) -> str:
    """The same service URL, through a proxy on 127.0.0.1:port."""
    parts = urlsplit(url)
    userinfo = parts.netloc.rpartition("@")[0]
    netloc = f"{userinfo}@127.0.0.1:{port}" if userinfo else f"127.0.0.1:{port}"
    return urlunsplit(parts._replace(netloc=netloc))


def host_port(url: str, default: int) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or default


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Site:
    """One deployment: a database, a cache prefix, a var dir, an admin and an API token."""

    database_url: str
    redis_url: str
    cache_prefix: str
    var_dir: Path
    password: str = field(default_factory=lambda: secrets.token_urlsafe(12))
    token: str = ""

    def env(
        self, database_url: str | None = None, redis_url: str | None = None, **extra: str
    ) -> dict[str, str]:
        env = dict(os.environ)
        env.pop("DJANGO_SETTINGS_MODULE", None)  # pytest-django's: the servers run project.settings
        env.update(
            DJANGO_SETTINGS_MODULE="project.settings",
            DATABASE_URL=database_url or self.database_url,
            REDIS_URL=redis_url or self.redis_url,
            CACHE_KEY_PREFIX=self.cache_prefix,
            CORSADMIN_VAR_DIR=str(self.var_dir),
            CORSADMIN_REFRESH_INTERVAL=str(INTERVAL),
            CORSADMIN_DEBUG_STATS="1",
            DJANGO_DEBUG="",
            DJANGO_SUPERUSER_PASSWORD=self.password,
            PYTHONUNBUFFERED="1",
        )
        env.update(extra)
        return env

    def manage(self, *args: str) -> str:
        done = subprocess.run(
            [sys.executable, "manage.py", *args],
            check=False,
            cwd=BASE_DIR,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, f"manage.py {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
        return done.stdout

    def cache_value(self) -> int | None:
        """The generation stamp as Redis holds it (Django stores an int as its digits)."""
        import redis

        value = redis.Redis.from_url(self.redis_url).get(f"{self.cache_prefix}:1:corsadmin:v1:generation")
        return None if value is None else int(value)

    def database_generation(self) -> int:
        import psycopg

        with psycopg.connect(self.database_url) as conn:
            row = conn.execute("SELECT value FROM corsadmin_generation WHERE id = 1").fetchone()
        return row[0] if row else 0


@pytest.fixture(scope="session")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterable[Site]:
    import psycopg
    import redis

    database_url, redis_url = service_urls()
    suffix = secrets.token_hex(4)
    name = f"corsadmin_e2e_{suffix}"
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    var_dir = tmp_path_factory.mktemp("e2e-var")
    site = Site(with_database(database_url, name), redis_url, f"corsadmin-e2e-{suffix}", var_dir)
    try:
        _static_files(site)
        site.manage("migrate", "--noinput", "--verbosity", "0")
        site.manage("ensure_admin")
        out = site.manage("drf_create_token", "admin")
        site.token = out.split("Generated token ", 1)[1].split()[0]
        yield site
    finally:
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        client = redis.Redis.from_url(redis_url)
        for key in client.scan_iter(match=f"{site.cache_prefix}:*"):
            client.delete(key)


def _static_files(site: Site) -> None:
    """The admin's pages need collected static files: reuse the ones `make setup` collected."""
    collected = BASE_DIR / "var" / "static"
    if (collected / "staticfiles.json").exists():
        (site.var_dir / "static").symlink_to(collected, target_is_directory=True)
    else:
        site.manage("collectstatic", "--noinput", "--verbosity", "0")


# --- servers ------------------------------------------------------------------------


class Server:
    """A gunicorn or uvicorn master on 127.0.0.1, stopped by its pid."""

    def __init__(
        self,
        name: str,
        kind: str,
        workers: int,
        env: dict[str, str],
        log_dir: Path,
        extra: tuple[str, ...] = (),
    ) -> None:
        self.name, self.kind, self.workers, self.env = name, kind, workers, env
        self.extra = extra  # more command-line arguments (e.g. gunicorn's --preload)
        self.port = free_port()
        self.log_path = log_dir / f"{name}.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.pids: set[int] = set()

    def argv(self) -> list[str]:
        bind = f"127.0.0.1:{self.port}"
        if self.kind == "gunicorn":
            return [
                str(BIN / "gunicorn"),
                "project.wsgi",
                "--workers",
                str(self.workers),
                "--bind",
                bind,
                "--graceful-timeout",
                "3",
                "--timeout",
                "60",
                *self.extra,
            ]
        return [
            str(BIN / "uvicorn"),
            "project.asgi:application",
            "--workers",
            str(self.workers),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--no-access-log",
            "--timeout-graceful-shutdown",
            "3",
            *self.extra,
        ]

    def start(self, timeout: float = 60) -> Server:
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            self.argv(),
            cwd=BASE_DIR,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"{self.name} exited with {self.process.returncode}:\n{self.log()}")
            try:
                if request(self.port, "GET", ECHO, timeout=2).status == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"{self.name} did not answer within {timeout} s:\n{self.log()}")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)  # its own session: the master and its workers
            self.process.wait(5)

    def children(self) -> set[int]:
        assert self.process is not None
        found = set()
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == self.process.pid:
                found.add(int(stat.parent.name))
        return found

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def discover_workers(self, timeout: float = 30) -> set[int]:
        """Hit the server until every worker has answered; returns their pids."""
        deadline = time.monotonic() + timeout
        seen: set[int] = set()
        while len(seen) < self.workers and time.monotonic() < deadline:
            seen.update(p.pid for p in hammer([self], ["http://discover.invalid"], duration=0.3) if p.pid)
        assert len(seen) == self.workers, f"{self.name}: {len(seen)} of {self.workers} workers answered"
        children = self.children()
        assert seen <= children, (
            f"{self.name}: answering pids {seen} are not the master's children {children}"
        )
        self.pids = seen
        return seen


@pytest.fixture(scope="module")
def start_server(tmp_path_factory: pytest.TempPathFactory) -> Iterable[Callable[..., Server]]:
    """Start servers for a test module; all are stopped when it ends."""
    started: list[Server] = []
    log_dir = tmp_path_factory.mktemp("e2e-logs")

    def start(name: str, kind: str, workers: int, env: dict[str, str], *extra: str) -> Server:
        server = Server(name, kind, workers, env, log_dir, extra)
        started.append(server)
        return server.start()

    yield start
    for server in started:
        server.stop()
    for server in started:
        assert "Traceback" not in server.log(), f"{server.name} logged a traceback:\n{server.log()}"


# --- the client ---------------------------------------------------------------------


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes
    sent: float
    received: float

    def json(self) -> Any:
        return json.loads(self.body)


def request(
    port: int,
    method: str,
    path: str,
    headers: dict[str, str] | None = None,
    body: Any = None,
    timeout: float = 10,
) -> Reply:
    """One request on a fresh connection (so the server's workers share them out)."""
    headers = {"Connection": "close", **(headers or {})}
    if body is not None and not isinstance(body, (bytes, str)):
        body = json.dumps(body)
        headers.setdefault("Content-Type", "application/json")
    sent = time.monotonic()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        data = response.read()
        return Reply(
            response.status, {k.lower(): v for k, v in response.getheaders()}, data, sent, time.monotonic()
        )
    finally:
        conn.close()


def api(site: Site, server: Server, method: str, path: str, body: Any = None) -> Reply:
    return request(server.port, method, f"/api/cors/{path}", {"Authorization": f"Token {site.token}"}, body)


def add_origin(site: Site, server: Server, origin: str) -> int:
    reply = api(site, server, "POST", "origins/", {"origin": origin})
    assert reply.status == 201, (reply.status, reply.body)
    return int(reply.json()["id"])


def remove_origin(site: Site, server: Server, entry_id: int) -> None:
    reply = api(site, server, "DELETE", f"origins/{entry_id}/")
    assert reply.status == 204, (reply.status, reply.body)


@dataclass
class Probe:
    server: str
    origin: str
    status: int
    allowed: bool
    pid: int
    stats: dict[str, Any]
    sent: float
    received: float

    @property
    def worker(self) -> tuple[str, int]:
        return self.server, self.pid


def probe(server: Server, origin: str) -> Probe:
    sent = time.monotonic()
    try:
        reply = request(server.port, "GET", ECHO, {"Origin": origin}, timeout=10)
    except OSError:
        return Probe(server.name, origin, 0, False, 0, {}, sent, time.monotonic())
    data = reply.json() if reply.status == 200 else {}
    return Probe(
        server.name,
        origin,
        reply.status,
        reply.headers.get("access-control-allow-origin") == origin,
        data.get("pid", 0),
        data.get("stats", {}),
        reply.sent,
        reply.received,
    )


def hammer(
    servers: list[Server],
    origins: list[str],
    duration: float,
    until: Callable[[list[Probe]], bool] | None = None,
    concurrency: int = 8,
    pause: float = 0.01,
) -> list[Probe]:
    """Probe the servers with the origins from `concurrency` threads for at most `duration`
    seconds, or until `until(probes)` holds (checked every 50 ms). Each thread waits `pause`
    seconds between its probes: a probe every ~1 ms in all, fine enough for bounds of a second,
    without saturating the machine's cores (the other lanes of `make test` share them)."""
    probes: list[Probe] = []
    lock = threading.Lock()
    stop = threading.Event()
    deadline = time.monotonic() + duration

    def loop(k: int) -> None:
        n = k
        while not stop.is_set() and time.monotonic() < deadline:
            result = probe(servers[n % len(servers)], origins[(n // len(servers)) % len(origins)])
            with lock:
                probes.append(result)
            n += concurrency
            stop.wait(pause)

    with ThreadPoolExecutor(concurrency) as pool:
        for k in range(concurrency):
            pool.submit(loop, k)
        while time.monotonic() < deadline and not stop.is_set():
            time.sleep(0.05)
            if until is not None:
                with lock:
                    snapshot = list(probes)
                if until(snapshot):
                    stop.set()
        stop.set()
    return sorted(probes, key=lambda p: p.received)


def latest_stats(probes: list[Probe]) -> dict[tuple[str, int], dict[str, Any]]:
    stats = {}
    for p in sorted(probes, key=lambda p: p.received):
        if p.stats:
            stats[p.worker] = p.stats
    return stats


def errors(probes: list[Probe]) -> list[Probe]:
    return [p for p in probes if p.status != 200]


@dataclass
class Convergence:
    seconds: dict[tuple[str, int], float]  # per worker: from the change to its first answer in agreement
    probes: list[Probe]

    @property
    def worst(self) -> float:
        return max(self.seconds.values())


def converge(
    servers: list[Server], origin: str, allowed: bool, since: float, limit: float = INTERVAL + 1
) -> Convergence:
    """Hit every worker of `servers` with `origin` until each answers `allowed`.

    Asserts: every worker agrees within `limit` seconds of `since`, none answers
    otherwise after it agreed, and no answer was an error.
    """
    workers = {(s.name, pid) for s in servers for pid in s.pids}
    assert workers, "discover_workers() first"

    def agreed(probes: list[Probe]) -> dict[tuple[str, int], Probe]:
        first: dict[tuple[str, int], Probe] = {}
        for p in probes:
            if p.allowed == allowed and p.status == 200:
                first.setdefault(p.worker, p)
        return first

    def settled(probes: list[Probe]) -> bool:
        first = agreed(probes)
        if set(first) < workers:
            return False
        # keep hitting a little longer, to see that nobody goes back
        return time.monotonic() - max(p.received for p in first.values()) > 0.3

    probes = hammer(servers, [origin], duration=max(0.5, since + limit + 2 - time.monotonic()), until=settled)
    first = agreed(probes)
    missing = workers - set(first)
    assert not missing, f"workers {sorted(missing)} never answered allowed={allowed} for {origin}"
    assert not errors(probes), errors(probes)[:5]
    back = [
        p for p in probes if p.worker in first and p.sent > first[p.worker].received and p.allowed != allowed
    ]
    assert not back, f"workers went back to the old answer after agreeing: {back[:5]}"
    seconds = {w: first[w].received - since for w in workers}
    assert max(seconds.values()) <= limit, f"slowest worker took {max(seconds.values()):.3f} s > {limit} s"
    return Convergence(seconds, probes)


@pytest.fixture
def report_line(request: pytest.FixtureRequest) -> Callable[[str], None]:
    """Write a line to the terminal even when output is captured (measurements for CI logs)."""
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")

    def write(line: str) -> None:
        if capture is None or reporter is None:
            print(line)
            return
        with capture.global_and_fixture_disabled():
            reporter.write_line(f"\n    [{request.node.name}] {line}")

    return write
