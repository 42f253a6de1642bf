"""The refresh targets of issue 11, measured on real servers (not part of the test run).

    .venv/bin/python -m bench.refresh [--sizes 100000,1000000] [--quick] [--json bench/out/refresh.json]

For each N: a PostgreSQL database of its own (``corsadmin_bench_<random>``, dropped at the
end) and a SQLite file in a temporary directory, each migrated and filled with N canonical
origins ``https://h{i}.example.com`` in the ``default`` policy (one INSERT ... SELECT), an
admin and an API token; Redis db 9 with a key prefix of its own (its keys deleted at the end).
Then gunicorn -w 3 (project.wsgi, ``CORSADMIN_REFRESH_INTERVAL=1``), one server at a time:

1. PostgreSQL + Redis: cold start (gunicorn started -> every worker allows a listed origin),
   VmRSS per worker; then ~10 changes through the REST API (add, remove, ...) while 8 client
   threads keep calling: per change and worker, time from the API answer *received* to that
   worker's first answer in agreement; max latency in the 5 s before / after each change.
2. PostgreSQL alone (``REDIS_URL=""``: local-memory cache, NOTIFY is the push): the same.
3. SQLite + local memory (no DATABASE_URL/REDIS_URL; polling): the same.
4. PostgreSQL + Redis through tests/proxy.py proxies: Redis hang, Redis refuse, PostgreSQL
   hang, PostgreSQL refuse, each for 10 s while the clients call, against a baseline measured
   just before: throughput, p99, 5xx, decisions; after recovery, a change's time to every worker.

Every loop is bounded in time; everything is on loopback. See bench/README.md.
"""

from __future__ import annotations

import argparse
import bisect
import json
import os
import secrets
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

BASE = Path(__file__).resolve().parent.parent
if str(BASE) not in sys.path:
    sys.path.insert(0, str(BASE))

from tests.e2e import ECHO, Server, request, via  # noqa: E402
from tests.proxy import Proxy  # noqa: E402

SRC = BASE  # where manage.py and the servers run from (--commit: an exported tree)
PG_ADMIN = "postgresql://root@127.0.0.1:5432/postgres"
REDIS_URL = "redis://127.0.0.1:6379/9"
INTERVAL = 1.0
WORKERS = 3
CLIENTS = 8
UNKNOWN = "https://unknown.bench.example.net"
PARTS = ("pg+redis", "pg", "sqlite", "faults")
HARD_LIMIT = 900.0  # no client loop runs longer than this


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def listed(i: int) -> str:
    return f"https://h{i}.example.com"


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f}, {five:.2f}, {fifteen:.2f}"


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


# --- deployments -----------------------------------------------------------------------


