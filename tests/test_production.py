"""Many workers on two "machines", on PostgreSQL + Redis: a change made through the API
reaches every worker within REFRESH_INTERVAL + 1 s, with one incremental update (and no
full load) per process, under gunicorn (WSGI) and uvicorn (ASGI).

Runs when DATABASE_URL and REDIS_URL are set (``make test``'s second pass, ``.ci/run``);
see tests/e2e.py. The measured propagation times are printed.
"""

from __future__ import annotations

import time

from .e2e import (
    INTERVAL,
    Server,
    add_origin,
    api,
    converge,
    errors,
    hammer,
    latest_stats,
    remove_origin,
)


def workers_of(group: list[Server]) -> set[tuple[str, int]]:
    return {(s.name, pid) for s in group for pid in s.pids}


def stats_everywhere(group: list[Server], origin: str, seconds: float) -> dict:
    """Hit every worker for `seconds` (at least until each answered) and return their latest stats."""
    workers = workers_of(group)
    deadline = time.monotonic() + seconds

    def done(probes):
        return time.monotonic() >= deadline and workers <= {p.worker for p in probes}

    probes = hammer(group, [origin], duration=seconds + 10, until=done)
    assert not errors(probes), errors(probes)[:5]
    stats = latest_stats(probes)
    assert workers <= set(stats), f"no stats from {workers - set(stats)}"
    return stats


def change_and_count(group, origin, allowed, change, report_line, label):
    """Make `change`, wait for every worker to agree, then count rebuilds and reads per worker."""
    before = stats_everywhere(group, origin, 0.2)
    since = time.monotonic()
    change()
    committed = time.monotonic()  # the API has answered: the change is committed
    result = converge(group, origin, allowed, since)
    # one more interval of traffic, so a second (stampeding) rebuild would show
    after = stats_everywhere(group, origin, INTERVAL * 1.5)
    rebuilds = {w: after[w]["rebuilds"] - before[w]["rebuilds"] for w in workers_of(group)}
    full_loads = {w: after[w]["full_loads"] - before[w]["full_loads"] for w in workers_of(group)}
    generations = {after[w]["generation"] for w in workers_of(group)}
    report_line(
        f"{label}: propagation to {len(rebuilds)} workers: worst {result.worst:.3f} s, "
        f"median {sorted(result.seconds.values())[len(result.seconds) // 2]:.3f} s "
        f"from the API request; worst {result.worst - (committed - since):.3f} s from its answer "
        f"(limit {INTERVAL + 1:.1f} s; {len(result.probes)} requests)"
    )
    report_line(
        f"{label}: snapshots built per worker {sorted(rebuilds.values())}, of them full loads "
        f"{sorted(full_loads.values())}, generation now {generations}"
    )
    assert set(rebuilds.values()) == {1}, rebuilds  # one incremental update per change
    assert set(full_loads.values()) == {0}, full_loads
    assert len(generations) == 1, after
    return result


def test_gunicorn_workers_on_two_machines_converge(deployment, start_server, report_line):
    machine_a = start_server("machine-a", "gunicorn", 4, deployment.env())
    machine_b = start_server("machine-b", "gunicorn", 2, deployment.env())
    for server in (machine_a, machine_b):
        server.discover_workers()
    group = [machine_a, machine_b]
    origin = "https://gunicorn.e2e.example.com"
    made = {}

    change_and_count(
        group,
        origin,
        True,
        lambda: made.setdefault("id", add_origin(deployment, machine_a, origin)),
        report_line,
        "add on machine A",
    )
    change_and_count(
        group,
        origin,
        False,
        lambda: remove_origin(deployment, machine_b, made["id"]),
        report_line,
        "remove on machine B",
    )
    assert deployment.cache_value() == deployment.database_generation()


def test_uvicorn_workers_converge_on_the_async_path(deployment, start_server, report_line):
    server = start_server("uvicorn", "uvicorn", 2, deployment.env())
    server.discover_workers()
    origin = "https://uvicorn.e2e.example.com"
    stats = stats_everywhere([server], origin, 0.2)
    assert {s["handler"] for s in stats.values()} == {"ASGIRequest"}  # the async middleware chain
    made = {}

    change_and_count(
        [server],
        origin,
        True,
        lambda: made.setdefault("id", add_origin(deployment, server, origin)),
        report_line,
        "uvicorn add",
    )
    change_and_count(
        [server],
        origin,
        False,
        lambda: remove_origin(deployment, server, made["id"]),
        report_line,
        "uvicorn remove",
    )


# Push, not polling: with a 60 s interval only an announcement can bring a change within the limit.
PUSH_ONLY = {"CORSADMIN_REFRESH_INTERVAL": "60"}


