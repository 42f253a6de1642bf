"""One benchmark site in its own process (BENCH_SITE set; run by bench/run.py).

    python -m bench.worker serve      # JSON lines on stdin/stdout: time requests
    python -m bench.worker populate   # migrate (or reuse a migrated copy) and fill the lists
    python -m bench.worker snapshot   # load_snapshot(): build time and resident memory
    python -m bench.worker change ORIGIN  # add an origin through the ORM (another process)

Requests go straight through Django's WSGIHandler: environ dicts are built before
the clock starts; the clock covers handler(environ, start_response), reading the
body and close() (which sends request_finished, as a server would).
"""

from __future__ import annotations

import gc
import io
import json
import os
import statistics
import sys
import time
from typing import Any

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")

import django

CASES = ("allowed", "refused", "none", "preflight")
PATH = "/api/ping/"


def _proc_status() -> dict[str, int]:
    values = {}
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(("VmRSS:", "VmHWM:")):
                name, value = line.split(":")
                values[name] = int(value.split()[0])  # kB
    return values


def environ(case: str, site: dict[str, Any]) -> dict[str, Any]:
    from bench import origins

    env: dict[str, Any] = {
        "REQUEST_METHOD": "GET",
        "SCRIPT_NAME": "",
        "PATH_INFO": PATH,
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "HTTP_HOST": "127.0.0.1",
        "HTTP_USER_AGENT": "bench",
        "HTTP_ACCEPT": "*/*",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": False,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }
    if case in ("allowed", "preflight"):
        env["HTTP_ORIGIN"] = origins.allowed(site)
    elif case == "refused":
        env["HTTP_ORIGIN"] = origins.REFUSED
    if case == "preflight":
        env["REQUEST_METHOD"] = "OPTIONS"
        env["HTTP_ACCESS_CONTROL_REQUEST_METHOD"] = "PUT"
        env["HTTP_ACCESS_CONTROL_REQUEST_HEADERS"] = "content-type"
    return env


class Site:
    def __init__(self) -> None:
        django.setup()
        from django.conf import settings
        from django.core.handlers.wsgi import WSGIHandler

        self.site = settings.BENCH_SITE
        self.handler = WSGIHandler()
        # The same site without its CORS middleware, in this process: the twin each
        # request is paired with, so the added cost is measured under the same conditions.
        # And a floor for preflights: a stub answering at once, as a CORS middleware does.
        front = settings.MIDDLEWARE
        try:
            settings.MIDDLEWARE = settings.STACK
            self.twin = WSGIHandler()
            settings.MIDDLEWARE = ["bench.benchsite.middleware.PreflightStub"]
            self.floor = WSGIHandler()
        finally:
            settings.MIDDLEWARE = front
        self.templates = {case: environ(case, self.site) for case in CASES}
        self.last: tuple[str, list[tuple[str, str]]] = ("", [])

    def start_response(self, status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        self.last = (status, headers)
        return None

    def envs(self, case: str, n: int) -> list[dict[str, Any]]:
        template = self.templates[case]
        out = []
        for _ in range(n):
            env = dict(template)
            env["wsgi.input"] = io.BytesIO(b"")
            out.append(env)
        return out

    def run(self, envs: list[dict[str, Any]]) -> float:
        handler, start_response = self.handler, self.start_response
        t0 = time.perf_counter()
        for env in envs:
            response = handler(env, start_response)
            for _ in response:
                pass
            response.close()
        return time.perf_counter() - t0

    def paired(self, case: str, n: int) -> dict[str, list[float]]:
        """n requests through the site and n through its bare twin, alternating one by one
        in a rotating order; µs each. Preflights also go through the floor stub; on a
        corsadmin site, refused requests also go through the site with telemetry off
        ("quiet": CORSADMIN["TELEMETRY"] = False around each of those requests)."""
        from django.conf import settings

        names = ["site", "twin"]
        if case == "preflight":
            names.append("floor")
        quiet = None
        if case == "refused" and self.site["kind"] == "corsadmin":
            names.append("quiet")
            loud = settings.CORSADMIN
            quiet = dict(loud, TELEMETRY=False)
        handlers = {"site": self.handler, "twin": self.twin, "floor": self.floor, "quiet": self.handler}
        envs = {name: self.envs(case, n) for name in names}
        start_response, clock = self.start_response, time.perf_counter
        times: dict[str, list[float]] = {name: [] for name in names}
        k = len(names)
        for i in range(n):
            for j in range(k):
                name = names[(i + j) % k]
                handler, env = handlers[name], envs[name][i]
                if name == "quiet":
                    settings.CORSADMIN = quiet
                t0 = clock()
                response = handler(env, start_response)
                for _ in response:
                    pass
                response.close()
                t1 = clock()
                if name == "quiet":
                    settings.CORSADMIN = loud
                times[name].append(round((t1 - t0) * 1e6, 2))
        return times

    def check(self) -> dict[str, Any]:
        out = {}
        for case in CASES:
            self.run(self.envs(case, 1))
            status, headers = self.last
            out[case] = {
                "status": status,
                "headers": {
                    k.lower(): v
                    for k, v in headers
                    if k.lower().startswith("access-control-") or k.lower() == "vary"
                },
            }
        return out

    def calibrate(self, case: str, seconds: float, twin: bool = False) -> float:
        """Seconds per request: the quickest of three runs of about ``seconds``/3 each
        (at least 2 requests each), so a slow moment of the machine does not shrink batches."""
        run = self.run_twin if twin else self.run
        best = float("inf")
        for _ in range(3):
            done, spent = 0, 0.0
            while done < 2 or spent < seconds / 3:
                batch = 1 if done < 2 else max(1, min(1000, int(done * (seconds / 3 - spent) / spent) + 1))
                spent += run(self.envs(case, batch))
                done += batch
            best = min(best, spent / done)
        return best

    def run_twin(self, envs: list[dict[str, Any]]) -> float:
        handler, self.handler = self.handler, self.twin
        try:
            return self.run(envs)
        finally:
            self.handler = handler

    def queries(self, case: str, n: int) -> dict[str, Any]:
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        envs = self.envs(case, n)
        with CaptureQueriesContext(connection) as ctx:
            elapsed = self.run(envs)
        return {
            "queries": len(ctx.captured_queries),
            "n": n,
            "elapsed": elapsed,
            "sql": [q["sql"][:160] for q in ctx.captured_queries],
        }

    def refresh_check(self, n: int) -> dict[str, Any]:
        """The refresher's check when nothing moved (no rebuild): the query on a new
        connection, closed again. Paid by the refresher thread, never by a request."""
        from django.db import connection

        from corsadmin.refresh import holder

        times = []
        rebuilds = holder.stats()["rebuilds"]
        holder.refresh()  # the first load
        for _ in range(n):
            t0 = time.perf_counter()
            holder.refresh()
            connection.close()
            times.append(time.perf_counter() - t0)
        return {"median_ms": statistics.median(times) * 1e3, "rebuilt": holder.stats()["rebuilds"] - rebuilds}

    def serve(self) -> None:
        t0 = time.perf_counter()
        for case in CASES:  # first requests: snapshot load, URL resolver, imports
            self.run(self.envs(case, 3))
        _send({"ready": True, "startup": time.perf_counter() - t0, "pid": os.getpid()})
        for line in sys.stdin:
            cmd = json.loads(line)
            op = cmd["cmd"]
            if op == "quit":
                break
            if op == "check":
                _send(self.check())
            elif op == "calibrate":
                _send({"per_request": self.calibrate(cmd["case"], cmd["seconds"], cmd.get("twin", False))})
            elif op == "time":
                envs = self.envs(cmd["case"], cmd["n"])
                _send({"seconds": self.run(envs)})
            elif op == "paired":
                _send(self.paired(cmd["case"], cmd["n"]))
            elif op == "queries":
                _send(self.queries(cmd["case"], cmd["n"]))
            elif op == "refresh_check":
                _send(self.refresh_check(cmd.get("n", 20)))
            elif op == "rss":
                _send(_proc_status())
            else:
                _send({"error": f"unknown command {op}"})


def _send(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def populate(migrate: bool) -> None:
    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection

    from bench import origins

    site = settings.BENCH_SITE
    t0 = time.perf_counter()
    if migrate:
        call_command("migrate", run_syncdb=True, verbosity=0, interactive=False)
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA journal_mode=WAL")
    n = int(site.get("n") or 0)
    if site["kind"] == "corsadmin" and n:
        from corsadmin.models import AllowedOrigin, Policy

        policy = Policy.objects.get(name="default")
        AllowedOrigin.objects.bulk_create(
            (AllowedOrigin(origin=o, policy=policy) for o in origins.corsadmin_entries(site["list"], n)),
            batch_size=5000,
        )
    elif site["kind"] == "cors-headers+db" and n:
        from bench.benchsite.models import MySite

        MySite.objects.bulk_create((MySite(host=o) for o in origins.exact(n)), batch_size=5000)
    connection.close()
    _send({"populated": n, "seconds": time.perf_counter() - t0})


def snapshot() -> None:
    """Build time (3 builds) and resident memory added by the first, kept, snapshot."""
    django.setup()
    from corsadmin.loader import load_snapshot
    from corsadmin.models import Policy
    from corsadmin.origins import parse_entry

    parse_entry("https://*.warm.example.com")  # public suffix list, loaded once per process
    Policy.objects.count()
    gc.collect()
    try:  # reset the peak (VmHWM) to the current RSS
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass
    before = _proc_status()
    t0, c0 = time.perf_counter(), time.process_time()
    snap = load_snapshot()
    first, first_cpu = time.perf_counter() - t0, time.process_time() - c0
    gc.collect()
    after = _proc_status()
    times, cpu = [first], [first_cpu]
    size = sum(len(p.exact) + len(p.patterns) for p in snap.policies)
    for _ in range(2):
        del snap
        gc.collect()
        t0, c0 = time.perf_counter(), time.process_time()
        snap = load_snapshot()
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    del snap
    _send(
        {
            "entries": size,
            "build_s": statistics.median(times),
            "build_cpu_s": statistics.median(cpu),
            "build_first_s": first,
            "builds": times,
            "rss_added_mb": (after["VmRSS"] - before["VmRSS"]) / 1024,
            "peak_added_mb": (after["VmHWM"] - before["VmRSS"]) / 1024,
        }
    )


def change(origin: str) -> None:
    django.setup()
    from corsadmin.models import AllowedOrigin

    t0 = time.time()
    AllowedOrigin.objects.create(origin=origin)
    _send({"started": t0, "committed": time.time()})


if __name__ == "__main__":
    mode = sys.argv[1] if len(sys.argv) > 1 else "serve"
    if mode == "serve":
        Site().serve()
    elif mode == "populate":
        populate(migrate="--no-migrate" not in sys.argv)
    elif mode == "snapshot":
        snapshot()
    elif mode == "change":
        change(sys.argv[2])
    else:
        sys.exit(f"unknown mode {mode}")