class Deployment:
    """One database (PostgreSQL or SQLite) filled with N origins, an admin and a token."""

    def __init__(self, n: int, kind: str, root: Path, prefix: str) -> None:
        self.n, self.kind, self.prefix = n, kind, prefix
        self.var_dir = root / f"var-{kind}-{n}"
        self.var_dir.mkdir(parents=True)
        collected = BASE / "var" / "static"
        if (collected / "staticfiles.json").exists():
            (self.var_dir / "static").symlink_to(collected, target_is_directory=True)
        self.secret = secrets.token_urlsafe(40)
        self.password = secrets.token_urlsafe(12)
        self.dbname = f"corsadmin_bench_{secrets.token_hex(4)}" if kind == "pg" else ""
        self.database_url = f"postgresql://root@127.0.0.1:5432/{self.dbname}" if kind == "pg" else None
        self.token = ""
        self.created = False

    def env(self, database_url: str | None = "", redis_url: str | None = "") -> dict[str, str]:
        """database_url "" = this deployment's; None = unset (SQLite). redis_url "" = none (local memory)."""
        env = dict(os.environ)
        for name in ("DJANGO_SETTINGS_MODULE", "DATABASE_URL", "REDIS_URL"):
            env.pop(name, None)
        env.update(
            DJANGO_SETTINGS_MODULE="project.settings",
            CACHE_KEY_PREFIX=self.prefix,
            CORSADMIN_VAR_DIR=str(self.var_dir),
            CORSADMIN_REFRESH_INTERVAL=str(INTERVAL),
            CORSADMIN_DEBUG_STATS="1",
            DJANGO_DEBUG="",
            DJANGO_SECRET_KEY=self.secret,
            DJANGO_SUPERUSER_PASSWORD=self.password,
            PYTHONUNBUFFERED="1",
            REDIS_URL=redis_url or "",
        )
        if self.kind == "pg":
            env["DATABASE_URL"] = database_url or self.database_url or ""
        return env

    def manage(self, *args: str) -> str:
        done = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=SRC,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        if done.returncode:
            raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
        return done.stdout

    def create(self) -> float:
        started = time.monotonic()
        if self.kind == "pg":
            import psycopg

            with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
                conn.execute(f'CREATE DATABASE "{self.dbname}"')
        self.created = True
        self.manage("migrate", "--noinput", "--verbosity", "0")
        self.manage("ensure_admin")
        self.token = self.manage("drf_create_token", "admin").split("Generated token ", 1)[1].split()[0]
        self.fill()
        return time.monotonic() - started

    def fill(self) -> None:
        columns = (
            "origin, policy_id, version, enabled, csrf_trusted, created_at, updated_at, note, effect, "
            "cors, websocket"
        )
        if self.kind == "pg":
            import psycopg

            assert self.database_url
            with psycopg.connect(self.database_url, autocommit=True) as conn:
                conn.execute(
                    f"INSERT INTO corsadmin_allowedorigin ({columns}) "
                    "SELECT 'https://h' || i || '.example.com', "
                    "(SELECT id FROM corsadmin_policy WHERE name = 'default'), "
                    "0, true, false, now(), now(), '', 'allow', true, false "
                    "FROM generate_series(0, %s) AS i",
                    [self.n - 1],
                )
                conn.execute("VACUUM ANALYZE corsadmin_allowedorigin")
                count = conn.execute("SELECT count(*) FROM corsadmin_allowedorigin").fetchone()[0]
        else:
            now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
            conn = sqlite3.connect(self.var_dir / "db.sqlite3")
            try:
                conn.execute(
                    f"INSERT INTO corsadmin_allowedorigin ({columns}) "
                    "WITH RECURSIVE s(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM s WHERE i < ?) "
                    "SELECT 'https://h' || i || '.example.com', "
                    "(SELECT id FROM corsadmin_policy WHERE name = 'default'), "
                    "0, 1, 0, ?, ?, '', 'allow', 1, 0 FROM s",
                    [self.n - 1, now, now],
                )
                conn.commit()
                conn.execute("ANALYZE")
                count = conn.execute("SELECT count(*) FROM corsadmin_allowedorigin").fetchone()[0]
            finally:
                conn.close()
        assert count == self.n, (count, self.n)

    def drop(self) -> None:
        if self.kind == "pg" and self.created:
            import psycopg

            with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{self.dbname}" WITH (FORCE)')


def api(site: Deployment, port: int, method: str, path: str, body: Any = None) -> Any:
    return request(
        port, method, f"/api/cors/{path}", {"Authorization": f"Token {site.token}"}, body, timeout=30
    )


# --- servers and clients ---------------------------------------------------------------


def rss_mb(pid: int) -> tuple[float, float]:
    """VmRSS and VmHWM of a process, MB."""
    values = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(("VmRSS:", "VmHWM:")):
                values[line.split(":")[0]] = int(line.split()[1]) / 1024
    except OSError:
        pass
    return values.get("VmRSS", float("nan")), values.get("VmHWM", float("nan"))