def push_converges(deployment, group, origin, report_line, label):
    made = {}
    for allowed, change in (
        (True, lambda: made.setdefault("id", add_origin(deployment, group[0], origin))),
        (False, lambda: remove_origin(deployment, group[-1], made["id"])),
    ):
        since = time.monotonic()
        change()
        result = converge(group, origin, allowed, since, limit=1.0)
        report_line(
            f"{label}: {'add' if allowed else 'remove'} reached {len(result.seconds)} workers, "
            f"worst {result.worst:.3f} s from the API request"
        )


def test_redis_pubsub_pushes_changes_to_every_worker(deployment, start_server, report_line):
    machine_a = start_server("push-redis-a", "gunicorn", 2, deployment.env(**PUSH_ONLY))
    machine_b = start_server("push-redis-b", "gunicorn", 2, deployment.env(**PUSH_ONLY))
    for server in (machine_a, machine_b):
        server.discover_workers()
    push_converges(deployment, [machine_a, machine_b], "https://pubsub.e2e.example.com", report_line, "Redis")


def test_postgres_notify_pushes_changes_without_redis(deployment, start_server, report_line):
    alone = {**PUSH_ONLY, "REDIS_URL": ""}  # the local-memory cache: no shared stamp, no Redis
    machine_a = start_server("push-pg-a", "gunicorn", 2, deployment.env(**alone))
    machine_b = start_server("push-pg-b", "gunicorn", 2, deployment.env(**alone))
    for server in (machine_a, machine_b):
        server.discover_workers()
    push_converges(
        deployment, [machine_a, machine_b], "https://notify.e2e.example.com", report_line, "PostgreSQL NOTIFY"
    )


# --- a respawned worker under --preload ----------------------------------------------------


def test_a_respawned_worker_never_serves_a_revoked_origin(deployment, start_server, report_line):
    """gunicorn --preload: the master loaded the list while the origin was allowed; the origin
    is revoked and every worker refuses it; then workers are killed and the master forks new
    ones. No answer of a new worker may allow the revoked origin (each confirms what it
    inherited against the database before serving it), and they do serve what is allowed."""
    import os
    import signal

    revoked = "https://revoked.respawn.e2e.example.com"
    kept = "https://kept.respawn.e2e.example.com"
    hooks = ("--preload", "--config", "python:project.gunicorn_conf")
    server = start_server("respawn", "gunicorn", 2, deployment.env(), *hooks)
    made = {origin: add_origin(deployment, server, origin) for origin in (revoked, kept)}
    server.stop()
    server = start_server("respawn-preloaded", "gunicorn", 2, deployment.env(), *hooks)
    server.discover_workers()
    converge([server], revoked, True, time.monotonic())  # the master's snapshot allows it
    since = time.monotonic()
    remove_origin(deployment, server, made[revoked])
    converge([server], revoked, False, since)
    master = server.process.pid
    assert remote_ports(min(server.pids)) & service_ports(deployment)  # a worker's refresher has some
    assert remote_ports(master) & service_ports(deployment) == set(), "the master keeps a connection"
    allowed_after_fork = []
    new_workers = set()
    for _round in range(3):
        victim = min(server.pids)
        os.kill(victim, signal.SIGKILL)
        killed = time.monotonic()
        deadline = killed + 30
        while time.monotonic() < deadline and (server.children() - server.pids - new_workers) == set():
            time.sleep(0.005)
        fresh = server.children() - server.pids - new_workers
        assert fresh, "the master did not fork a new worker"
        # Hammered until the new worker has confirmed its snapshot (it allows the kept origin;
        # a slow machine may take longer than a quiet one) and every answer checked meanwhile;
        # without a pause, to catch the new worker's very first answers.
        news: list = []
        while not any(p.origin == kept and p.allowed for p in news) and time.monotonic() < deadline:
            probes = hammer([server], [revoked, revoked, revoked, kept], duration=1.0, pause=0)
            assert not errors(probes), errors(probes)[:5]
            news += [p for p in probes if p.pid in fresh]
        assert news, "the new worker answered nothing"
        allowed_after_fork += [p for p in news if p.origin == revoked and p.allowed]
        assert any(p.origin == kept and p.allowed for p in news), (
            "the new worker never allowed the kept origin"
        )
        first = min(p.received for p in news) - killed
        report_line(
            f"respawn {_round + 1}: new worker {sorted(fresh)} answered {len(news)} requests from "
            f"{first:.3f} s after the kill; revoked origin allowed {len(allowed_after_fork)} times"
        )
        new_workers |= fresh
        server.pids = (server.pids - {victim}) | fresh
    assert allowed_after_fork == [], allowed_after_fork[:5]
    assert remote_ports(master) & service_ports(deployment) == set(), "the master keeps a connection"