@dataclass
class Probe:
    sent: float
    received: float
    pid: int
    origin: str
    allowed: bool
    status: int

    @property
    def latency(self) -> float:
        return self.received - self.sent


def probe(port: int, origin: str) -> Probe:
    sent = time.monotonic()
    try:
        reply = request(port, "GET", ECHO, {"Origin": origin}, timeout=15)
    except OSError:
        return Probe(sent, time.monotonic(), 0, origin, False, 0)
    pid = 0
    if reply.status == 200:
        try:
            pid = int(json.loads(reply.body)["pid"])
        except (ValueError, KeyError):
            pass
    allowed = reply.headers.get("access-control-allow-origin") == origin
    return Probe(reply.sent, reply.received, pid, origin, allowed, reply.status)


class Load:
    """CLIENTS threads calling the server until stopped (at most HARD_LIMIT seconds).

    Two calls in three ask about ``target`` (the origin being changed) when there is one;
    the others alternate between a listed origin and an unknown one."""

    def __init__(self, port: int, known: str) -> None:
        self.port, self.known = port, known
        self.target: str | None = None
        self.probes: list[Probe] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._loop, args=(k,), daemon=True) for k in range(CLIENTS)]

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(20)

    def _loop(self, k: int) -> None:
        deadline = time.monotonic() + HARD_LIMIT
        i = k
        while not self._stop.is_set() and time.monotonic() < deadline:
            target = self.target
            if target is not None and i % 3 != 2:
                origin = target
            else:
                origin = self.known if (i // 3) % 2 == 0 else UNKNOWN
            self.probes.append(probe(self.port, origin))
            i += 1

    def window(self, start: float, end: float) -> list[Probe]:
        """The calls sent in [start, end). Calls are appended as they are answered (received
        is almost sorted; received >= sent): search from a second before ``start``."""
        probes = self.probes[: len(self.probes)]
        first = bisect.bisect_left(probes, start - 1.0, key=lambda p: p.received)
        return [p for p in probes[first:] if start <= p.sent < end]


def start_server(
    name: str, env: dict[str, str], log_dir: Path, known: str, timeout: float, extra: tuple[str, ...] = ()
) -> tuple[Server, dict]:
    """Start gunicorn -w 3 (and ``extra`` arguments) and hit it until every worker allows
    ``known`` (the cold start)."""
    server = Server(name, "gunicorn", WORKERS, env, log_dir, extra)
    logfile = server.log_path.open("ab")
    started = time.monotonic()
    server.process = subprocess.Popen(
        server.argv(), cwd=SRC, env=env, stdout=logfile, stderr=subprocess.STDOUT, start_new_session=True
    )
    first_allowed: dict[int, float] = {}
    first_answer: dict[int, float] = {}
    stop = threading.Event()
    lock = threading.Lock()

    def loop() -> None:
        deadline = started + timeout
        while not stop.is_set() and time.monotonic() < deadline:
            p = probe(server.port, known)
            if p.status == 0:
                time.sleep(0.05)
                continue
            with lock:
                if p.pid:
                    first_answer.setdefault(p.pid, p.received - started)
                if p.allowed and p.pid:
                    first_allowed.setdefault(p.pid, p.received - started)

    threads = [threading.Thread(target=loop, daemon=True) for _ in range(CLIENTS)]
    for thread in threads:
        thread.start()
    deadline = started + timeout
    workers: set[int] = set()
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            break
        workers = server.children()
        with lock:
            if len(workers) == WORKERS and workers <= set(first_allowed):
                break
        time.sleep(0.05)
    stop.set()
    for thread in threads:
        thread.join(20)
    server.pids = workers
    missing = workers - set(first_allowed)
    result = {
        "seconds": max((first_allowed[w] for w in workers if w in first_allowed), default=float("nan")),
        "complete": bool(workers) and not missing and len(workers) == WORKERS,
        "per_worker": {str(w): round(first_allowed.get(w, float("nan")), 3) for w in sorted(workers)},
        "first_answer": {str(w): round(first_answer.get(w, float("nan")), 3) for w in sorted(workers)},
        "rss_mb": {str(w): round(rss_mb(w)[0], 1) for w in sorted(workers)},
        "hwm_mb": {str(w): round(rss_mb(w)[1], 1) for w in sorted(workers)},
        "load": load_average(),
    }
    if not result["complete"]:
        log(f"{name}: NOT every worker allowed {known} within {timeout} s: {result}")
    return server, result


def stop_server(server: Server) -> dict:
    text = server.log()
    server.stop()
    return {
        "tracebacks": text.count("Traceback"),
        "worker_timeouts": text.count("WORKER TIMEOUT"),
        "corsadmin_lines": [line for line in text.splitlines() if "corsadmin:" in line][:20],
        "log": str(server.log_path),
    }


# --- measurements ----------------------------------------------------------------------


def agreement(
    load: Load, workers: set[int], origin: str, allowed: bool, sent: float, received: float
) -> dict:
    """Per worker: from the API answer received to its first answer in agreement."""
    first: dict[int, Probe] = {}
    for p in sorted(load.window(sent, time.monotonic() + 1), key=lambda p: p.received):
        if p.origin == origin and p.status == 200 and p.allowed == allowed and p.pid in workers:
            first.setdefault(p.pid, p)
    back = [
        p
        for p in load.window(sent, time.monotonic() + 1)
        if p.origin == origin
        and p.pid in first
        and p.sent > first[p.pid].received
        and p.status == 200
        and p.allowed != allowed
    ]
    return {
        "seconds": {w: max(0.0, first[w].received - received) for w in first},
        "missing": sorted(workers - set(first)),
        "went_back": len(back),
    }


def wait_agreement(
    load: Load, workers: set[int], origin: str, allowed: bool, sent: float, received: float, limit: float
) -> dict:
    deadline = received + limit
    while time.monotonic() < deadline:
        found = agreement(load, workers, origin, allowed, sent, received)
        if not found["missing"]:
            time.sleep(0.3)  # a little longer, to see that nobody goes back
            return agreement(load, workers, origin, allowed, sent, received)
        time.sleep(0.02)
    return agreement(load, workers, origin, allowed, sent, received)


def change(
    site: Deployment, port: int, origin: str, entry_id: int | None
) -> tuple[float, float, int | None, int]:
    """Add (entry_id None) or remove an origin through the API; retried for up to 10 s."""
    deadline = time.monotonic() + 10
    while True:
        if entry_id is None:
            reply = api(site, port, "POST", "origins/", {"origin": origin})
            ok = reply.status == 201
            new_id = int(reply.json()["id"]) if ok else None
        else:
            reply = api(site, port, "DELETE", f"origins/{entry_id}/")
            ok, new_id = reply.status == 204, None
        if ok or time.monotonic() > deadline:
            return reply.sent, reply.received, new_id, reply.status
        time.sleep(0.5)


def propagation(
    site: Deployment, server: Server, changes: int, spacing: float, window: float, tag: str
) -> dict:
    """~`changes` changes through the API while CLIENTS threads call; every `spacing` s."""
    known = listed(site.n // 2)
    rows = []
    with Load(server.port, known) as load:
        time.sleep(min(spacing, window))  # the first "before" window
        entry_id: int | None = None
        origin = ""
        for k in range(changes):
            adding = k % 2 == 0
            if adding:
                origin = f"https://chg{k // 2}-{tag}.bench.example.com"
                load.target = origin
                time.sleep(min(2.0, spacing / 2))  # the target's old answer is seen first
            sent, received, new_id, status = change(site, server.port, origin, None if adding else entry_id)
            if adding:
                entry_id = new_id
            if status not in (201, 204):
                rows.append({"change": k, "kind": "add" if adding else "remove", "api_status": status})
                continue
            found = wait_agreement(load, server.pids, origin, adding, sent, received, limit=10)
            rest = sent + spacing - time.monotonic()
            if rest > 0:
                time.sleep(rest)
            before = load.window(sent - window, sent)
            after = load.window(sent, sent + window)
            rows.append(
                {
                    "change": k,
                    "kind": "add" if adding else "remove",
                    "api_s": received - sent,
                    "per_worker_s": {str(w): round(s, 4) for w, s in found["seconds"].items()},
                    "missing": found["missing"],
                    "went_back": found["went_back"],
                    "before_max_ms": max((p.latency for p in before), default=float("nan")) * 1000,
                    "after_max_ms": max((p.latency for p in after), default=float("nan")) * 1000,
                    "before_p99_ms": pct([p.latency for p in before], 0.99) * 1000,
                    "after_p99_ms": pct([p.latency for p in after], 0.99) * 1000,
                    # where the worst call after the change sits: in the first second (the
                    # refresh) or later (the machine's noise), and which worker answered it
                    "after_first_s_max_ms": max(
                        (p.latency for p in after if p.sent < sent + 1.0), default=float("nan")
                    )
                    * 1000,
                    "after_rest_max_ms": max(
                        (p.latency for p in after if p.sent >= sent + 1.0), default=float("nan")
                    )
                    * 1000,
                    "after_worst_at_s": max(after, key=lambda p: p.latency).sent - sent if after else None,
                    "after_worst_pid": max(after, key=lambda p: p.latency).pid if after else None,
                    "before_n": len(before),
                    "after_n": len(after),
                }
            )
            log(
                f"  {tag} change {k} ({rows[-1]['kind']}): api {rows[-1]['api_s'] * 1000:.0f} ms, "
                f"workers {sorted(round(s * 1000) for s in found['seconds'].values())} ms, "
                f"missing {found['missing']}, max latency {rows[-1]['before_max_ms']:.0f} -> "
                f"{rows[-1]['after_max_ms']:.0f} ms"
            )
        probes = list(load.probes)
    delays = [s for r in rows for s in r.get("per_worker_s", {}).values()]
    missing = sum(len(r.get("missing", [])) for r in rows) + sum(1 for r in rows if "api_status" in r)
    wrong = [
        p
        for p in probes
        if p.status == 200 and p.origin in (known, UNKNOWN) and p.allowed != (p.origin == known)
    ]
    return {
        "changes": rows,
        "p50_s": statistics.median(delays) if delays else float("nan"),
        "max_s": max(delays) if delays else float("nan"),
        "samples": len(delays),
        "missing": missing,
        "went_back": sum(r.get("went_back", 0) for r in rows),
        "latency_worst_excess_ms": max(
            (r["after_max_ms"] - r["before_max_ms"] for r in rows if "after_max_ms" in r),
            default=float("nan"),
        ),
        "latency_changes_met": sum(
            1 for r in rows if r.get("after_max_ms", 1e9) <= r.get("before_max_ms", 0) + 50
        ),
        "requests": len(probes),
        "errors_5xx": sum(1 for p in probes if p.status >= 500),
        "errors_conn": sum(1 for p in probes if p.status == 0),
        "wrong_decisions": len(wrong),
        "window_s": window,
        "spacing_s": spacing,
        "load": load_average(),
        "rss_mb_after": {str(w): round(rss_mb(w)[0], 1) for w in sorted(server.pids)},
    }


def window_stats(probes: list[Probe], seconds: float, known: str) -> dict:
    latencies = [p.latency for p in probes]
    return {
        "requests": len(probes),
        "rps": len(probes) / seconds,
        "p99_ms": pct(latencies, 0.99) * 1000,
        "max_ms": max(latencies, default=float("nan")) * 1000,
        "errors_5xx": sum(1 for p in probes if p.status >= 500),
        "errors_conn": sum(1 for p in probes if p.status == 0),
        "wrong_decisions": sum(
            1
            for p in probes
            if p.status == 200 and p.origin in (known, UNKNOWN) and p.allowed != (p.origin == known)
        ),
    }


def faults(site: Deployment, log_dir: Path, duration: float, settle: float) -> dict:
    """gunicorn -w 3 on PostgreSQL + Redis through proxies; each fault for `duration` s."""
    known = listed(site.n // 2)
    pg = Proxy("127.0.0.1", 5432)
    redis = Proxy("127.0.0.1", 6379)
    assert site.database_url
    env = site.env(via(site.database_url, pg.port), via(REDIS_URL, redis.port))
    server, cold = start_server(f"faults-{site.n}", env, log_dir, known, timeout=180)
    results: dict[str, Any] = {"cold_start": cold, "faults": []}
    try:
        with Load(server.port, known) as load:
            time.sleep(settle)
            for k, (service, fault) in enumerate(
                (("redis", "hang"), ("redis", "down"), ("pg", "hang"), ("pg", "down"))
            ):
                proxy = redis if service == "redis" else pg
                t0 = time.monotonic()
                time.sleep(duration)
                t1 = time.monotonic()
                getattr(proxy, fault)()
                time.sleep(duration)
                t2 = time.monotonic()
                proxy.up()
                base = window_stats(load.window(t0, t1), t1 - t0, known)
                during = window_stats(load.window(t1, t2), t2 - t1, known)
                origin = f"https://after-{service}-{fault}-{k}.bench.example.com"
                load.target = origin
                sent, received, _, status = change(site, server.port, origin, None)
                found = (
                    wait_agreement(load, server.pids, origin, True, sent, received, limit=15)
                    if status == 201
                    else {"seconds": {}, "missing": sorted(server.pids), "went_back": 0}
                )
                load.target = None
                row = {
                    "service": service,
                    "fault": fault,
                    "baseline": base,
                    "during": during,
                    "throughput_x": during["rps"] / base["rps"] if base["rps"] else float("nan"),
                    "p99_x": during["p99_ms"] / base["p99_ms"] if base["p99_ms"] else float("nan"),
                    "recovery_api_status": status,
                    "recovery_api_s": received - sent,
                    "recovery_per_worker_s": {str(w): round(s, 4) for w, s in found["seconds"].items()},
                    "recovery_max_s": max(found["seconds"].values(), default=float("nan")),
                    "recovery_missing": found["missing"],
                    "load": load_average(),
                }
                results["faults"].append(row)
                log(
                    f"  {service} {fault}: {during['rps']:.0f} vs {base['rps']:.0f} req/s "
                    f"({row['throughput_x']:.2f}x), p99 {during['p99_ms']:.0f} vs {base['p99_ms']:.0f} ms "
                    f"({row['p99_x']:.2f}x), 5xx {during['errors_5xx']}, "
                    f"conn errors {during['errors_conn']}, "
                    f"wrong {during['wrong_decisions']}; after recovery a change reached every worker in "
                    f"{row['recovery_max_s']:.3f} s (missing {found['missing']})"
                )
                time.sleep(settle)
    finally:
        results["server"] = stop_server(server)
        pg.close()
        redis.close()
    return results


# --- the run ---------------------------------------------------------------------------


def run_size(n: int, root: Path, prefix: str, quick: bool, parts: set[str]) -> dict:
    changes, spacing_main, spacing, fault_s = (4, 8.0, 5.0, 5.0) if quick else (10, 10.0, 6.0, 10.0)
    out: dict[str, Any] = {"n": n, "started": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())}
    log_dir = BASE / "bench" / "out" / "refresh-logs" / f"{prefix}-{n}"
    k = 1
    while log_dir.exists():  # the same N twice in --sizes
        k += 1
        log_dir = log_dir.with_name(f"{prefix}-{n}-{k}")
    log_dir.mkdir(parents=True)
    root = root / log_dir.name
    root.mkdir()
    known = listed(n // 2)
    pg = Deployment(n, "pg", root, prefix)
    lite = Deployment(n, "sqlite", root, prefix + "-lite")
    try:
        log(f"N={n}: creating and filling the PostgreSQL database {pg.dbname}")
        out["fill_pg_s"] = pg.create()
        if "sqlite" in parts:
            log(f"N={n}: creating and filling the SQLite database in {lite.var_dir}")
            out["fill_sqlite_s"] = lite.create()

        configs = (
            ("pg+redis", pg, pg.env(redis_url=REDIS_URL), spacing_main, 5.0),
            ("pg", pg, pg.env(redis_url=""), spacing, spacing / 2),
            ("sqlite", lite, lite.env(redis_url=""), spacing, spacing / 2),
        )
        for name, site, env, every, window in configs:
            if name not in parts:
                continue
            log(f"N={n} {name}: cold start ({load_average()})")
            server, cold = start_server(f"{name}-{n}", env, log_dir, known, timeout=180)
            log(
                f"  cold start {cold['seconds']:.2f} s, per worker {cold['per_worker']}, "
                f"RSS {cold['rss_mb']} MB"
            )
            try:
                result = {"cold_start": cold}
                if cold["complete"]:
                    time.sleep(1)
                    result["propagation"] = propagation(
                        site, server, changes, every, window, f"{name}-{n}".replace("+", "")
                    )
                    prop = result["propagation"]
                    log(
                        f"  {name}: p50 {prop['p50_s'] * 1000:.0f} ms, "
                        f"max {prop['max_s'] * 1000:.0f} ms over "
                        f"{prop['samples']} (worker, change); missing {prop['missing']}; "
                        f"latency worst excess {prop['latency_worst_excess_ms']:.0f} ms; "
                        f"5xx {prop['errors_5xx']}; RSS {prop['rss_mb_after']}"
                    )
            finally:
                result["server"] = stop_server(server)
            out[name] = result
        if "faults" in parts:
            log(f"N={n} faults ({load_average()})")
            out["faults"] = faults(pg, log_dir, fault_s, settle=3.0)
    finally:
        pg.drop()
        lite.drop()
    out["finished"] = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    return out


def verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"


def summary(results: list[dict]) -> str:
    lines = ["| N | target | measured | |", "|---|---|---|---|"]
    for r in results:
        n = f"{r['n']:,}"
        main = r.get("pg+redis", {})
        cold = main.get("cold_start", {})
        if cold:
            lines.append(
                f"| {n} | cold start ≤ 10 s (PG+Redis) | {cold['seconds']:.2f} s "
                f"(per worker {sorted(cold['per_worker'].values())}; "
                f"first answer of any kind {sorted(cold['first_answer'].values())}) "
                f"| {verdict(cold['seconds'] <= 10)} |"
            )
            rss = max(cold["rss_mb"].values(), default=float("nan"))
            hwm = max(cold["hwm_mb"].values(), default=float("nan"))
            lines.append(
                f"| {n} | RSS per worker ≤ 300 MB | {rss:.0f} MB after load (HWM {hwm:.0f}) "
                f"| {verdict(rss <= 300)} |"
            )
        for name, p50_target in (("pg+redis", 0.150), ("pg", 0.150), ("sqlite", INTERVAL)):
            if name not in r:
                continue
            prop = r.get(name, {}).get("propagation")
            if not prop:
                lines.append(f"| {n} | propagation {name} | not measured | NOT met |")
                continue
            ok = (
                prop["p50_s"] <= p50_target
                and (name == "sqlite" or prop["max_s"] <= 1.0)
                and not prop["missing"]
            )
            target = f"p50 ≤ {p50_target * 1000:.0f} ms" + ("" if name == "sqlite" else ", max ≤ 1 s")
            lines.append(
                f"| {n} | propagation {name}: {target} | p50 {prop['p50_s'] * 1000:.0f} ms, "
                f"max {prop['max_s'] * 1000:.0f} ms "
                f"({prop['samples']} worker×change; missing {prop['missing']}; "
                f"went back {prop['went_back']}) | {verdict(ok)} |"
            )
            if name == "pg+redis":
                lines.append(
                    f"| {n} | latency: max after ≤ max before + 50 ms (5 s windows) "
                    f"| worst excess {prop['latency_worst_excess_ms']:+.0f} ms; "
                    f"{prop['latency_changes_met']}/{len(prop['changes'])} changes within "
                    f"| {verdict(prop['latency_worst_excess_ms'] <= 50)} |"
                )
        for row in r.get("faults", {}).get("faults", []):
            d = row["during"]
            ok = (
                row["throughput_x"] >= 0.9
                and row["p99_x"] <= 2
                and d["errors_5xx"] == 0
                and d["wrong_decisions"] == 0
                and row["recovery_max_s"] <= 1
                and not row["recovery_missing"]
            )
            lines.append(
                f"| {n} | {row['service']} {row['fault']} 10 s | {row['throughput_x']:.2f}x req/s, "
                f"p99 {row['p99_x']:.2f}x "
                f"({d['p99_ms']:.0f} vs {row['baseline']['p99_ms']:.0f} ms), 5xx {d['errors_5xx']}, "
                f"wrong {d['wrong_decisions']}, "
                f"recovery {row['recovery_max_s']:.3f} s | {verdict(ok)} |"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--quick", action="store_true", help="4 changes, 5 s fault windows")
    parser.add_argument("--json", default="", help="write every figure to this file")
    parser.add_argument(
        "--commit",
        default="",
        help="run the servers from this commit, exported with git archive (default: the working tree)",
    )
    parser.add_argument(
        "--parts", default=",".join(PARTS), help=f"a subset of {','.join(PARTS)} (default: all)"
    )
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s]
    parts = {p for p in args.parts.split(",") if p}
    assert parts <= set(PARTS), f"--parts: unknown {parts - set(PARTS)}"
    signal.signal(signal.SIGTERM, lambda *a: (_ for _ in ()).throw(KeyboardInterrupt()))
    root = Path(tempfile.mkdtemp(prefix="corsadmin-bench-refresh-"))
    prefix = f"corsadmin-bench-{secrets.token_hex(4)}"
    results: list[dict] = []
    global SRC
    if args.commit:
        args.commit = subprocess.run(
            ["git", "rev-parse", "--short", args.commit], cwd=BASE, capture_output=True, text=True, check=True
        ).stdout.strip()
        SRC = root / "src"
        SRC.mkdir()
        archive = subprocess.run(
            ["git", "archive", args.commit], cwd=BASE, capture_output=True, check=True
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(SRC)], input=archive, check=True)
    head = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=BASE, capture_output=True, text=True
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "corsadmin", "project"], cwd=BASE, capture_output=True, text=True
    ).stdout.split()
    tree = f"working tree at {head}, modified: {dirty[1::2]}"
    log(f"code under test: {'commit ' + args.commit if args.commit else tree}")
    uptime = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    log(f"start: {' '.join(sys.argv)}; uptime: {uptime}")
    try:
        for n in sizes:
            results.append(run_size(n, root, prefix, args.quick, parts))
            if args.json:
                Path(args.json).parent.mkdir(parents=True, exist_ok=True)
                Path(args.json).write_text(json.dumps(results, indent=1, default=str))
    finally:
        import redis

        client = redis.Redis.from_url(REDIS_URL)
        for key in client.scan_iter(match=f"{prefix}*"):
            client.delete(key)
        shutil.rmtree(root, ignore_errors=True)
        log(f"end; uptime: {subprocess.run(['uptime'], capture_output=True, text=True).stdout.strip()}")
    print()
    print(summary(results))


if __name__ == "__main__":
    main()