def service_ports(site) -> set[int]:
    from urllib.parse import urlsplit

    return {urlsplit(site.database_url).port or 5432, urlsplit(site.redis_url).port or 6379}


def remote_ports(pid: int) -> set[int]:
    """The remote ports of the TCP connections process ``pid`` holds open (from /proc)."""
    from pathlib import Path

    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = fd.readlink().name
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    ports = set()
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[9] in inodes and fields[3] == "01":  # ESTABLISHED
                ports.add(int(fields[2].rsplit(":", 1)[1], 16))
    return ports


# --- a row written around validation ------------------------------------------------------


def test_a_row_written_around_validation_never_freezes_the_workers(deployment, start_server, report_line):
    """A policy's url_regex that neither RE2 nor Python can compile, written with raw SQL (and
    stamped, as a stamping write would): every worker skips that policy, and a deletion and an
    addition made through the API afterwards still reach every worker; a new server loads the rest."""
    import psycopg

    server = start_server("bad-row", "gunicorn", 3, deployment.env())
    server.discover_workers()
    removed, added = "https://removed.badrow.e2e.example.com", "https://added.badrow.e2e.example.com"
    reply = api(deployment, server, "POST", "policies/", {"name": "badrow", "url_regex": "^/badrow/"})
    assert reply.status == 201, reply.body
    made = add_origin(deployment, server, removed)
    converge([server], removed, True, time.monotonic())
    with psycopg.connect(deployment.database_url) as conn:  # one transaction
        [generation] = conn.execute(
            "UPDATE corsadmin_generation SET value = value + 1 WHERE id = 1 RETURNING value"
        ).fetchone()
        conn.execute(
            "UPDATE corsadmin_policy SET url_regex = %s, version = %s WHERE name = 'badrow'",
            ["^/(?=a)a{99999999999}", generation],
        )
    since = time.monotonic()
    remove_origin(deployment, server, made)
    add_origin(deployment, server, added)
    converge([server], removed, False, since)
    result = converge([server], added, True, since)
    fresh = start_server("bad-row-new", "gunicorn", 1, deployment.env())
    fresh.discover_workers()
    converge([fresh], added, True, time.monotonic())
    converge([fresh], removed, False, time.monotonic())
    logged = [line for line in server.log().splitlines() if "ignoring policy badrow" in line]
    assert len(logged) == len(server.pids), logged  # one line per worker
    assert "OverflowError" in logged[0]
    report_line(
        f"bad row: a deletion and an addition after it reached {len(result.seconds)} workers, "
        f"worst {result.worst:.3f} s; a new server loads the rest; log: {logged[0][-120:]}"
    )


# --- an import longer than the worker may take --------------------------------------------


CLEAN_UP = "from corsadmin.models import Policy; Policy.objects.filter(name=%r).delete()"


def test_an_import_past_the_worker_timeout_goes_on_in_the_background(deployment, start_server):
    """gunicorn kills a sync worker --timeout seconds after its last sign of life (taken just
    before a request), and the client would get a bare error page. With the site's gunicorn
    config (post_worker_init tells corsadmin the timeout), a 30,000-origin import kept in the
    request (IMPORT_JOB_ORIGINS above it), far longer than 3 s, stops itself about 2 s in, rolls
    back, answers 202 and goes on in a thread of the worker, which lives on."""
    hooks = ("--config", "python:project.gunicorn_conf", "--timeout", "3")
    env = deployment.env(CORSADMIN_IMPORT_JOB_ORIGINS="100000")
    server = start_server("import-timeout", "gunicorn", 1, env, *hooks)
    origins = [{"origin": f"https://h{i}.timeout.e2e.example.com"} for i in range(30_000)]
    document = {"version": 1, "policies": [{"name": "import-timeout", "url_regex": "^/", "origins": origins}]}
    reply = api(deployment, server, "POST", "import/", document)
    assert reply.status == 202, reply.body[:500]
    assert reply.received - reply.sent < 3
    job = reply.json()
    assert reply.headers["location"] == job["url"]
    deadline = time.monotonic() + 120
    while job["state"] not in ("succeeded", "failed") and time.monotonic() < deadline:
        time.sleep(0.5)
        job = api(deployment, server, "GET", f"imports/{job['id']}/").json()
    assert job["state"] == "succeeded", job
    assert job["result"]["created"] == {"policies": 1, "origins": 30_000}
    assert api(deployment, server, "GET", "policies/import-timeout/").status == 200
    assert "WORKER TIMEOUT" not in server.log()
    # Not through this server: a delete of 30,000 origins has no time limit of its own.
    deployment.manage("shell", "-c", CLEAN_UP % "import-timeout")
